"""Setting power limits through the probes, and the options that define the profiles."""

from __future__ import annotations

import json
from pathlib import Path

from pynvml import NVML_ERROR_DRIVER_NOT_LOADED
import pytest

from hydra_core.gpu import GpuProbe, NoGpuProbe, NvmlProbe, SimulatedProbe
from hydra_core.gpu.base import PowerLimitError
from hydra_core.power.options import PowerOptions
from hydra_core.worker.config import ConfigError, load_config
from tests.fake_nvml import FakeNvml, make_gpu


def started(fake: FakeNvml) -> NvmlProbe:
    probe = NvmlProbe(fake)
    probe.start()
    return probe


def refusal(probe: GpuProbe, index: int, uuid: str, watts: float) -> PowerLimitError:
    with pytest.raises(PowerLimitError) as refused:
        probe.set_power_limit(index, uuid, watts)
    return refused.value


def test_nvml_sets_the_limit_in_milliwatts() -> None:
    fake = FakeNvml([make_gpu(0)])

    started(fake).set_power_limit(0, fake.gpus[0].uuid, 270.5)

    assert fake.gpus[0].limit_mw == 270_500


def test_nvml_refusals_say_why() -> None:
    fake = FakeNvml([make_gpu(0), make_gpu(1, unsupported={"nvmlDeviceSetPowerManagementLimit"})])
    probe = started(fake)
    first, second = (gpu.uuid for gpu in fake.gpus)

    out_of_range = refusal(probe, 0, first, 700)
    assert out_of_range.code == "out_of_range"
    assert "700 W" in out_of_range.message
    assert refusal(probe, 1, second, 300).code == "not_supported"
    changed = refusal(probe, 0, second, 300)
    assert changed.code == "failed"
    assert "no longer" in changed.message

    fake.root = False
    not_permitted = refusal(probe, 0, first, 300)
    assert not_permitted.code == "not_permitted"
    assert "root" in not_permitted.message
    assert "SYS_ADMIN" in not_permitted.message

    fake.gpus[0].lost = True
    assert refusal(probe, 0, first, 300).code == "failed"
    assert fake.gpus[0].limit_mw == fake.gpus[0].default_limit_mw


def test_nvml_without_a_driver_cannot_set_limits() -> None:
    refused = refusal(started(FakeNvml(init_error=NVML_ERROR_DRIVER_NOT_LOADED)), 0, "GPU-x", 300)

    assert refused.code == "not_supported"
    assert "driver" in refused.message


def test_the_simulation_keeps_the_limit_it_is_given() -> None:
    probe = SimulatedProbe(count=1)
    uuid = probe.read().gpus[0].uuid

    probe.set_power_limit(0, uuid, 250)

    assert probe.read().gpus[0].power_limit_w == 250
    assert refusal(probe, 0, uuid, 500).code == "out_of_range"
    assert refusal(probe, 1, uuid, 250).code == "failed"


def test_no_gpu_backend_cannot_set_limits() -> None:
    assert refusal(NoGpuProbe(), 0, "GPU-x", 300).code == "not_supported"


# The profiles' options.


def test_profile_options_default_and_come_from_every_source(tmp_path: Path) -> None:
    assert load_config([], environ={})[PowerOptions].power_eco_percent == 60
    assert load_config([], environ={})[PowerOptions].power_balanced_percent == 80
    options = tmp_path / "options.json"
    options.write_text(json.dumps({"power_eco_percent": 50, "power_balanced_percent": 75}))

    config = load_config(
        ["--options-file", str(options), "--power-interval", "5"],
        environ={"HYDRA_POWER_BALANCED_PERCENT": "90"},
    )

    assert (
        config[PowerOptions].power_eco_percent,
        config[PowerOptions].power_balanced_percent,
    ) == (50, 90)
    assert config[PowerOptions].power_interval == 5


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--power-eco-percent", "5"], "--power-eco-percent: '5' is not valid: must be between"),
        (["--power-balanced-percent", "101"], "must be between 10 and 100"),
        (["--power-eco-percent", "85"], "power_eco_percent (85) must not exceed"),
        (["--power-interval", "0"], "--power-interval"),
    ],
)
def test_bad_profile_options_are_refused(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(argv, environ={})
    assert message in str(refused.value)
