"""The models' entities: a VRAM sensor and an unload button for each model once it has been
seen loaded, and a select per LLM server whose option is the model it has loaded (choosing one
loads it, evicting idle models when it does not fit)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, override

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, UnitOfInformation
from homeassistant.core import callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from hydra_core.arbiter.models import ModelInfo

from ...data import HydraConfigEntry
from ...entity import HydraWorkerPartEntity
from .actions import async_load_model, async_unload_model
from .coordinator import HydraModelsCoordinator

# The backends whose models a select chooses between: the LLM servers.
LLM_BACKENDS = ("ollama", "llamacpp", "llamaswap")


class HydraModelEntity(HydraWorkerPartEntity[HydraModelsCoordinator]):
    """An entity of one model, on the worker's device."""

    def __init__(
        self,
        coordinator: HydraModelsCoordinator,
        model: ModelInfo,
        description: SensorEntityDescription | ButtonEntityDescription,
    ) -> None:
        """Follow the model by its id."""
        super().__init__(coordinator, description)
        self.model_id = model.id

    @property
    def model(self) -> ModelInfo | None:
        """The model as last read; None once the worker no longer lists it."""
        return self.coordinator.model(self.model_id)

    @property
    @override
    def available(self) -> bool:
        return super().available and self.model is not None


class HydraModelVramSensor(HydraModelEntity, SensorEntity):
    """The VRAM a model takes: 0 while it is not loaded."""

    @property
    @override
    def native_value(self) -> int | None:
        model = self.model
        if model is None:
            return None
        return (model.vram_bytes or 0) if model.loaded else 0

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any] | None:
        model = self.model
        if model is None:
            return None
        lease = model.lease
        return {
            "model": model.id,
            "backend": model.backend,
            "loaded": model.loaded,
            "last_used": (
                dt_util.utc_from_timestamp(model.last_used).isoformat() if model.last_used else None
            ),
            "in_flight": model.in_flight,
            "leased_by": lease.holder if lease else None,
            "pinned": model.pinned,
            "priority": model.priority,
        }


class HydraModelUnloadButton(HydraModelEntity, ButtonEntity):
    """Unload the model now (kept while leased or busy: the worker says so)."""

    @override
    async def async_press(self) -> None:
        await async_unload_model(self.coordinator, self._context, self.model_id)


class HydraLlmSelect(HydraWorkerPartEntity[HydraModelsCoordinator], SelectEntity):
    """The model an LLM server has loaded (the most recently used of them); choosing another
    loads it."""

    def __init__(self, coordinator: HydraModelsCoordinator, backend: str) -> None:
        """One per LLM server, by its name in the arbiter."""
        super().__init__(
            coordinator,
            replace(
                ACTIVE_LLM,
                key=f"active_llm_{backend}",
                translation_placeholders={"backend": backend},
            ),
        )
        self.backend = backend

    def _models(self) -> list[ModelInfo]:
        return [model for model in self.coordinator.data.models if _server(model) == self.backend]

    @property
    @override
    def options(self) -> list[str]:
        return [model.name for model in self._models()]

    @property
    @override
    def current_option(self) -> str | None:
        loaded = [model for model in self._models() if model.loaded]
        if not loaded:
            return None
        return max(loaded, key=lambda model: model.last_used or 0.0).name

    @override
    async def async_select_option(self, option: str) -> None:
        await async_load_model(self.coordinator, self._context, f"{self.backend}/{option}")


def _server(model: ModelInfo) -> str:
    """The server's name in a model's id (``ollama`` in ``ollama/llama3.2:latest``)."""
    return model.id.partition("/")[0]


# Each model's entities are these, keyed and named by the model's id.
MODEL_VRAM = SensorEntityDescription(
    key="model_vram",
    translation_key="model_vram",
    device_class=SensorDeviceClass.DATA_SIZE,
    state_class=SensorStateClass.MEASUREMENT,
    native_unit_of_measurement=UnitOfInformation.BYTES,
    suggested_unit_of_measurement=UnitOfInformation.GIGABYTES,
    suggested_display_precision=1,
)
UNLOAD_MODEL = ButtonEntityDescription(
    key="unload_model", translation_key="unload_model", entity_category=EntityCategory.CONFIG
)
ACTIVE_LLM = SelectEntityDescription(key="active_llm", translation_key="active_llm")


def _vram(model: ModelInfo) -> SensorEntityDescription:
    return replace(
        MODEL_VRAM, key=f"model_vram_{model.id}", translation_placeholders={"model": model.id}
    )


def _unload(model: ModelInfo) -> ButtonEntityDescription:
    return replace(
        UNLOAD_MODEL, key=f"unload_model_{model.id}", translation_placeholders={"model": model.id}
    )


def _add_loaded(
    entry: HydraConfigEntry,
    models: HydraModelsCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
    make: Any,
) -> None:
    """Add ``make(model)`` for each model when it is first seen loaded (now or later)."""
    known: set[str] = set()

    @callback
    def add_new() -> None:
        new = [m for m in models.data.models if m.loaded and m.id not in known]
        if new:
            known.update(model.id for model in new)
            async_add_entities([make(model) for model in new])

    add_new()
    entry.async_on_unload(models.async_add_listener(add_new))


@callback
def async_setup_sensors(
    entry: HydraConfigEntry,
    models: HydraModelsCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """A VRAM sensor per model seen loaded."""
    _add_loaded(
        entry, models, async_add_entities, lambda m: HydraModelVramSensor(models, m, _vram(m))
    )


@callback
def async_setup_buttons(
    entry: HydraConfigEntry,
    models: HydraModelsCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """An unload button per model seen loaded."""
    _add_loaded(
        entry, models, async_add_entities, lambda m: HydraModelUnloadButton(models, m, _unload(m))
    )


@callback
def async_setup_selects(
    entry: HydraConfigEntry,
    models: HydraModelsCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The active model of each LLM server."""
    async_add_entities(
        HydraLlmSelect(models, backend.name)
        for backend in models.data.backends
        if backend.kind in LLM_BACKENDS
    )
