"""The wire contract: dump/load round trips, lenient loading, strict request bodies."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
import pytest

from hydra_core.containers.models import ContainerActionRequest
from hydra_core.models import Actor, AuditEntry, CallerActor
from hydra_core.power.models import PowerRequest
from hydra_core.quality.models import ScoreRequest
from hydra_core.wire import dump, field_path, load, read_body
from hydra_core.worker.errors import error_middleware

ENTRY = AuditEntry(
    id=1, time=2.5, actor=Actor(type="user", id="u1"), container="web", action="stop", result="ok"
)


def test_dump_and_load_round_trip_and_ignore_newer_fields() -> None:
    data = dump(ENTRY)
    assert data["actor"] == {"type": "user", "id": "u1", "name": None}
    assert load(AuditEntry, {**data, "added_later": 1}) == ENTRY
    assert dump([ENTRY, ENTRY]) == [data, data]
    with pytest.raises(ValueError, match="container"):
        load(AuditEntry, {key: value for key, value in data.items() if key != "container"})


def test_field_path() -> None:
    assert field_path(("images", 0, "data")) == "images[0].data"
    assert field_path(()) == ""


def test_no_actor_is_the_api() -> None:
    assert CallerActor.resolve(None) == Actor(type="api")
    assert CallerActor.resolve(CallerActor(type="presence", name="Ada")) == Actor(
        type="presence", name="Ada"
    )


@pytest.mark.usefixtures("loopback_sockets")
@pytest.mark.parametrize(
    ("model", "body", "status", "says"),
    [
        (PowerRequest, b"", 200, "PowerRequest(profile=None"),
        (PowerRequest, b'{"limit_w": 250, "gpus": [0]}', 200, "limit_w=250.0"),
        (PowerRequest, b'{"limit_w": "250"}', 400, "limit_w: Input should be a valid number"),
        (PowerRequest, b'{"limit_w": NaN}', 400, "limit_w"),
        (PowerRequest, b'{"gpus": [-1]}', 400, "gpus[0]"),
        (PowerRequest, b'{"watts": 1}', 400, "Unknown field watts"),
        (PowerRequest, b'{"actor": {"type": "self_heal"}}', 400, "actor.type"),
        (PowerRequest, b"[1, 2]", 400, "The body must be a JSON object"),
        (PowerRequest, b"{not json", 400, "The body is not valid JSON"),
        (ScoreRequest, b"{}", 400, "Missing field images"),
        (ScoreRequest, b'{"images": [{"data": 5}]}', 400, "images[0].data"),
        (ContainerActionRequest, b'{"reason": "' + b"x" * 501 + b'"}', 400, "reason"),
    ],
)
async def test_read_body_is_strict_and_says_what_was_wrong(
    model: type[object], body: bytes, status: int, says: str
) -> None:
    async def handle(request: web.Request) -> web.Response:
        return web.json_response({"parsed": repr(await read_body(request, model))})

    app = web.Application(middlewares=[error_middleware])
    app.router.add_post("/", handle)
    async with TestClient(TestServer(app)) as client:
        reply = await client.post("/", data=body)
        answer = await reply.json()
    assert reply.status == status
    if status == 400:
        assert answer["code"] == "invalid_body"
        assert says in answer["message"]
    else:
        assert says in answer["parsed"]
