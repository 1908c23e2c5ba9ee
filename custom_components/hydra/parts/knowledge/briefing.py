"""The knowledge base's sections of the morning briefing: the research that finished (a line
each, with its finding's first sentence), what is new in the feeds, and the mail flagged as
important. Each is read from the worker; one that does not answer leaves its section to what
Home Assistant last heard (research, mail) or out (the digest)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from hydra_core.client import HydraError
from hydra_core.knowledge.models import Digest, Finding, MailFlag

from ...const import LOGGER
from .coordinator import HydraKnowledgeCoordinator
from .describe import digest_text, finding_line, mail_line

if TYPE_CHECKING:
    from ...data import HydraConfigEntry

# Findings and mails named one by one before "and N more".
NAMED: Final = 4
# Findings read for the briefing: more than a night's worth.
FINDINGS_READ: Final = 50


async def async_knowledge_sections(entry: HydraConfigEntry, since: float) -> dict[str, str]:
    """The briefing's research, feeds and mail sections since ``since``, those with something
    to say; none for a worker without a knowledge base."""
    if (knowledge := entry.runtime_data.part(HydraKnowledgeCoordinator)) is None:
        return {}
    findings, digest, mail = await asyncio.gather(
        _async_findings(knowledge, since),
        _async_digest(knowledge, since),
        _async_mail(knowledge, since),
    )
    sections: dict[str, str] = {}
    if research := research_text(findings):
        sections["research"] = research
    if digest is not None and (feeds := digest_text(digest.items)):
        sections["feeds"] = feeds
    if flagged := mail_text(mail):
        sections["mail"] = flagged
    return sections


async def _async_findings(knowledge: HydraKnowledgeCoordinator, since: float) -> list[Finding]:
    try:
        return await knowledge.api.async_findings(since=since, limit=FINDINGS_READ)
    except HydraError as err:
        LOGGER.debug("The briefing could not read the findings: %s", err)
        return [finding for finding in knowledge.data.findings if finding.created_at >= since]


async def _async_digest(knowledge: HydraKnowledgeCoordinator, since: float) -> Digest | None:
    try:
        return await knowledge.api.async_digest(since)
    except HydraError as err:
        LOGGER.debug("The briefing could not read the feed digest: %s", err)
        return None


async def _async_mail(knowledge: HydraKnowledgeCoordinator, since: float) -> list[MailFlag]:
    try:
        return await knowledge.api.async_flagged_mail(since)
    except HydraError as err:
        LOGGER.debug("The briefing could not read the flagged mail: %s", err)
        return [flag for flag in knowledge.data.mail if flag.flagged_at >= since]


def _named(lines: list[str], more: str) -> list[str]:
    if len(lines) > NAMED:
        return [*lines[:NAMED], f"And {len(lines) - NAMED} more {more}."]
    return lines


def research_text(findings: Sequence[Finding]) -> str | None:
    """The research that finished: a line each, oldest first, with its finding."""
    if not findings:
        return None
    ordered = sorted(findings, key=lambda finding: (finding.created_at, finding.id))
    count = len(ordered)
    head = (
        "Research finished on 1 topic." if count == 1 else f"Research finished on {count} topics."
    )
    return "\n".join([head, *_named([finding_line(f) for f in ordered], "topics")])


def mail_text(mail: Sequence[MailFlag]) -> str | None:
    """The mail flagged as important, urgent first, then newest first; a line each."""
    if not mail:
        return None
    ordered = sorted(mail, key=lambda flag: (not flag.urgent, -flag.flagged_at, -flag.id))
    count = len(ordered)
    head = "1 mail looks important." if count == 1 else f"{count} mails look important."
    lines = [f"Urgent: {mail_line(flag)}" if flag.urgent else mail_line(flag) for flag in ordered]
    return "\n".join([head, *_named(lines, "mails")])
