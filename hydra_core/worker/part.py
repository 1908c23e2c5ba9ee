"""A part of the worker: one optional piece (containers, the task queue, voice, ...) in one folder.

A part declares its name, its options dataclass, its routes, the event types it emits and what
it adds to ``/api/v1/status``; the worker builds the parts its options ask for and the
application starts, routes and stops them in a loop. A worker without a part still answers that
part's routes, with a 404 whose code says the part is off, so a client can tell "off" from
"no such route".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, Self, TypeVar

from aiohttp import web

from .. import __version__
from ..audit import AuditLog
from ..events import EventBus
from ..gpu import GpuProbe
from ..models import PartInfo
from .errors import ApiError

if TYPE_CHECKING:
    from ..scheduler.handlers import TaskHandler
    from .config import WorkerConfig

_T = TypeVar("_T")
_R = TypeVar("_R", bound="Service")


@dataclass(slots=True, kw_only=True)
class BuildContext:
    """What a part may use while it is built: the options and the worker's shared pieces."""

    config: WorkerConfig
    probe: GpuProbe
    bus: EventBus
    audit: AuditLog
    # The parts built before this one, in the order of ``PARTS``.
    built: list[Part] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        """Where the worker keeps its state."""
        return self.config.core.data_dir

    @property
    def models_dir(self) -> Path:
        """Where downloaded models are kept."""
        return self.config.core.models_folder

    def options(self, section: type[_T]) -> _T:
        """A part's options."""
        return self.config[section]


class Part:
    """One optional piece of the worker. Subclasses set the class attributes and ``build``."""

    name: ClassVar[str]
    # The options dataclass of this part (see hydra_core.options).
    options: ClassVar[type[Any]]
    # What /events carries from this part.
    event_types: ClassVar[tuple[str, ...]] = ()
    # The 404 a route of this part answers on a worker without it.
    disabled_code: ClassVar[str]
    disabled_message: ClassVar[str]

    # The modules of the part's package whose ``routes`` it mounts. They are imported only when
    # the routes are mounted, since they import the part class to look the running part up.
    route_modules: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def route_table(cls) -> Iterable[web.AbstractRouteDef]:
        """The part's routes, mounted under /api/v1 whether or not the part runs; handlers
        find the running part with ``cls.of(request)``."""
        package = cls.__module__.rpartition(".")[0]
        tables: list[web.RouteTableDef] = [
            importlib.import_module(f"{package}.{module}").routes for module in cls.route_modules
        ]
        return [route for table in tables for route in table]

    @classmethod
    def build(cls, context: BuildContext) -> Self | None:
        """The part as the options ask for it, or None when they switch it off."""
        raise NotImplementedError

    async def async_start(self) -> None:
        """Start background work; called in the order of ``PARTS``."""

    async def async_stop(self) -> None:
        """Stop background work; called in reverse order."""

    def capabilities(self) -> tuple[str, ...]:
        """What this part offers, for ``/api/v1/status`` (e.g. voice: wake, stt, tts)."""
        return ()

    def task_handlers(self) -> Sequence[TaskHandler]:
        """Task kinds this part runs in the queue."""
        return ()

    def route_tokens(self) -> dict[str, str]:
        """Tokens besides the worker's that one of this part's routes accepts (its path under
        /api/v1 → the token), e.g. a token Prometheus may read metrics with and nothing else."""
        return {}

    def info(self) -> PartInfo:
        """What ``/api/v1/status`` says of this part."""
        return PartInfo(version=__version__, capabilities=self.capabilities())

    @classmethod
    def of(cls, request: web.Request) -> Self:
        """The running part for a request, or a 404 saying this worker runs without it."""
        part = request.app[PARTS_KEY].get(cls.name)
        if part is None:
            raise ApiError(404, cls.disabled_code, cls.disabled_message)
        assert isinstance(part, cls)
        return part

    @classmethod
    def find(cls, app: web.Application) -> Self | None:
        """The running part, or None."""
        part = app[PARTS_KEY].get(cls.name)
        return part if isinstance(part, cls) else None


class Service(Protocol):
    """Background work that starts and stops."""

    async def async_start(self) -> None:
        """Start it."""

    async def async_stop(self) -> None:
        """Stop it."""


class RunningPart(Part, Generic[_R]):
    """A part whose background work is all its service's: it starts and stops with the part."""

    def __init__(self, service: _R) -> None:
        self.service = service

    async def async_start(self) -> None:
        """Start the service."""
        await self.service.async_start()

    async def async_stop(self) -> None:
        """Stop it."""
        await self.service.async_stop()

    @classmethod
    def service_of(cls, request: web.Request) -> _R:
        """The running part's service for a request, or a 404 saying the worker runs without it."""
        return cls.of(request).service


PARTS_KEY = web.AppKey("parts", dict[str, Part])
