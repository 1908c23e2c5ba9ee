"""Worker CPU time to build one /api/v1/status with 4 GPUs, NVML's own per-call cost excluded.

Run: .venv-worker/bin/python -m benchmarks.status_build   (or .venv/bin/python)

NVML is the pynvml stand-in from tests/ (no GPU here). Its own cost is measured by calling the
same getters directly, the same number of times, and subtracted, so the figure is the worker's
own work: the probe's conversions, the host facts, the status model, and its JSON encoding.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from hydra_core.gpu import NvmlProbe
from hydra_core.models import WorkerInfo
from hydra_core.wire import dump
from hydra_core.worker.app import WorkerState, build_status
from tests.fake_nvml import FakeNvml, make_gpu

ROUNDS = 3000
GPUS = 4


def _nvml_only_cost(nvml: FakeNvml, rounds: int) -> float:
    """CPU seconds the stand-in itself spends answering the probe's calls."""
    started = time.process_time()
    for _ in range(rounds):
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            nvml.nvmlDeviceGetUUID(handle)
            nvml.nvmlDeviceGetName(handle)
            nvml.nvmlDeviceGetUtilizationRates(handle)
            nvml.nvmlDeviceGetMemoryInfo(handle)
            nvml.nvmlDeviceGetPowerManagementLimitConstraints(handle)
            nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)
            nvml.nvmlDeviceGetPowerUsage(handle)
            nvml.nvmlDeviceGetEnforcedPowerLimit(handle)
            nvml.nvmlDeviceGetPowerManagementDefaultLimit(handle)
            nvml.nvmlDeviceGetFanSpeed(handle)
    return time.process_time() - started


async def _status_cost(nvml: FakeNvml, rounds: int) -> tuple[float, int]:
    probe = NvmlProbe(nvml)
    await probe.async_start()
    state = WorkerState(
        info=WorkerInfo(worker_id="bench", name="bench", version="0"),
        probe=probe,
        started_at=time.time(),
    )
    body = b""
    await build_status(state)  # warm up
    started = time.process_time()
    for _ in range(rounds):
        body = json.dumps(dump(await build_status(state))).encode()
    elapsed = time.process_time() - started
    await probe.async_close()
    return elapsed, len(body)


def main() -> None:
    """Print the figures."""
    nvml = FakeNvml([make_gpu(index) for index in range(GPUS)])
    calls_before = nvml.calls
    total, size = asyncio.run(_status_cost(nvml, ROUNDS))
    calls_per_status = (nvml.calls - calls_before) / (ROUNDS + 1)
    nvml.nvmlInit()  # the probe shut it down when it closed
    nvml_cost = _nvml_only_cost(nvml, ROUNDS)
    own = (total - nvml_cost) / ROUNDS
    print(f"Python {sys.version.split()[0]}, {GPUS} GPUs, {ROUNDS} statuses")
    print(f"NVML calls per status: {calls_per_status:.0f}")
    print(f"CPU per status, total:         {1000 * total / ROUNDS:.3f} ms")
    print(f"CPU per status, NVML stand-in: {1000 * nvml_cost / ROUNDS:.3f} ms")
    print(f"CPU per status, worker's own:  {1000 * own:.3f} ms (goal < 2 ms)")
    print(f"JSON size: {size} bytes")


if __name__ == "__main__":
    main()
