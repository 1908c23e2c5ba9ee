"""The containers part's calls: containers and self-healing."""

from __future__ import annotations

import aiohttp

from ..client import PartClient
from ..models import Actor, AuditEntry
from ..wire import dump
from .models import ContainerReport, HealingSettings

ACTION_TIMEOUT = aiohttp.ClientTimeout(total=60)


class ContainersClient(PartClient):
    """Containers and self-healing, through a ``HydraClient`` (whose errors it raises)."""

    async def async_containers(self) -> ContainerReport:
        """Every container of the worker's engine, and the self-healing settings."""
        return await self._client.call(ContainerReport, "GET", "containers")

    async def async_container_action(
        self, name: str, action: str, actor: Actor, reason: str | None = None
    ) -> AuditEntry:
        """Start, stop or restart a container; the audit entry says what happened.

        Raises ``HydraApiError`` with code ``container_protected`` (the container is protected),
        ``container_not_found`` or ``engine_error``; the attempt is audited either way.
        """
        body = await self._client.request(
            "POST",
            f"containers/{name}/{action}",
            json={"actor": dump(actor), "reason": reason},
            # A stop waits up to the engine's grace period (10 s) before it kills.
            client_timeout=ACTION_TIMEOUT,
        )
        return self._client.parse(AuditEntry, body["audit"])

    async def async_set_healing(self, *, enabled: bool) -> HealingSettings:
        """Switch self-healing on or off (kept across worker restarts)."""
        return await self._client.call(HealingSettings, "PUT", "healing", json={"enabled": enabled})
