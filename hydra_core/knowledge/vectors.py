"""The vector store: Qdrant in local mode in the data dir (embedded, no server), or a server.

Two collections, both cosine: ``chunks`` (pieces of documents: web pages, feed entries) and
``memories`` (facts and preferences). A chunk's point id is made from its text's hash, so the
same text stored twice is one point (dedupe for free). Local mode takes an exclusive lock on
its folder, so one worker holds one client; the client is blocking, so every call runs on one
thread of its own.

Collections are made with the embedding model's dimension when the first vectors arrive; a
knowledge base built with another model (another dimension) is refused with a clear error
rather than mixed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
import uuid

import numpy as np

from ..errors import Refusal

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

_LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")

CHUNKS = "chunks"
MEMORIES = "memories"
# Qdrant's own advice: local mode is for up to about this many points.
LOCAL_MODE_LIMIT = 20_000
_NAMESPACE = uuid.UUID("8f0c8c5e-62c4-4c55-9a43-7c9a3cf1b0a1")


class VectorStoreError(Refusal, code="knowledge_unavailable", status=503):
    """The vector store cannot be opened or used."""


def chunk_id(content_hash: str) -> str:
    """A chunk's point id: made from its content hash, so the same text is one point."""
    return str(uuid.uuid5(_NAMESPACE, content_hash))


@dataclass(frozen=True, slots=True)
class Point:
    """A point found: its id, similarity and payload."""

    id: str
    score: float
    payload: dict[str, Any]


class VectorStore:
    """Chunks and memories in Qdrant; every call off the event loop, on one thread."""

    def __init__(self, path: Path, *, url: str = "", api_key: str = "") -> None:
        self.path = path
        self.url = url
        self._api_key = api_key
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="hydra-qdrant")
        self._client: QdrantClient | None = None
        self._dims: dict[str, int] = {}

    @property
    def backend(self) -> str:
        """``local`` or ``server``."""
        return "server" if self.url else "local"

    async def _run(self, function: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function)

    def _open(self) -> QdrantClient:
        if self._client is None:
            from qdrant_client import QdrantClient  # noqa: PLC0415 - heavy, and optional

            try:
                if self.url:
                    self._client = QdrantClient(url=self.url, api_key=self._api_key or None)
                else:
                    self.path.mkdir(parents=True, exist_ok=True)
                    self._client = QdrantClient(path=str(self.path))
            except Exception as err:
                raise VectorStoreError(f"The knowledge base cannot be opened: {err}") from err
        return self._client

    async def async_open(self) -> None:
        """Open the store (local mode: take its folder's lock)."""
        await self._run(self._open)

    async def async_close(self) -> None:
        """Close the client and its thread."""

        def close() -> None:
            if self._client is not None:
                self._client.close()
                self._client = None

        await self._run(close)
        self._executor.shutdown(wait=True)

    def _collection(self, name: str, dim: int | None) -> bool:
        """Make sure the collection exists (with ``dim``); False when it does not and no
        ``dim`` is given (nothing stored yet)."""
        from qdrant_client import models  # noqa: PLC0415

        client = self._open()
        if name in self._dims:
            known = self._dims[name]
        elif client.collection_exists(name):
            params = client.get_collection(name).config.params.vectors
            known = params.size if isinstance(params, models.VectorParams) else 0
            self._dims[name] = known
        else:
            if dim is None:
                return False
            client.create_collection(
                name, vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE)
            )
            self._dims[name] = known = dim
        if dim is not None and known != dim:
            raise VectorStoreError(
                f"The knowledge base holds {known}-dimensional vectors and the embedding model "
                f"makes {dim}: it was built with another model. Move {self.path} aside to start "
                "a new one",
                status=409,
            )
        return True

    async def async_upsert(
        self, name: str, ids: Sequence[str], vectors: np.ndarray, payloads: Sequence[dict[str, Any]]
    ) -> int:
        """Store points (replacing those with the same id); answers how many were new."""
        from qdrant_client import models  # noqa: PLC0415

        def upsert() -> int:
            self._collection(name, int(vectors.shape[1]))
            client = self._open()
            existing = {str(point.id) for point in client.retrieve(name, list(ids))}
            client.upsert(
                name,
                points=[
                    models.PointStruct(id=point_id, vector=vector.tolist(), payload=payload)
                    for point_id, vector, payload in zip(ids, vectors, payloads, strict=True)
                ],
            )
            return sum(point_id not in existing for point_id in ids)

        return await self._run(upsert)

    async def async_search(
        self, name: str, vector: np.ndarray, limit: int, *, where: dict[str, Any] | None = None
    ) -> list[Point]:
        """The closest points, best first (none before anything was stored)."""
        from qdrant_client import models  # noqa: PLC0415

        def search() -> list[Point]:
            if not self._collection(name, None):
                return []
            condition = None
            if where:
                condition = models.Filter(
                    must=[
                        models.FieldCondition(key=key, match=models.MatchValue(value=value))
                        for key, value in where.items()
                    ]
                )
            found = self._open().query_points(
                name, query=vector.tolist(), limit=limit, query_filter=condition, with_payload=True
            )
            return [
                Point(str(point.id), float(point.score), dict(point.payload or {}))
                for point in found.points
            ]

        return await self._run(search)

    async def async_count(self, name: str) -> int:
        """How many points a collection holds."""

        def count() -> int:
            if not self._collection(name, None):
                return 0
            return int(self._open().count(name, exact=True).count)

        return await self._run(count)

    async def async_scroll(self, name: str, limit: int) -> list[Point]:
        """Up to ``limit`` points, in id order."""

        def scroll() -> list[Point]:
            if not self._collection(name, None):
                return []
            points, _ = self._open().scroll(name, limit=limit, with_payload=True)
            return [Point(str(point.id), 1.0, dict(point.payload or {})) for point in points]

        return await self._run(scroll)

    async def async_get(self, name: str, point_id: str) -> Point | None:
        """One point."""

        def get() -> Point | None:
            if not self._collection(name, None):
                return None
            found = self._open().retrieve(name, [point_id], with_payload=True)
            return Point(str(found[0].id), 1.0, dict(found[0].payload or {})) if found else None

        return await self._run(get)

    async def async_delete(self, name: str, point_ids: Sequence[str]) -> None:
        """Remove points for good."""
        from qdrant_client import models  # noqa: PLC0415

        def delete() -> None:
            if self._collection(name, None):
                self._open().delete(
                    name, points_selector=models.PointIdsList(points=list(point_ids))
                )

        await self._run(delete)
