"""A head's routing rules over the API: read, replaced while it runs, kept across a restart and
over the cluster_routes option, returned to the option's, audited and pushed as an event; bad
rules are refused with a code and change nothing.

The head is the real worker application with its real queue and cluster part; only the placer
(the part that talks to Ray) is the stand-in of ``tests/cluster/standin.py``, whose nodes are
hydra-compute (labelled images) and the head (llm). Placement itself on a real Ray cluster is
``tests/cluster/test_cluster.py``'s.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
import json
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import pytest

from hydra_core.audit import AuditLog, AuditQuery
from hydra_core.client import HydraApiError, HydraClient
from hydra_core.cluster.client import ClusterClient
from hydra_core.cluster.models import (
    EVENT_CLUSTER_ROUTES,
    ClusterNode,
    ClusterReport,
    NodeResources,
)
from hydra_core.cluster.node import FOLDER, RayNode
from hydra_core.cluster.options import ClusterOptions
from hydra_core.cluster.part import ClusterPart
from hydra_core.cluster.routing import RoutingRules
from hydra_core.events import EventBus
from hydra_core.gpu import NoGpuProbe
from hydra_core.models import Actor
from hydra_core.scheduler import TaskContext, TaskHandler
from hydra_core.scheduler.part import TasksPart
from hydra_core.scheduler.scheduler import Scheduler
from hydra_core.scheduler.store import TaskStore
from tests.cluster.standin import StandInPlacer
from tests.worker_identity import INFO, TOKEN

from .conftest import ServeWorker

AUTH = {"Authorization": f"Bearer {TOKEN}"}
OPTION_ROUTES = ("render=images",)


class _Kind(TaskHandler):
    kind: ClassVar[str] = "render"

    def validate(self, payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    async def run(self, payload: dict[str, Any], context: TaskContext) -> dict[str, Any]:
        return {"ran_on": "head"}


class _Upscale(_Kind):
    kind: ClassVar[str] = "upscale_2x"


class _Chat(_Kind):
    kind: ClassVar[str] = "chat"


class _Chapter(_Kind):
    kind: ClassVar[str] = "chapter"
    coordinator = True


def _node(name: str, *labels: str, head: bool = False) -> ClusterNode:
    resources = NodeResources(cpus=8, gpus=1, vram_mb=16_000, labels=labels)
    return ClusterNode(node_id=name * 8, name=name, address="127.0.0.1", head=head, total=resources)


REPORT = ClusterReport(
    mode="head",
    address="127.0.0.1:6379",
    nodes=(_node("gpubox", "llm", head=True), _node("hydra-compute", "images")),
)


@dataclass
class Head:
    """A served head worker: its URL, its placer, audit log and event bus."""

    url: str
    placer: StandInPlacer
    audit: AuditLog
    bus: EventBus
    scheduler: Scheduler


@pytest.fixture
def start_head(
    serve_worker: ServeWorker, tmp_path: Path
) -> Any:  # a coroutine function: each call is the head (re)started on tmp_path
    async def start(routes: tuple[str, ...] = OPTION_ROUTES) -> Head:
        bus = EventBus()
        audit = AuditLog(tmp_path / "audit.db")
        probe = NoGpuProbe()
        scheduler = Scheduler(
            TaskStore(tmp_path / "tasks.db"),
            handlers=[_Kind(), _Upscale(), _Chat(), _Chapter()],
            probe=probe,
            bus=bus,
            data_dir=tmp_path,
            stop_timeout_s=0.5,
        )
        placer = StandInPlacer(REPORT, bus)
        scheduler.placer = placer
        options = ClusterOptions(cluster="head", cluster_routes=routes)
        node = RayNode(
            options,
            name="gpubox",
            probe=probe,
            data_dir=tmp_path,
            api_url="http://127.0.0.1:1/api/v1",
            token=TOKEN,
        )
        rules = RoutingRules(
            options.routes,
            placer=placer,
            scheduler=scheduler,
            audit=audit,
            bus=bus,
            folder=tmp_path / FOLDER,
        )
        cluster = ClusterPart(
            options,
            node=node,
            scheduler=scheduler,
            placer=placer,  # type: ignore[arg-type]
            name="gpubox",
            rules=rules,
        )
        url = await serve_worker(
            info=INFO, token=TOKEN, audit=audit, bus=bus, parts=[TasksPart(scheduler), cluster]
        )
        return Head(url=url, placer=placer, audit=audit, bus=bus, scheduler=scheduler)

    return start


@pytest.fixture
async def head(start_head: Any) -> Head:
    started: Head = await start_head()
    return started


@pytest.fixture
async def cluster(http: aiohttp.ClientSession, head: Head) -> ClusterClient:
    return ClusterClient(HydraClient(http, head.url, TOKEN))


async def test_routes_read_and_replaced_while_running(cluster: ClusterClient, head: Head) -> None:
    """The option's rules are in force at start; a PUT replaces them at once (the placer
    places by them) and they are listed in /cluster too."""
    first = await cluster.async_routes()
    assert (first.routes, first.source) == ({"render": "images"}, "option")

    answer = await cluster.async_set_routes(
        {"chat": "llm", "upscale_*": "*"}, actor=Actor(type="user", id="u1", name="Alice")
    )
    assert answer.routes == {"chat": "llm", "upscale_*": "*"}
    assert (answer.source, answer.option_routes, answer.warnings) == (
        "api",
        {"render": "images"},
        (),
    )
    assert head.placer.report.routes == {"chat": "llm", "upscale_*": "*"}
    assert (await cluster.async_report()).routes == {"chat": "llm", "upscale_*": "*"}

    # {} is a rule set of its own: nothing routed, every kind on the head.
    nothing = await cluster.async_set_routes({})
    assert (nothing.routes, nothing.source) == ({}, "api")
    assert head.placer.report.routes == {}


async def test_a_newly_routed_kind_is_placed_at_admission(
    cluster: ClusterClient, head: Head, http: aiohttp.ClientSession
) -> None:
    """A task of a kind routed by a PUT is placed on the node (counted by the stand-in
    placer's attempts), one of a kind no longer routed runs on the head."""
    await cluster.async_set_routes({"chat": "images"})
    client = HydraClient(http, head.url, TOKEN)
    chat = await client.request("POST", "tasks", json={"kind": "chat", "payload": {}})
    render = await client.request("POST", "tasks", json={"kind": "render", "payload": {}})
    for _ in range(200):
        tasks = {
            task["id"]: task
            for task in (await client.request("GET", "tasks"))["tasks"]
            if task["state"] == "succeeded"
        }
        if len(tasks) == 2:
            break
        await asyncio.sleep(0.02)
    assert head.placer.placed == [(chat["id"], "chat")]
    assert tasks[chat["id"]]["node"] == "hydra-compute"
    assert tasks[render["id"]]["node"] is None
    assert tasks[render["id"]]["result"] == {"ran_on": "head"}


async def test_a_label_no_node_has_is_accepted_with_a_warning(cluster: ClusterClient) -> None:
    answer = await cluster.async_set_routes({"chat": "gpu", "render": "images"})
    assert answer.routes == {"chat": "gpu", "render": "images"}
    (warning,) = answer.warnings
    assert "No node has the label 'gpu' now: tasks of chat wait" in warning


@pytest.mark.parametrize(
    ("routes", "code", "said"),
    [
        ({"chatt": "llm"}, "unknown_route_kind", "No task kind of this worker is 'chatt'"),
        ({"llm_*": "llm"}, "unknown_route_kind", "its kinds: chapter, chat, render, upscale_2x"),
        ({"chapter": "images"}, "coordinator_route", "chapter is a coordinator"),
        ({"chat": " "}, "invalid_route", "is not a rule"),
        ({"": "llm"}, "invalid_route", "is not a rule"),
        ({"chat,render": "llm"}, "invalid_route", "without spaces, commas or ="),
    ],
)
async def test_bad_rules_are_refused_and_change_nothing(
    cluster: ClusterClient,
    head: Head,
    routes: dict[str, str],
    code: str,
    said: str,
) -> None:
    with pytest.raises(HydraApiError) as refused:
        await cluster.async_set_routes({"chat": "llm", **routes})
    assert (refused.value.status, refused.value.code) == (400, code)
    assert said in refused.value.message
    assert (await cluster.async_routes()).routes == {"render": "images"}
    assert head.placer.report.routes == {"render": "images"}
    assert await head.audit.async_query(AuditQuery(action="set_routes")) == []


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b"chat=llm", "The body is not valid JSON"),
        (b'["chat"]', "The body must be a JSON object"),
        (b'{"routes": {"chat": 1}}', "routes.chat"),
        (b'{"routes": ["chat=llm"]}', "routes"),
        (b"{}", "routes"),
        (b'{"routes": {}, "extra": 1}', "Unknown field extra"),
        (json.dumps({"routes": {f"k{n}": "llm" for n in range(101)}}).encode(), "routes"),
        (json.dumps({"routes": {"chat": "l" * 201}}).encode(), "routes.chat"),
    ],
)
async def test_bad_bodies_are_refused(
    http: aiohttp.ClientSession, head: Head, body: bytes, said: str
) -> None:
    async with http.put(f"{head.url}/api/v1/cluster/routes", data=body, headers=AUTH) as answer:
        assert answer.status == 400
        error = await answer.json()
    assert error["code"] == "invalid_body"
    assert said in error["message"]
    assert head.placer.report.routes == {"render": "images"}


async def test_rules_outlive_a_restart_until_deleted(
    start_head: Any, http: aiohttp.ClientSession
) -> None:
    """Rules set by PUT are saved in the data dir and in force over the option after a restart
    (even with a different option); DELETE returns to the option's, also after a restart."""
    first: Head = await start_head()
    await ClusterClient(HydraClient(http, first.url, TOKEN)).async_set_routes({"chat": "llm"})

    again: Head = await start_head(("render=images", "upscale_*=*"))
    client = ClusterClient(HydraClient(http, again.url, TOKEN))
    kept = await client.async_routes()
    assert (kept.routes, kept.source) == ({"chat": "llm"}, "api")
    assert again.placer.report.routes == {"chat": "llm"}

    back = await client.async_reset_routes()
    assert (back.routes, back.source) == ({"render": "images", "upscale_*": "*"}, "option")
    assert again.placer.report.routes == back.routes

    third: Head = await start_head(("render=images",))
    assert third.placer.report.routes == {"render": "images"}


async def test_changes_are_audited_and_pushed(
    cluster: ClusterClient, head: Head, http: aiohttp.ClientSession
) -> None:
    events = HydraClient(http, head.url, TOKEN).async_events()
    await asyncio.wait_for(anext(events), 2)  # hello
    await cluster.async_set_routes({"chat": "llm"}, actor=Actor(type="user", id="u1", name="Alice"))
    await cluster.async_reset_routes()

    pushed = [await asyncio.wait_for(anext(events), 2) for _ in range(4)]
    await events.aclose()
    routes = [event.data for event in pushed if event.type == EVENT_CLUSTER_ROUTES]
    assert [(data["routes"], data["source"]) for data in routes] == [
        ({"chat": "llm"}, "api"),
        ({"render": "images"}, "option"),
    ]
    entries = await HydraClient(http, head.url, TOKEN).async_audit(limit=10)
    assert [
        (entry.action, entry.result, entry.actor.type, entry.actor.name, entry.detail)
        for entry in reversed(entries)
    ] == [
        ("set_routes", "ok", "user", "Alice", "render=images -> chat=llm"),
        ("reset_routes", "ok", "api", None, "chat=llm -> render=images"),
    ]
    assert {entry.container for entry in entries} == {"cluster:routes"}


async def test_a_joined_worker_or_one_alone_answers_with_a_code(
    serve_worker: ServeWorker, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """A worker that joined a cluster holds no rules (its head does), one alone has no
    cluster: each says so with its code. (The joined worker's Ray node is not started here:
    its placer is the stand-in; tests/cluster asks a real joined worker.)"""
    probe = NoGpuProbe()
    bus = EventBus()
    scheduler = Scheduler(
        TaskStore(tmp_path / "tasks.db"), handlers=[], probe=probe, bus=bus, data_dir=tmp_path
    )
    options = ClusterOptions(cluster="join", cluster_address="127.0.0.1:6379")
    node = RayNode(
        options, name="a", probe=probe, data_dir=tmp_path, api_url="http://x", token=TOKEN
    )
    joined = ClusterPart(
        options,
        node=node,
        scheduler=scheduler,
        placer=StandInPlacer(REPORT, bus),  # type: ignore[arg-type]
        name="a",
    )
    for parts, status, code in (
        ([TasksPart(scheduler), joined], 409, "cluster_not_head"),
        ([], 404, "cluster_disabled"),
    ):
        url = await serve_worker(info=INFO, token=TOKEN, bus=bus, parts=parts)
        client = ClusterClient(HydraClient(http, url, TOKEN))
        for call in (
            client.async_routes(),
            client.async_set_routes({"chat": "llm"}),
            client.async_reset_routes(),
        ):
            with pytest.raises(HydraApiError) as refused:
                await call
            assert (refused.value.status, refused.value.code) == (status, code)
