"""The audit log, the event bus and the protection policy."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hydra_core.audit import AuditLog, AuditQuery
from hydra_core.containers.policy import ProtectionPolicy
from hydra_core.events import EventBus
from hydra_core.models import Actor

USER = Actor(type="user", id="u1", name="Ada")


async def test_audit_survives_reopening_and_filters(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    log = AuditLog(path)
    await log.async_open()
    first = await log.async_record(
        actor=USER, container="web", action="restart", result="ok", reason="slow"
    )
    await log.async_record(
        actor=Actor(type="self_heal"),
        container="db",
        action="restart",
        result="refused",
        reason="unhealthy",
        detail="protected",
    )
    await log.async_close()

    reopened = AuditLog(path)
    await reopened.async_open()
    entries = await reopened.async_query(AuditQuery())
    assert [entry.container for entry in entries] == ["db", "web"]  # newest first
    assert entries[1] == first
    refused = await reopened.async_query(AuditQuery(result="refused", actor_type="self_heal"))
    assert [(e.container, e.detail) for e in refused] == [("db", "protected")]
    assert await reopened.async_query(AuditQuery(container="nope")) == []
    page = await reopened.async_query(AuditQuery(limit=1))
    older = await reopened.async_query(AuditQuery(before_id=page[0].id))
    assert [e.container for e in page + older] == ["db", "web"]
    await reopened.async_close()


async def test_audit_values_are_parameters_not_sql(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.db")
    await log.async_open()
    await log.async_record(
        actor=USER, container="x'; DROP TABLE audit; --", action="stop", result="ok"
    )
    assert len(await log.async_query(AuditQuery(container="x'; DROP TABLE audit; --"))) == 1
    assert len(await log.async_query(AuditQuery())) == 1
    await log.async_close()


async def test_bus_fans_out_and_cuts_off_a_stuck_listener() -> None:
    bus = EventBus()
    fast = bus.subscribe()
    slow = bus.subscribe(maxsize=2)
    for number in range(3):
        bus.publish("container", {"n": number})
    assert slow.overflowed
    received = []

    async def drain() -> None:
        async for event in fast:
            received.append(event.data["n"])
            if len(received) == 3:
                fast.close()

    await asyncio.wait_for(drain(), 1)
    assert received == [0, 1, 2]
    # The stuck listener's iteration ends instead of growing without bound.
    assert [event async for event in slow] == []


def test_protection_by_pattern_and_label() -> None:
    policy = ProtectionPolicy.from_patterns(["homeassistant", "db-*", " "])
    assert policy.is_protected("homeassistant", {})
    assert policy.is_protected("db-main", None)
    assert not policy.is_protected("db", {})
    assert not policy.is_protected("HomeAssistant", {})  # patterns are case-sensitive
    assert policy.is_protected("web", {"hydra.protected": "true"})
    assert policy.is_protected("web", {"hydra.protected": " TRUE "})
    assert not policy.is_protected("web", {"hydra.protected": "false"})
