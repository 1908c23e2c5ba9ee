"""The power part's calls: GPU power profiles."""

from __future__ import annotations

from typing import Any

from ..client import PartClient
from ..models import Actor
from ..wire import dump
from .models import PowerStatus


class PowerClient(PartClient):
    """GPU power profiles, through a ``HydraClient``."""

    async def async_power(self) -> PowerStatus:
        """Every GPU's power profile, target and enforced limit, and what the profiles mean."""
        return await self._client.call(PowerStatus, "GET", "power")

    async def async_set_power(
        self,
        *,
        actor: Actor,
        profile: str | None = None,
        limit_w: float | None = None,
        gpus: list[int] | None = None,
    ) -> PowerStatus:
        """Set a profile (eco, balanced, full) or a limit in watts on some GPUs (default: all).

        HydraApiError ``invalid_profile``, ``power_limit_out_of_range``, ``gpu_not_found``,
        ``power_not_permitted`` (the worker may not change limits: not root / no SYS_ADMIN),
        ``power_unavailable`` (no NVML or no GPU).
        """
        body: dict[str, Any] = {"actor": dump(actor)}
        if profile is not None:
            body["profile"] = profile
        if limit_w is not None:
            body["limit_w"] = limit_w
        if gpus is not None:
            body["gpus"] = gpus
        return await self._client.call(PowerStatus, "PUT", "power", json=body)
