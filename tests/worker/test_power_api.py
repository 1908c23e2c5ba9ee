"""GPU power profiles through the worker's API, against the pynvml stand-in.

What an operator sees: the cards' limits change, refusals say why and change nothing, and a
chosen profile comes back after a worker restart or a GPU reset.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import json
import logging
from pathlib import Path
from typing import Any

import aiohttp
from pynvml import NVML_ERROR_LIBRARY_NOT_FOUND
import pytest

from hydra_core.client import HydraApiError, HydraClient
from hydra_core.events import EventBus, Subscription
from hydra_core.gpu import NvmlProbe, SimulatedProbe
from hydra_core.models import Actor
from hydra_core.power.client import PowerClient
from hydra_core.power.manager import SETTINGS_FILE, PowerManager
from hydra_core.power.models import EVENT_POWER, PowerSettings, PowerStatus
from hydra_core.power.part import PowerPart
from hydra_core.wire import load
from tests.fake_nvml import FakeNvml, make_gpu
from tests.worker_identity import TOKEN

from .conftest import ServeWorker

USER = Actor(type="user", id="u1", name="Alice")
# The watch loop's interval in these tests.
INTERVAL_S = 0.05

MakeClient = Callable[..., Any]


@pytest.fixture
def nvml() -> FakeNvml:
    """An RTX 4090 (450 W default, 150 to 600 W) and a smaller card (300 W, 100 to 350 W)."""
    return FakeNvml(
        [
            make_gpu(0),
            make_gpu(
                1,
                name="NVIDIA GeForce RTX 4070",
                limit_mw=300_000,
                default_limit_mw=300_000,
                limit_min_mw=100_000,
                limit_max_mw=350_000,
            ),
        ]
    )


@pytest.fixture
def make_client(
    serve_worker: ServeWorker, http: aiohttp.ClientSession, tmp_path: Path
) -> MakeClient:
    """A worker with power profiles over ``probe``, its data in tmp_path; a new one each call
    is the same worker restarted."""

    async def make(
        probe: Any, bus: EventBus | None = None, **changes: Any
    ) -> tuple[HydraClient, str]:
        power = PowerManager(
            probe,
            path=tmp_path / SETTINGS_FILE,
            bus=bus,
            interval_s=INTERVAL_S,
            **changes,
        )
        url = await serve_worker(token=TOKEN, probe=probe, bus=bus, parts=[PowerPart(power)])
        return HydraClient(http, url, TOKEN), url

    return make


def limits_w(nvml: FakeNvml) -> list[float]:
    return [gpu.limit_mw / 1000 for gpu in nvml.gpus]


async def wait_until(check: Callable[[], bool], within: float = 2.0) -> None:
    async with asyncio.timeout(within):
        while not check():
            await asyncio.sleep(0.01)


async def published(events: Subscription, check: Callable[[PowerStatus], bool]) -> PowerStatus:
    """The first power status published that passes ``check``."""
    async with asyncio.timeout(2.0):
        while True:
            event = await events.next(2.0)
            assert event is not None
            if event.type == EVENT_POWER and check(status := load(PowerStatus, event.data)):
                return status


async def test_profiles_set_every_cards_limit(nvml: FakeNvml, make_client: MakeClient) -> None:
    client, _ = await make_client(NvmlProbe(nvml))

    before = await PowerClient(client).async_power()
    assert before.available
    assert [(gpu.profile, gpu.enforced_w, gpu.default_w) for gpu in before.gpus] == [
        (None, 450, 450),
        (None, 300, 300),
    ]

    eco = await PowerClient(client).async_set_power(actor=USER, profile="eco")
    assert limits_w(nvml) == [270, 180]
    assert [(gpu.profile, gpu.target_w, gpu.enforced_w) for gpu in eco.gpus] == [
        ("eco", 270, 270),
        ("eco", 180, 180),
    ]
    assert eco.settings == PowerSettings(eco_percent=60, balanced_percent=80)

    await PowerClient(client).async_set_power(actor=USER, profile="balanced")
    assert limits_w(nvml) == [360, 240]
    full = await PowerClient(client).async_set_power(actor=USER, profile="full", gpus=[1])
    assert limits_w(nvml) == [360, 300]
    assert [gpu.profile for gpu in full.gpus] == ["balanced", "full"]
    assert [gpu.error for gpu in full.gpus] == [None, None]


async def test_profile_percentages_are_the_workers(nvml: FakeNvml, make_client: MakeClient) -> None:
    client, _ = await make_client(
        NvmlProbe(nvml), settings=PowerSettings(eco_percent=50, balanced_percent=70)
    )

    await PowerClient(client).async_set_power(actor=USER, profile="eco")

    assert limits_w(nvml) == [225, 150]


async def test_a_profile_outside_the_cards_range_is_clamped_and_logged(
    nvml: FakeNvml, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    nvml.gpus[0].limit_min_mw = 300_000
    client, _ = await make_client(NvmlProbe(nvml))

    with caplog.at_level(logging.INFO, logger="hydra_core.power.manager"):
        status = await PowerClient(client).async_set_power(actor=USER, profile="eco", gpus=[0])

    assert limits_w(nvml) == [300, 300]
    assert status.gpus[0].target_w == 300
    assert "eco on GPU 0 means 270 W, outside the card's range 300 to 600 W: using 300 W" in (
        caplog.text
    )
    assert "user Alice sets GPU power to eco on GPU 0" in caplog.text


async def test_a_limit_in_watts(nvml: FakeNvml, make_client: MakeClient) -> None:
    client, _ = await make_client(NvmlProbe(nvml))

    status = await PowerClient(client).async_set_power(actor=USER, limit_w=333.5, gpus=[0])

    assert limits_w(nvml) == [333.5, 300]
    assert (status.gpus[0].profile, status.gpus[0].target_w) == ("custom", 333.5)
    assert status.gpus[1].profile is None


async def test_a_limit_out_of_range_changes_no_card(
    nvml: FakeNvml, make_client: MakeClient
) -> None:
    client, _ = await make_client(NvmlProbe(nvml))

    with pytest.raises(HydraApiError) as refused:
        await PowerClient(client).async_set_power(actor=USER, limit_w=400)

    assert (refused.value.status, refused.value.code) == (400, "power_limit_out_of_range")
    assert "GPU 1 (NVIDIA GeForce RTX 4070): 100 to 350 W" in refused.value.message
    assert limits_w(nvml) == [450, 300]
    assert nvml.set_limit_calls == 0
    status = await PowerClient(client).async_power()
    assert [gpu.profile for gpu in status.gpus] == [None, None]


async def test_not_permitted_is_refused_reported_and_applied_once_permitted(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    nvml = FakeNvml([make_gpu(0)], root=False)
    bus = EventBus()
    events = bus.subscribe()
    client, _ = await make_client(NvmlProbe(nvml), bus)

    with caplog.at_level(logging.WARNING, logger="hydra_core.power.manager"):
        with pytest.raises(HydraApiError) as refused:
            await PowerClient(client).async_set_power(actor=USER, profile="eco")
        # The watch loop keeps trying, and keeps quiet about it.
        await wait_until(lambda: nvml.set_limit_calls >= 4)

    assert (refused.value.status, refused.value.code) == (403, "power_not_permitted")
    assert "root" in refused.value.message
    assert "SYS_ADMIN" in refused.value.message
    status = await PowerClient(client).async_power()
    gpu = status.gpus[0]
    assert (gpu.profile, gpu.target_w, gpu.enforced_w) == ("eco", 270, 450)
    assert gpu.error_code == "not_permitted"
    assert gpu.error is not None
    assert "SYS_ADMIN" in gpu.error
    assert caplog.text.count("does not enforce its power profile") == 1

    nvml.root = True

    applied = await published(
        events, lambda status: status.gpus[0].profile == "eco" and status.gpus[0].error is None
    )
    assert applied.gpus[0].enforced_w == 270
    assert limits_w(nvml) == [270]


async def test_the_profile_is_applied_again_when_the_worker_restarts(
    nvml: FakeNvml, make_client: MakeClient, tmp_path: Path
) -> None:
    client, _ = await make_client(NvmlProbe(nvml))
    await PowerClient(client).async_set_power(actor=USER, profile="eco", gpus=[0])
    await PowerClient(client).async_set_power(actor=USER, limit_w=200, gpus=[1])
    assert (tmp_path / SETTINGS_FILE).exists()

    # The host rebooted: the driver starts on the default limits.
    nvml.reset_gpu(0)
    nvml.reset_gpu(1)
    client, _ = await make_client(NvmlProbe(nvml))

    assert limits_w(nvml) == [270, 200]
    status = await PowerClient(client).async_power()
    assert [(gpu.profile, gpu.target_w) for gpu in status.gpus] == [("eco", 270), ("custom", 200)]


async def test_the_profile_is_applied_again_after_a_gpu_reset(
    nvml: FakeNvml, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = await make_client(NvmlProbe(nvml))
    await PowerClient(client).async_set_power(actor=USER, profile="balanced")

    with caplog.at_level(logging.INFO, logger="hydra_core.power.manager"):
        nvml.reset_gpu(0)
        await wait_until(lambda: limits_w(nvml) == [360, 240])

    assert "GPU 0 enforces 450 W instead of 360 W (balanced); setting it again" in caplog.text
    status = await PowerClient(client).async_power()
    assert [(gpu.profile, gpu.enforced_w, gpu.error) for gpu in status.gpus] == [
        ("balanced", 360, None),
        ("balanced", 240, None),
    ]


async def test_a_card_without_a_settable_limit_says_so(make_client: MakeClient) -> None:
    nvml = FakeNvml([make_gpu(0, unsupported={"nvmlDeviceSetPowerManagementLimit"})])
    client, _ = await make_client(NvmlProbe(nvml))

    with pytest.raises(HydraApiError) as refused:
        await PowerClient(client).async_set_power(actor=USER, profile="eco")

    assert (refused.value.status, refused.value.code) == (409, "power_unavailable")
    assert "GPU 0 does not support changing its power limit" in refused.value.message
    gpu = (await PowerClient(client).async_power()).gpus[0]
    assert (gpu.profile, gpu.error_code, gpu.enforced_w) == ("eco", "not_supported", 450)


async def test_kept_choices_that_make_no_sense_are_ignored(
    nvml: FakeNvml, make_client: MakeClient, tmp_path: Path
) -> None:
    first, second = (gpu.uuid for gpu in nvml.gpus)
    (tmp_path / SETTINGS_FILE).write_text(
        json.dumps(
            {"gpus": {first: {"profile": "turbo"}, second: {"profile": "custom", "limit_w": 200}}}
        )
    )

    client, _ = await make_client(NvmlProbe(nvml))

    assert limits_w(nvml) == [450, 200]
    assert [gpu.profile for gpu in (await PowerClient(client).async_power()).gpus] == [
        None,
        "custom",
    ]


async def test_the_simulated_backend_keeps_its_limits(make_client: MakeClient) -> None:
    client, _ = await make_client(SimulatedProbe(count=1))

    status = await PowerClient(client).async_set_power(actor=USER, profile="eco")

    assert (status.gpus[0].target_w, status.gpus[0].enforced_w) == (210, 210)


async def test_without_nvml_power_is_unavailable(make_client: MakeClient) -> None:
    client, _ = await make_client(NvmlProbe(FakeNvml(init_error=NVML_ERROR_LIBRARY_NOT_FOUND)))

    status = await PowerClient(client).async_power()
    assert not status.available
    assert status.reason is not None
    assert "driver" in status.reason

    with pytest.raises(HydraApiError) as refused:
        await PowerClient(client).async_set_power(actor=USER, profile="eco")
    assert (refused.value.status, refused.value.code) == (409, "power_unavailable")
    assert "driver" in refused.value.message


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "invalid_body"),
        ({"profile": "eco", "limit_w": 200}, 400, "invalid_body"),
        ({"profile": "turbo"}, 400, "invalid_profile"),
        ({"profile": 3}, 400, "invalid_body"),
        ({"limit_w": "200"}, 400, "invalid_body"),
        ({"limit_w": True}, 400, "invalid_body"),
        ({"profile": "eco", "gpus": []}, 400, "invalid_body"),
        ({"profile": "eco", "gpus": ["0"]}, 400, "invalid_body"),
        ({"profile": "eco", "gpus": [-1]}, 400, "invalid_body"),
        ({"profile": "eco", "gpus": [0, 7]}, 404, "gpu_not_found"),
        ({"profile": "eco", "watts": 1}, 400, "invalid_body"),
        ({"profile": "eco", "actor": {"type": "self_heal"}}, 400, "invalid_body"),
        ({"profile": "eco", "actor": {"type": "user", "name": 5}}, 400, "invalid_body"),
        ("[1, 2]", 400, "invalid_body"),
        ("{not json", 400, "invalid_body"),
    ],
)
async def test_bad_requests_change_nothing(
    nvml: FakeNvml,
    make_client: MakeClient,
    http: aiohttp.ClientSession,
    body: Any,
    status: int,
    code: str,
) -> None:
    _, url = await make_client(NvmlProbe(nvml))

    response = await http.put(
        f"{url}/api/v1/power",
        headers={"Authorization": f"Bearer {TOKEN}"},
        **({"data": body} if isinstance(body, str) else {"json": body}),
    )

    assert response.status == status
    answer = await response.json()
    assert answer["code"] == code
    assert answer["message"]
    assert limits_w(nvml) == [450, 300]
    assert nvml.set_limit_calls == 0
