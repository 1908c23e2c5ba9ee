"""The worker's models: every model of every server on its GPU, pushed as they load and are
evicted, polled to fill gaps. While a model server does not answer, Repairs says so."""

from __future__ import annotations

from typing import Any, override

from homeassistant.core import callback
from homeassistant.helpers import issue_registry as ir

from hydra_core.arbiter.client import ModelsClient
from hydra_core.arbiter.models import ModelInfo, ModelsStatus
from hydra_core.models import WorkerEvent
from hydra_core.wire import dump

from ...const import DOMAIN, MODELS_SCAN_INTERVAL
from ...coordinator import HydraPartCoordinator, show_issue


class HydraModelsCoordinator(HydraPartCoordinator[ModelsStatus, ModelsClient]):
    """The worker's models and their servers."""

    part = "models"
    api_type = ModelsClient
    disabled = "models_disabled"
    interval = MODELS_SCAN_INTERVAL

    @override
    async def async_fetch(self) -> ModelsStatus:
        """Every model, loaded or not, and the servers."""
        return await self.api.async_available()

    @override
    async def _async_update_data(self) -> ModelsStatus:
        status = await super()._async_update_data()
        self._update_unreachable_issue(status)
        return status

    @callback
    @override
    def async_set_updated_data(self, data: ModelsStatus) -> None:
        self._update_unreachable_issue(data)
        super().async_set_updated_data(data)

    @override
    async def async_handle_event(self, event: WorkerEvent) -> None:
        """A model loaded, was evicted, expired: read them all again (debounced)."""
        await self.async_request_refresh()

    @override
    def diagnostics(self) -> dict[str, Any]:
        return {**super().diagnostics(), "models": dump(self.data)}

    def model(self, model_id: str) -> ModelInfo | None:
        """A model as last read."""
        return next((model for model in self.data.models if model.id == model_id), None)

    def _update_unreachable_issue(self, status: ModelsStatus) -> None:
        issue_id = f"model_server_unreachable_{self.config_entry.entry_id}"
        down = [backend for backend in status.backends if not backend.reachable]
        if not down:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        show_issue(
            self.hass,
            issue_id,
            "model_server_unreachable",
            {
                "worker": self.config_entry.title,
                "server": down[0].url or down[0].name,
                "error": down[0].error or "no answer",
            },
        )
