"""The head's routing rules at run time: read, replaced as a whole (``PUT /cluster/routes``) and
returned to the ``cluster_routes`` option's (``DELETE /cluster/routes``).

Rules set through the API are saved in the data dir (``cluster/routes.json``) and are in force
over the option's from then on, across restarts, until a DELETE: the option is what an operator
wrote at install, the API what someone changed since, and a restart must not silently undo
that. ``{}`` is a rule set of its own (route nothing: every kind runs on the head), not a
return to the option's.

A rule is checked against this head's task kinds: a kind pattern that matches none of them is
a typo (refused, ``unknown_route_kind``), and one that matches only coordinators is refused
(``coordinator_route``): a coordinator follows the tasks it queues from the head's ledger and
always runs there. A label no live node has is accepted with a warning, since its node may be
down for now: until one joins, new tasks of the kinds it routes are refused when queued
(``no_node_fits``) and those admitted wait in Ray.

A change applies to each task when the queue's gate admits it, as the option's rules always
did: tasks already queued of a kind now routed run on the cluster, those of a kind no longer
routed run on the head; a task already running stays where it is. Each change is audited
before it is made (no change unaudited) and published as a ``cluster_routes`` event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
import fnmatch
import logging
from pathlib import Path
import sqlite3
from typing import Protocol

from ..audit import PENDING, AuditLog
from ..errors import Refusal
from ..events import EventBus
from ..models import EVENT_AUDIT, Actor, AuditEntry
from ..scheduler.scheduler import Scheduler
from ..settings_file import load_typed_settings, save_settings
from ..wire import dump
from .models import EVENT_CLUSTER_ROUTES, ClusterReport, ClusterRoutes
from .placer import ANY_NODE

_LOGGER = logging.getLogger(__name__)

SAVED_FILE = "routes.json"
# What the audit log names as the thing acted on.
AUDIT_TARGET = "cluster:routes"
ACTION_SET = "set_routes"
ACTION_RESET = "reset_routes"
# Characters a kind pattern or label may not hold: the option's own separators, and spaces.
_SEPARATORS = frozenset(",= \t\r\n")


class InvalidRouteError(Refusal, code="invalid_route", status=400):
    """A rule without a kind or a label, or with a separator in one."""


class UnknownRouteKindError(Refusal, code="unknown_route_kind", status=400):
    """A kind pattern that matches no task kind of this head."""


class CoordinatorRouteError(Refusal, code="coordinator_route", status=400):
    """A rule for a coordinator kind, which runs on the head."""


class NotHeadError(Refusal, code="cluster_not_head", status=409):
    """Routing rules asked of a worker that joined a cluster: its head holds them."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SavedRoutes:
    """``cluster/routes.json``: the rules set through the API, None where none were."""

    routes: dict[str, str] | None = None


class RoutedPlacer(Protocol):
    """The placer as the rules see it: it takes the rules, and knows the nodes."""

    def set_routes(self, routes: Mapping[str, str]) -> None:
        """Place by these rules from the next admitted task on."""

    async def async_report(self) -> ClusterReport:
        """The nodes as last seen."""


def describe_routes(routes: Mapping[str, str]) -> str:
    """Rules as the option writes them: ``chat=llm, big=*`` (``none`` for no rule)."""
    return ", ".join(f"{kind}={label}" for kind, label in routes.items()) or "none"


class RoutingRules:
    """The rules in force on a head: the option's, or those saved from the API over them."""

    def __init__(
        self,
        option_routes: Mapping[str, str],
        *,
        placer: RoutedPlacer,
        scheduler: Scheduler,
        audit: AuditLog,
        bus: EventBus,
        folder: Path,
    ) -> None:
        """Take the saved rules over the option's, if any were saved, and give them to the
        placer."""
        self._option = dict(option_routes)
        self._placer = placer
        self._scheduler = scheduler
        self._audit = audit
        self._bus = bus
        self._path = folder / SAVED_FILE
        self._lock = asyncio.Lock()
        saved = load_typed_settings(self._path, SavedRoutes()).routes
        self._source = "option" if saved is None else "api"
        self._routes = self._option if saved is None else saved
        if saved is not None:
            _LOGGER.info(
                "Routing rules set through the API (%s) are in force over cluster_routes (%s)",
                describe_routes(saved),
                describe_routes(self._option),
            )
        placer.set_routes(self._routes)

    def report(self, warnings: tuple[str, ...] = ()) -> ClusterRoutes:
        """The rules in force, where they come from, and the option's."""
        return ClusterRoutes(
            routes=dict(self._routes),
            source=self._source,
            option_routes=dict(self._option),
            warnings=warnings,
        )

    async def async_set(self, routes: Mapping[str, str], actor: Actor) -> ClusterRoutes:
        """Replace the rules with ``routes`` (checked first: nothing changes if one is wrong),
        save them over the option's, and say what they cannot do yet."""
        checked = self._check(routes)
        async with self._lock:
            warnings = await self._warnings(checked)
            await self._change(checked, "api", ACTION_SET, actor)
            return self.report(warnings)

    async def async_reset(self, actor: Actor) -> ClusterRoutes:
        """Return to the option's rules, forgetting those set through the API."""
        async with self._lock:
            await self._change(self._option, "option", ACTION_RESET, actor)
            return self.report(await self._warnings(self._option))

    def _check(self, routes: Mapping[str, str]) -> dict[str, str]:
        kinds = self._scheduler.kinds
        checked: dict[str, str] = {}
        for raw_kind, raw_label in routes.items():
            kind, label = raw_kind.strip(), raw_label.strip()
            if not kind or not label or _SEPARATORS & {*kind, *label}:
                raise InvalidRouteError(
                    f"{raw_kind}={raw_label} is not a rule: each needs a kind (or a pattern"
                    " with *) and a node label (or *), without spaces, commas or ="
                )
            matched = [known for known in kinds if fnmatch.fnmatchcase(known, kind)]
            if not matched:
                raise UnknownRouteKindError(
                    f"No task kind of this worker is {kind!r}"
                    f" (its kinds: {', '.join(kinds) or 'none'})"
                )
            handlers = [self._scheduler.handler(known) for known in matched]
            if all(handler is not None and handler.coordinator for handler in handlers):
                raise CoordinatorRouteError(
                    f"{kind} is a coordinator ({', '.join(matched)}): it follows the tasks it"
                    " queues from the head's ledger and runs on the head; route the kinds it"
                    " queues instead"
                )
            checked[kind] = label
        return checked

    async def _warnings(self, routes: Mapping[str, str]) -> tuple[str, ...]:
        """A line for each label no live node has now."""
        nodes = [node for node in (await self._placer.async_report()).nodes if node.alive]
        labels = {label for node in nodes for label in node.total.labels}
        missing: dict[str, list[str]] = {}
        for kind, label in routes.items():
            if label != ANY_NODE and label not in labels:
                missing.setdefault(label, []).append(kind)
        return tuple(
            f"No node has the label {label!r} now: tasks of {', '.join(kinds)} wait until one"
            " joins, and new ones are refused when queued (no_node_fits)"
            for label, kinds in missing.items()
        )

    async def _change(
        self, routes: Mapping[str, str], source: str, action: str, actor: Actor
    ) -> None:
        """Audit, save (or forget) and apply the new rules, then say so."""
        before = describe_routes(self._routes)
        try:
            pending = await self._audit.async_record(
                actor=actor,
                container=AUDIT_TARGET,
                action=action,
                result=PENDING,
                detail=f"{before} -> {describe_routes(routes)}",
            )
        except (sqlite3.Error, OSError) as err:
            raise Refusal(
                f"The audit log cannot be written ({err}); the routing rules are unchanged",
                code="audit_unavailable",
                status=503,
            ) from err
        try:
            if source == "api":
                await asyncio.to_thread(save_settings, self._path, {"routes": dict(routes)})
            else:
                await asyncio.to_thread(self._path.unlink, missing_ok=True)
        except OSError as err:
            await self._settled(pending, "failed", f"{pending.detail} (not saved: {err})")
            raise
        self._routes, self._source = dict(routes), source
        self._placer.set_routes(self._routes)
        _LOGGER.info("Routing rules by %s: %s", actor.type, pending.detail)
        await self._settled(pending, "ok", pending.detail)
        self._bus.publish(EVENT_CLUSTER_ROUTES, dump(self.report()))

    async def _settled(self, pending: AuditEntry, result: str, detail: str | None) -> None:
        entry = await self._audit.async_settle(pending, result, detail)
        self._bus.publish(EVENT_AUDIT, dump(entry))
