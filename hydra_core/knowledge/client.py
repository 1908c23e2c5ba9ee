"""The knowledge part's calls: search, findings, memories, feeds, mail, topics."""

from __future__ import annotations

from typing import Any

from ..client import PartClient
from ..models import Actor
from ..wire import dump
from .models import Digest, Feed, Finding, KnowledgeStatus, MailFlag, Memory, SearchResult


class KnowledgeClient(PartClient):
    """The knowledge base through a ``HydraClient``."""

    async def async_status(self) -> KnowledgeStatus:
        """Whether the store and model run, counts, today's findings, a size warning."""
        return await self._client.call(KnowledgeStatus, "GET", "knowledge")

    async def async_search(self, query: str, *, limit: int = 5) -> SearchResult:
        """The chunks that answer ``query`` best."""
        return await self._client.call(
            SearchResult, "GET", "knowledge/search", params={"q": query, "limit": str(limit)}
        )

    async def async_findings(self, *, since: float | None = None, limit: int = 20) -> list[Finding]:
        """Research findings, newest first."""
        params = {"limit": str(limit)} | ({"since": f"{since:f}"} if since is not None else {})
        body = await self._client.request("GET", "findings", params=params)
        return [self._client.parse(Finding, item) for item in body["findings"]]

    async def async_remember(self, text: str, *, actor: Actor, kind: str = "fact") -> Memory:
        """Remember a fact or a preference."""
        body = {"text": text, "kind": kind, "actor": dump(actor)}
        return await self._client.call(Memory, "POST", "memories", json=body)

    async def async_recall(self, query: str | None = None, *, limit: int = 10) -> list[Memory]:
        """Memories: those closest to ``query``, or the newest."""
        params = {"limit": str(limit)} | ({"q": query} if query else {})
        body = await self._client.request("GET", "memories", params=params)
        return [self._client.parse(Memory, item) for item in body["memories"]]

    async def async_forget(self, memory_id: str) -> None:
        """Forget a memory for good; HydraApiError ``memory_not_found``."""
        await self._client.request("DELETE", f"memories/{memory_id}")

    async def async_feeds(self) -> list[Feed]:
        """The feeds polled."""
        body = await self._client.request("GET", "feeds")
        return [self._client.parse(Feed, item) for item in body["feeds"]]

    async def async_add_feed(self, url: str, *, title: str | None = None) -> Feed:
        """Poll a feed."""
        body: dict[str, Any] = {"url": url} | ({"title": title} if title else {})
        return await self._client.call(Feed, "POST", "feeds", json=body)

    async def async_add_feed_entry(
        self,
        *,
        feed: str | None,
        title: str,
        link: str | None,
        summary: str | None,
        published: float | None,
    ) -> None:
        """Ingest a feed entry someone else polled (Home Assistant's ``feedreader``) as a
        polled one is; the worker answers 202 and embeds it in the background."""
        body = {
            "feed": feed,
            "title": title,
            "link": link,
            "summary": summary,
            "published": published,
        }
        await self._client.request("POST", "feeds/entries", json=body)

    async def async_digest(self, since: float) -> Digest:
        """Feed entries since ``since``, ranked by the topics of interest."""
        return await self._client.call(
            Digest, "GET", "feeds/digest", params={"since": f"{since:f}"}
        )

    async def async_mail(
        self, *, sender: str, subject: str, text: str, date: float | None
    ) -> MailFlag | None:
        """Tell the worker of a mail; answers the flag when it is important."""
        body = await self._client.request(
            "POST", "mail", json={"sender": sender, "subject": subject, "text": text, "date": date}
        )
        flag = body.get("flag")
        return None if flag is None else self._client.parse(MailFlag, flag)

    async def async_flagged_mail(self, since: float) -> list[MailFlag]:
        """Mail flagged since ``since``, newest first."""
        body = await self._client.request("GET", "mail", params={"since": f"{since:f}"})
        return [self._client.parse(MailFlag, item) for item in body["mail"]]

    async def async_topics(self) -> tuple[str, ...]:
        """The topics of interest."""
        body = await self._client.request("GET", "knowledge/topics")
        return tuple(body["topics"])

    async def async_set_topics(self, topics: list[str]) -> tuple[str, ...]:
        """Set the topics of interest."""
        body = await self._client.request("PUT", "knowledge/topics", json={"topics": topics})
        return tuple(body["topics"])
