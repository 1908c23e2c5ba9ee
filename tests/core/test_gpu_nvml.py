"""NvmlProbe against the pynvml stand-in: what an operator sees for every state of the driver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import concurrent.futures
import dataclasses
import importlib
import sys
import threading
from typing import Any

import pynvml
import pytest

from hydra_core.gpu import NvmlProbe
from hydra_core.gpu.models import GpuInfo
from tests.fake_nvml import GIB, FakeGpu, FakeNvml, make_gpu, reading

ALL_OPTIONAL_GETTERS = {
    "nvmlDeviceGetUtilizationRates",
    "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetTemperature",
    "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetEnforcedPowerLimit",
    "nvmlDeviceGetPowerManagementLimitConstraints",
    "nvmlDeviceGetPowerManagementDefaultLimit",
    "nvmlDeviceGetFanSpeed",
    "nvmlDeviceGetTemperatureThreshold",
}
OPTIONAL_FIELDS = [
    field.name
    for field in dataclasses.fields(GpuInfo)
    if field.name not in {"index", "uuid", "name"}
]


def started(fake: FakeNvml) -> NvmlProbe:
    """A probe started synchronously (no thread involved)."""
    probe = NvmlProbe(fake)
    probe.start()
    return probe


@pytest.fixture
async def async_probe() -> AsyncIterator[list[NvmlProbe]]:
    """Probes used through their async API; their threads are stopped afterwards."""
    probes: list[NvmlProbe] = []
    yield probes
    for probe in probes:
        await probe.async_close()


# --- the library or the driver is missing ---------------------------------------------------


@pytest.fixture
def no_pynvml(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import pynvml`` fail the way it does when nvidia-ml-py is not installed."""
    monkeypatch.setitem(sys.modules, "pynvml", None)
    with pytest.raises(ImportError):
        importlib.import_module("pynvml")


@pytest.mark.usefixtures("no_pynvml")
def test_library_missing_names_the_package() -> None:
    probe = NvmlProbe()
    probe.start()
    report = probe.read()
    probe.close()

    assert report.backend == "nvml"
    assert report.available is False
    assert report.gpus == ()
    assert "nvidia-ml-py" in report.reason


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, "No NVIDIA driver found (libnvidia-ml is missing)"),
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, "The NVIDIA driver is not loaded"),
        (pynvml.NVML_ERROR_NO_PERMISSION, "No permission to talk to the NVIDIA driver"),
        (pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH, "reboot after a driver update"),
    ],
)
def test_init_failure_gives_the_specific_reason(code: int, expected: str) -> None:
    fake = FakeNvml([make_gpu(0)], init_error=code)
    probe = started(fake)  # must not raise
    report = probe.read()

    assert report.available is False
    assert report.gpus == ()
    assert expected in report.reason
    assert fake.init_calls == 1


def test_init_failure_with_another_code_still_explains() -> None:
    fake = FakeNvml([make_gpu(0)], init_error=pynvml.NVML_ERROR_UNKNOWN)
    probe = started(fake)
    report = probe.read()

    assert report.available is False
    assert report.gpus == ()
    assert report.reason.startswith("NVML failed to initialise: ")
    assert len(report.reason) > len("NVML failed to initialise: ")


def test_close_after_failed_init_does_not_raise() -> None:
    fake = FakeNvml(init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED)
    probe = started(fake)
    probe.close()
    assert probe.read().available is False


def test_no_gpu() -> None:
    report = started(FakeNvml([])).read()

    assert report.available is False
    assert report.gpus == ()
    assert "no NVIDIA GPU" in report.reason
    assert report.driver_version == "570.86.15"


def test_read_before_start_is_not_available() -> None:
    fake = FakeNvml([make_gpu(0)])
    report = NvmlProbe(fake).read()

    assert report.available is False
    assert report.gpus == ()
    assert report.reason
    assert fake.init_calls == 0


# --- values -------------------------------------------------------------------------------


def expected_info(index: int, gpu: FakeGpu) -> GpuInfo:
    return GpuInfo(
        index=index,
        uuid=gpu.uuid,
        name=gpu.name,
        utilization_percent=float(gpu.gpu_util),
        memory_utilization_percent=float(gpu.mem_util),
        memory_total_bytes=gpu.memory_total,
        memory_used_bytes=gpu.memory_used,
        memory_free_bytes=gpu.memory_total - gpu.memory_used,
        temperature_c=float(gpu.temperature),
        power_draw_w=gpu.power_mw / 1000,
        power_limit_w=gpu.limit_mw / 1000,
        power_limit_min_w=gpu.limit_min_mw / 1000,
        power_limit_max_w=gpu.limit_max_mw / 1000,
        power_limit_default_w=gpu.default_limit_mw / 1000,
        fan_percent=float(gpu.fan),
        slowdown_temperature_c=float(gpu.slowdown),
    )


def test_one_gpu_every_field_converted() -> None:
    fake = FakeNvml([make_gpu(0)])
    report = started(fake).read()

    assert report.available is True
    assert report.reason is None
    assert report.driver_version == "570.86.15"
    (gpu,) = report.gpus
    assert gpu == reading(0)
    assert gpu.uuid == "GPU-00000000-1111-2222-3333-444455556666"
    assert (gpu.memory_free_bytes, gpu.power_limit_w, gpu.fan_percent) == (18 * GIB, 450.0, 45.0)


def test_byte_strings_from_old_bindings_become_text() -> None:
    class BytesNvml(FakeNvml):
        def nvmlDeviceGetName(self, handle: FakeGpu) -> Any:
            return super().nvmlDeviceGetName(handle).encode()

        def nvmlDeviceGetUUID(self, handle: FakeGpu) -> Any:
            return super().nvmlDeviceGetUUID(handle).encode()

        def nvmlSystemGetDriverVersion(self) -> Any:
            return super().nvmlSystemGetDriverVersion().encode()

    report = started(BytesNvml([make_gpu(0)])).read()

    assert report.driver_version == "570.86.15"
    assert report.gpus[0].name == "NVIDIA GeForce RTX 4090"
    assert report.gpus[0].uuid == "GPU-00000000-1111-2222-3333-444455556666"


def test_four_gpus_every_field_index_and_uuid() -> None:
    cards = [
        make_gpu(
            index,
            name=f"NVIDIA RTX A{index}000",
            gpu_util=10 * index + 1,
            mem_util=5 * index + 2,
            memory_total=(8 + 8 * index) * GIB,
            memory_used=(index + 1) * GIB + 123,
            temperature=40 + index,
            power_mw=100_250 + 1_000 * index,
            limit_mw=300_000 + 10_000 * index,
            limit_min_mw=100_000 + index,
            limit_max_mw=400_000 + index,
            default_limit_mw=320_000 + index,
            fan=20 + index,
        )
        for index in range(4)
    ]
    report = started(FakeNvml(cards)).read()

    assert report.available is True
    assert list(report.gpus) == [expected_info(index, gpu) for index, gpu in enumerate(cards)]
    assert [gpu.index for gpu in report.gpus] == [0, 1, 2, 3]
    assert len({gpu.uuid for gpu in report.gpus}) == 4
    # Spot-check the conversions independently of expected_info.
    assert report.gpus[3].power_draw_w == 103.25
    assert report.gpus[3].memory_free_bytes == 32 * GIB - 4 * GIB - 123
    assert report.gpus[2].power_limit_min_w == 100.002


def test_one_unsupported_getter_only_that_value_is_none() -> None:
    fanless = make_gpu(0, unsupported={"nvmlDeviceGetFanSpeed"})
    fanned = make_gpu(1, fan=70)
    probe = started(FakeNvml([fanless, fanned]))

    for _ in range(2):  # the second read (already known unsupported) behaves the same
        report = probe.read()
        assert report.available is True
        first, second = report.gpus
        assert first.fan_percent is None
        assert first == dataclasses.replace(expected_info(0, fanless), fan_percent=None)
        assert second.fan_percent == 70.0
        assert second == expected_info(1, fanned)


def test_every_optional_getter_unsupported_gpu_still_listed() -> None:
    bare = make_gpu(0, name="Tesla K80", unsupported=ALL_OPTIONAL_GETTERS)
    report = started(FakeNvml([bare, make_gpu(1)])).read()

    assert report.available is True
    first, second = report.gpus
    assert (first.index, first.uuid, first.name) == (0, bare.uuid, "Tesla K80")
    assert {name: getattr(first, name) for name in OPTIONAL_FIELDS} == dict.fromkeys(
        OPTIONAL_FIELDS
    )
    assert all(getattr(second, name) is not None for name in OPTIONAL_FIELDS)


def test_gpu_lost_after_first_read_is_left_out() -> None:
    cards = [make_gpu(0), make_gpu(1), make_gpu(2)]
    probe = started(FakeNvml(cards))
    assert [gpu.uuid for gpu in probe.read().gpus] == [card.uuid for card in cards]

    cards[1].lost = True
    report = probe.read()

    assert report.available is True
    assert [(gpu.index, gpu.uuid) for gpu in report.gpus] == [
        (0, cards[0].uuid),
        (2, cards[2].uuid),
    ]


def test_gpu_lost_in_the_middle_of_a_read_is_left_out() -> None:
    cards = [make_gpu(0), make_gpu(1)]

    class LostWhileReading(FakeNvml):
        def nvmlDeviceGetPowerUsage(self, handle: FakeGpu) -> int:
            if handle is cards[0]:
                handle.lost = True  # falls off the bus between two getters
            return super().nvmlDeviceGetPowerUsage(handle)

    report = started(LostWhileReading(cards)).read()

    assert [gpu.uuid for gpu in report.gpus] == [cards[1].uuid]


def test_every_gpu_lost_is_reported_not_raised() -> None:
    cards = [make_gpu(0), make_gpu(1)]
    probe = started(FakeNvml(cards))
    for card in cards:
        card.lost = True

    report = probe.read()

    assert report.available is False
    assert report.gpus == ()
    assert "None of the 2 GPUs" in report.reason


def test_gpu_removed_from_the_list_is_left_out() -> None:
    cards = [make_gpu(0), make_gpu(1), make_gpu(2)]
    fake = FakeNvml(cards)
    probe = started(fake)
    assert len(probe.read().gpus) == 3

    del fake.gpus[2]
    report = probe.read()

    assert [gpu.uuid for gpu in report.gpus] == [cards[0].uuid, cards[1].uuid]


def test_gpu_removed_while_counting_is_left_out() -> None:
    """NVML counted 3, but the last one is gone by the time its handle is asked for."""
    cards = [make_gpu(0), make_gpu(1), make_gpu(2)]

    class Shrinking(FakeNvml):
        def nvmlDeviceGetCount(self) -> int:
            count = super().nvmlDeviceGetCount()
            if len(self.gpus) == 3:
                del self.gpus[2]
            return count

    report = started(Shrinking(cards)).read()

    assert report.available is True
    assert [gpu.uuid for gpu in report.gpus] == [cards[0].uuid, cards[1].uuid]


# --- lifetime and threading ---------------------------------------------------------------


async def test_init_once_across_many_reads(async_probe: list[NvmlProbe]) -> None:
    fake = FakeNvml([make_gpu(0), make_gpu(1)])
    probe = NvmlProbe(fake)
    async_probe.append(probe)
    await probe.async_start()

    for _ in range(10):
        report = await probe.async_read()
        assert len(report.gpus) == 2
        await asyncio.sleep(0)  # see test_a_finished_read_is_not_shared_with_the_next_caller
    await asyncio.gather(*(probe.async_read() for _ in range(5)))

    assert fake.init_calls == 1


async def test_async_read_before_start_is_not_available(async_probe: list[NvmlProbe]) -> None:
    fake = FakeNvml([make_gpu(0)])
    probe = NvmlProbe(fake)
    async_probe.append(probe)

    report = await probe.async_read()

    assert report.available is False
    assert report.gpus == ()
    assert fake.init_calls == 0


class ThreadRecordingNvml(FakeNvml):
    """Records which thread every NVML call runs on."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.threads: list[tuple[str, int, str]] = []

    def _record(self, call: str) -> None:
        thread = threading.current_thread()
        self.threads.append((call, threading.get_ident(), thread.name))

    def nvmlInit(self) -> None:
        self._record("init")
        super().nvmlInit()

    def nvmlDeviceGetCount(self) -> int:
        self._record("count")
        return super().nvmlDeviceGetCount()

    def nvmlDeviceGetUtilizationRates(self, handle: FakeGpu) -> Any:
        self._record("utilization")
        return super().nvmlDeviceGetUtilizationRates(handle)

    def nvmlShutdown(self) -> None:
        self._record("shutdown")
        super().nvmlShutdown()


async def test_driver_calls_run_off_the_event_loop_on_one_thread() -> None:
    loop_thread = threading.get_ident()
    fake = ThreadRecordingNvml([make_gpu(0), make_gpu(1)])
    probe = NvmlProbe(fake)
    await probe.async_start()
    for _ in range(3):
        await probe.async_read()
        await asyncio.sleep(0)  # see test_a_finished_read_is_not_shared_with_the_next_caller
    await probe.async_close()

    calls = [call for call, _, _ in fake.threads]
    assert calls[0] == "init"
    assert calls[-1] == "shutdown"
    assert calls.count("count") == 3
    assert calls.count("utilization") == 6
    idents = {ident for _, ident, _ in fake.threads}
    assert loop_thread not in idents
    assert len(idents) == 1  # one dedicated thread: NVML calls never run concurrently
    assert all(name.startswith("gpu-nvml") for _, _, name in fake.threads)


async def test_concurrent_reads_share_one_read(async_probe: list[NvmlProbe]) -> None:
    loop = asyncio.get_running_loop()
    entered = asyncio.Event()
    release = threading.Event()

    class SlowNvml(FakeNvml):
        counts = 0

        def nvmlDeviceGetCount(self) -> int:
            self.counts += 1
            loop.call_soon_threadsafe(entered.set)
            assert release.wait(5), "the test never released the read"
            return super().nvmlDeviceGetCount()

    fake = SlowNvml([make_gpu(0), make_gpu(1)])
    probe = NvmlProbe(fake)
    async_probe.append(probe)
    await probe.async_start()

    readers = [asyncio.ensure_future(probe.async_read()) for _ in range(5)]
    await asyncio.sleep(0)  # every reader has asked
    async with asyncio.timeout(5):
        await entered.wait()  # the read is in flight on the probe's thread
    late = asyncio.ensure_future(probe.async_read())  # joins the read in flight
    await asyncio.sleep(0)
    release.set()
    reports = await asyncio.gather(*readers, late)

    assert fake.counts == 1
    assert all(report == reports[0] for report in reports)
    assert len(reports[0].gpus) == 2

    # Once that read is over, the next caller gets a fresh one.
    fake.gpus[0].gpu_util = 99
    report = await probe.async_read()
    assert fake.counts == 2
    assert report.gpus[0].utilization_percent == 99.0


async def test_a_cancelled_reader_does_not_cancel_the_others(
    async_probe: list[NvmlProbe],
) -> None:
    release = threading.Event()

    class SlowNvml(FakeNvml):
        def nvmlDeviceGetCount(self) -> int:
            assert release.wait(5)
            return super().nvmlDeviceGetCount()

    probe = NvmlProbe(SlowNvml([make_gpu(0)]))
    async_probe.append(probe)
    await probe.async_start()

    impatient = asyncio.ensure_future(probe.async_read())
    patient = asyncio.ensure_future(probe.async_read())
    await asyncio.sleep(0)
    impatient.cancel()
    await asyncio.sleep(0)
    release.set()

    report = await patient
    assert impatient.cancelled()
    assert len(report.gpus) == 1


async def test_async_close_shuts_nvml_down() -> None:
    fake = FakeNvml([make_gpu(0)])
    probe = NvmlProbe(fake)
    await probe.async_start()
    assert fake.initialised is True
    await probe.async_read()

    await probe.async_close()

    assert fake.initialised is False
    assert probe.read().available is False


class InlineExecutor(concurrent.futures.Executor):
    """Runs the read at once: the executor finished before the event loop looked at it."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        future.set_result(fn(*args, **kwargs))
        return future


async def test_a_finished_read_is_not_shared_with_the_next_caller() -> None:
    fake = FakeNvml([make_gpu(0)])
    probe = NvmlProbe(fake)
    probe._executor = InlineExecutor()  # a read that is over by the time the loop sees it
    await probe.async_start()
    first = await probe.async_read()
    fake.gpus[0].gpu_util = 99

    second = await probe.async_read()
    await probe.async_close()

    assert first.gpus[0].utilization_percent == 37.0
    assert second.gpus[0].utilization_percent == 99.0
