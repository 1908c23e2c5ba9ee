"""The wire format: what the worker sends is what the client reads back."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

from hydra_core.gpu.models import GpuInfo, GpuReport
from hydra_core.models import API_VERSION, HostInfo, WorkerInfo, WorkerStatus
from hydra_core.wire import dump, load
from tests.fake_nvml import reading


def full_status() -> WorkerStatus:
    return WorkerStatus(
        worker=WorkerInfo(worker_id="5e1f", name="gpu-box", version="0.1.0"),
        started_at=1_760_000_000.5,
        host=HostInfo(
            hostname="gpu-box",
            os="Debian GNU/Linux 12 (bookworm)",
            kernel="6.1.0-18-amd64",
            python="3.11.7",
            cpu_count=32,
            memory_total_bytes=128 * 1024**3,
            memory_available_bytes=100 * 1024**3,
            load_average=(0.5, 1.25, 2.0),
            boot_time=1_759_990_000.0,
        ),
        gpu=GpuReport(
            backend="nvml",
            available=True,
            driver_version="570.86.15",
            gpus=(
                # A card that reports every field.
                dataclasses.replace(reading(0), uuid="GPU-aaaa"),
                # A card that reports little: the None values must survive the trip.
                GpuInfo(index=1, uuid="GPU-bbbb", name="Tesla K80"),
            ),
        ),
    )


def over_the_wire(data: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(data))


def test_round_trip_through_json() -> None:
    status = full_status()

    parsed = load(WorkerStatus, over_the_wire(dump(status)))

    assert parsed == status
    assert parsed.host.load_average == (0.5, 1.25, 2.0)
    assert parsed.gpu.gpus[1].fan_percent is None
    assert parsed.worker.api_version == API_VERSION


def test_round_trip_minimal_status() -> None:
    status = WorkerStatus(
        worker=WorkerInfo(worker_id="1", name="n", version="0"),
        started_at=0.0,
        host=HostInfo(hostname="h", os="o", kernel="k", python="3.11", cpu_count=1),
    )

    parsed = load(WorkerStatus, over_the_wire(dump(status)))

    assert parsed == status
    assert parsed.gpu.available is False
    assert parsed.host.load_average is None


def test_unknown_fields_from_a_newer_worker_are_ignored() -> None:
    status = full_status()
    data = over_the_wire(dump(status))
    data["uptime_s"] = 12
    data["worker"]["capabilities"] = ["voice"]
    data["host"]["gpu_driver"] = "open"
    data["gpu"]["cuda_version"] = "12.8"
    for gpu in data["gpu"]["gpus"]:
        gpu["clock_mhz"] = 2520
        gpu["processes"] = [{"pid": 1}]

    assert load(WorkerStatus, data) == status


def test_optional_fields_missing_from_an_older_worker_are_none() -> None:
    data = over_the_wire(dump(full_status()))
    older = copy.deepcopy(data)
    del older["worker"]["api_version"]
    del older["host"]["load_average"]
    del older["host"]["boot_time"]
    del older["gpu"]["driver_version"]
    del older["gpu"]["gpus"][0]["fan_percent"]

    parsed = load(WorkerStatus, older)

    assert parsed.worker.api_version == API_VERSION
    assert parsed.host.load_average is None
    assert parsed.host.boot_time is None
    assert parsed.gpu.driver_version is None
    assert parsed.gpu.gpus[0].fan_percent is None
    assert parsed.gpu.gpus[0].power_draw_w == 187.5


def test_gpu_by_uuid() -> None:
    by_uuid = full_status().gpu_by_uuid()

    assert set(by_uuid) == {"GPU-aaaa", "GPU-bbbb"}
    assert by_uuid["GPU-bbbb"].index == 1
