"""What the knowledge part keeps beside its vectors: findings, feeds and their entries, flagged
mail, research progress and the topics of interest, in ``knowledge.db`` (SQLite, WAL).

Every change is committed before the caller goes on, so a worker killed mid-research picks up
with the sources it already read.
"""

from __future__ import annotations

from functools import partial
import json
from pathlib import Path
import time
from typing import Any

from ..sqlite import SqliteStore
from ..wire import dump, load
from .models import Feed, Finding, MailFlag, Source

DB_FILE = "knowledge.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS findings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    summary TEXT NOT NULL,
    sources TEXT NOT NULL,
    method TEXT NOT NULL,
    problems TEXT NOT NULL,
    task_id INTEGER,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS findings_created ON findings (created_at);
CREATE TABLE IF NOT EXISTS feeds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    url TEXT NOT NULL UNIQUE,
    title TEXT,
    max_entries INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT '{}',
    entries INTEGER NOT NULL DEFAULT 0,
    last_checked REAL,
    last_new INTEGER NOT NULL DEFAULT 0,
    error TEXT
);
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    feed TEXT,
    entry_id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    link TEXT,
    summary TEXT,
    published REAL,
    fetched REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_fetched ON entries (fetched);
CREATE TABLE IF NOT EXISTS mail (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sender TEXT NOT NULL,
    subject TEXT NOT NULL,
    reason TEXT NOT NULL,
    urgent INTEGER NOT NULL,
    received REAL,
    flagged_at REAL NOT NULL
);
-- What a research task has read so far: one row per source, with its chunks or its error.
CREATE TABLE IF NOT EXISTS research (
    task_id INTEGER NOT NULL,
    url TEXT NOT NULL,
    title TEXT,
    kind TEXT NOT NULL,
    published REAL,
    error TEXT,
    chunks INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (task_id, url)
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


def _finding(row: tuple[Any, ...]) -> Finding:
    id_, topic, summary, sources, method, problems, task_id, created_at = row
    return Finding(
        id=id_,
        topic=topic,
        summary=summary,
        sources=tuple(load(Source, item) for item in json.loads(sources)),
        method=method,
        problems=tuple(json.loads(problems)),
        task_id=task_id,
        created_at=created_at,
    )


def _feed(row: tuple[Any, ...]) -> Feed:
    id_, url, title, max_entries, entries, last_checked, last_new, error = row
    return Feed(
        id=id_,
        url=url,
        title=title,
        max_entries=max_entries,
        entries=entries,
        last_checked=last_checked,
        last_new=last_new,
        error=error,
    )


def _mail(row: tuple[Any, ...]) -> MailFlag:
    id_, sender, subject, reason, urgent, received, flagged_at = row
    return MailFlag(
        id=id_,
        sender=sender,
        subject=subject,
        reason=reason,
        urgent=bool(urgent),
        received=received,
        flagged_at=flagged_at,
    )


_FINDING = "id, topic, summary, sources, method, problems, task_id, created_at"
_FEED = "id, url, title, max_entries, entries, last_checked, last_new, error"
_MAIL = "id, sender, subject, reason, urgent, received, flagged_at"


class KnowledgeStore(SqliteStore):
    """Findings, feeds, entries, flagged mail, research progress and settings."""

    schema = _SCHEMA

    def __init__(self, path: Path | None) -> None:
        super().__init__(path, thread_name="hydra-knowledge-db")

    def _one(self, sql: str, values: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._open().execute(sql, values).fetchone()
        return row

    def _all(self, sql: str, values: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return list(self._open().execute(sql, values))

    def _write(self, sql: str, values: tuple[Any, ...] = ()) -> int:
        return self._open().execute(sql, values).lastrowid or 0

    # Findings

    async def async_add_finding(
        self,
        *,
        topic: str,
        summary: str,
        sources: list[Source],
        method: str,
        problems: list[str],
        task_id: int | None,
    ) -> Finding:
        """Keep a finding."""
        values = (
            topic,
            summary,
            json.dumps([dump(source) for source in sources]),
            method,
            json.dumps(problems),
            task_id,
            time.time(),
        )

        def add() -> Finding:
            row_id = self._write(
                "INSERT INTO findings (topic, summary, sources, method, problems, task_id,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                values,
            )
            row = self._one(f"SELECT {_FINDING} FROM findings WHERE id = ?", (row_id,))  # noqa: S608
            assert row is not None
            return _finding(row)

        return await self._run(add)

    async def async_findings(self, *, since: float | None, limit: int) -> list[Finding]:
        """Findings since ``since``, newest first."""
        sql = f"SELECT {_FINDING} FROM findings WHERE created_at >= ? ORDER BY id DESC LIMIT ?"  # noqa: S608
        rows = await self._run(partial(self._all, sql, (since or 0.0, limit)))
        return [_finding(row) for row in rows]

    async def async_finding(self, finding_id: int) -> Finding | None:
        """One finding."""
        sql = f"SELECT {_FINDING} FROM findings WHERE id = ?"  # noqa: S608
        row = await self._run(partial(self._one, sql, (finding_id,)))
        return None if row is None else _finding(row)

    async def async_finding_of_task(self, task_id: int) -> Finding | None:
        """The finding a research task made, if it made one already."""
        sql = f"SELECT {_FINDING} FROM findings WHERE task_id = ? ORDER BY id DESC"  # noqa: S608
        row = await self._run(partial(self._one, sql, (task_id,)))
        return None if row is None else _finding(row)

    async def async_count_findings(self, since: float) -> int:
        """How many findings since ``since``."""
        row = await self._run(
            partial(self._one, "SELECT COUNT(*) FROM findings WHERE created_at >= ?", (since,))
        )
        return int(row[0]) if row else 0

    # Research progress

    async def async_research_read(self, task_id: int) -> dict[str, tuple[Any, ...]]:
        """The sources a research task read: url -> (title, kind, published, error, chunks)."""
        rows = await self._run(
            partial(
                self._all,
                "SELECT url, title, kind, published, error, chunks FROM research WHERE task_id = ?",
                (task_id,),
            )
        )
        return {row[0]: row[1:] for row in rows}

    async def async_research_mark(
        self,
        task_id: int,
        url: str,
        *,
        title: str | None,
        kind: str,
        published: float | None,
        error: str | None,
        chunks: int,
    ) -> None:
        """Record that a research task read (or failed to read) one source."""
        await self._run(
            partial(
                self._write,
                "INSERT OR REPLACE INTO research (task_id, url, title, kind, published, error,"
                " chunks) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (task_id, url, title, kind, published, error, chunks),
            )
        )

    # Feeds

    async def async_feeds(self) -> list[Feed]:
        """Every feed."""
        rows = await self._run(partial(self._all, f"SELECT {_FEED} FROM feeds ORDER BY id"))  # noqa: S608
        return [_feed(row) for row in rows]

    async def async_add_feed(self, url: str, title: str | None, max_entries: int) -> Feed:
        """Poll a feed (the same URL twice is one feed)."""

        def add() -> Feed:
            self._write(
                "INSERT INTO feeds (url, title, max_entries) VALUES (?, ?, ?) ON CONFLICT(url)"
                " DO UPDATE SET title = COALESCE(excluded.title, title),"
                " max_entries = excluded.max_entries",
                (url, title, max_entries),
            )
            row = self._one(f"SELECT {_FEED} FROM feeds WHERE url = ?", (url,))  # noqa: S608
            assert row is not None
            return _feed(row)

        return await self._run(add)

    async def async_remove_feed(self, feed_id: int) -> bool:
        """Stop polling a feed; False when there is none."""

        def remove() -> bool:
            return self._open().execute("DELETE FROM feeds WHERE id = ?", (feed_id,)).rowcount > 0

        return await self._run(remove)

    async def async_feed_state(self, feed_id: int) -> dict[str, Any]:
        """What the last poll of a feed left (ETag, Last-Modified, the entry ids seen)."""
        row = await self._run(
            partial(self._one, "SELECT state FROM feeds WHERE id = ?", (feed_id,))
        )
        return {} if row is None else dict(json.loads(row[0]))

    async def async_polled(
        self, feed_id: int, *, state: dict[str, Any], new: int, error: str | None, title: str | None
    ) -> None:
        """Record a poll of a feed."""
        await self._run(
            partial(
                self._write,
                "UPDATE feeds SET state = ?, last_checked = ?, last_new = ?, error = ?,"
                " entries = entries + ?, title = COALESCE(title, ?) WHERE id = ?",
                (json.dumps(state), time.time(), new, error, new, title, feed_id),
            )
        )

    async def async_add_entry(
        self,
        *,
        feed: str | None,
        entry_id: str,
        title: str,
        link: str | None,
        summary: str | None,
        published: float | None,
    ) -> bool:
        """Keep a feed entry; False when it was kept before."""

        def add() -> bool:
            cursor = self._open().execute(
                "INSERT OR IGNORE INTO entries (feed, entry_id, title, link, summary, published,"
                " fetched) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (feed, entry_id, title, link, summary, published, time.time()),
            )
            return cursor.rowcount > 0

        return await self._run(add)

    async def async_entries(self, since: float, limit: int) -> list[tuple[Any, ...]]:
        """Entries kept since ``since``: (feed, title, link, summary, published), newest first."""
        return await self._run(
            partial(
                self._all,
                "SELECT feed, title, link, summary, published FROM entries WHERE fetched >= ?"
                " ORDER BY id DESC LIMIT ?",
                (since, limit),
            )
        )

    async def async_documents(self) -> int:
        """How many documents the knowledge base was given: web pages research read, and
        feed entries."""

        def count() -> int:
            entries = self._one("SELECT COUNT(*) FROM entries")
            pages = self._one(
                "SELECT COUNT(DISTINCT url) FROM research WHERE error IS NULL AND chunks > 0"
            )
            return int(entries[0] if entries else 0) + int(pages[0] if pages else 0)

        return await self._run(count)

    async def async_last_ingestion(self) -> float | None:
        """When the last entry or research source was kept."""
        row = await self._run(partial(self._one, "SELECT MAX(fetched) FROM entries"))
        return None if row is None else row[0]

    # Mail

    async def async_flag_mail(
        self, *, sender: str, subject: str, reason: str, urgent: bool, received: float | None
    ) -> MailFlag:
        """Keep a flagged mail."""

        def add() -> MailFlag:
            row_id = self._write(
                "INSERT INTO mail (sender, subject, reason, urgent, received, flagged_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (sender, subject, reason, int(urgent), received, time.time()),
            )
            row = self._one(f"SELECT {_MAIL} FROM mail WHERE id = ?", (row_id,))  # noqa: S608
            assert row is not None
            return _mail(row)

        return await self._run(add)

    async def async_mail(self, since: float, limit: int = 100) -> list[MailFlag]:
        """Mail flagged since ``since``, newest first."""
        sql = f"SELECT {_MAIL} FROM mail WHERE flagged_at >= ? ORDER BY id DESC LIMIT ?"  # noqa: S608
        rows = await self._run(partial(self._all, sql, (since, limit)))
        return [_mail(row) for row in rows]

    # Settings

    async def async_setting(self, key: str, default: Any) -> Any:
        """A kept setting (JSON), or ``default``."""
        row = await self._run(
            partial(self._one, "SELECT value FROM settings WHERE key = ?", (key,))
        )
        return default if row is None else json.loads(row[0])

    async def async_set_setting(self, key: str, value: Any) -> None:
        """Keep a setting."""
        await self._run(
            partial(
                self._write,
                "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)",
                (key, json.dumps(value)),
            )
        )
