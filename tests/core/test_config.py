"""The worker's options: where they come from, how bad values are reported, the kept secrets."""

from __future__ import annotations

import json
import os
from pathlib import Path
import socket
import stat
from typing import Any

import pytest

from hydra_core.gpu.options import GpuOptions
from hydra_core.quality.options import QualityOptions
from hydra_core.worker.config import (
    DEFAULT_PORT,
    MIN_TOKEN_LENGTH,
    TOKEN_FILE,
    WORKER_ID_FILE,
    ConfigError,
    CoreOptions,
    all_options,
    ensure_token,
    ensure_worker_id,
    load_config,
)

SECRET = "Sup3r-Secret-Token-9f8e7d6c"
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - the documented default, compared, not bound


def write_options(tmp_path: Path, content: Any) -> Path:
    path = tmp_path / "options.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- where options come from ---------------------------------------------------------------


def test_defaults() -> None:
    config = load_config([], environ={})

    assert config.core.host == ALL_INTERFACES
    assert config.core.port == DEFAULT_PORT
    assert config.core.token is None
    assert config.core.name == socket.gethostname()
    assert config[GpuOptions].gpu_backend == "nvml"
    assert config[GpuOptions].simulated_gpus == 2
    assert config.core.log_level == "info"
    assert config.core.data_dir.name == "hydra"


def test_precedence_cli_over_env_over_file_over_default(tmp_path: Path) -> None:
    options = write_options(
        tmp_path,
        {
            "port": 1111,
            "name": "from-file",
            "log_level": "warning",
            "gpu_backend": "none",
            "data_dir": str(tmp_path / "file-data"),
        },
    )
    environ = {
        "HYDRA_OPTIONS_FILE": str(options),
        "HYDRA_PORT": "2222",
        "HYDRA_NAME": "from-env",
        "HYDRA_DATA_DIR": str(tmp_path / "env-data"),
    }

    config = load_config(["--port", "3333", "--data-dir", str(tmp_path / "cli-data")], environ)

    assert config.core.port == 3333  # CLI beats env and file
    assert config.core.data_dir == tmp_path / "cli-data"
    assert config.core.name == "from-env"  # env beats file
    assert config.core.log_level == "warning"  # only in the file
    assert config[GpuOptions].gpu_backend == "none"
    assert config[GpuOptions].simulated_gpus == 2  # nowhere: default
    assert config.core.host == ALL_INTERFACES


def test_options_file_flag_beats_env_options_file(tmp_path: Path) -> None:
    chosen = write_options(tmp_path, {"name": "chosen"})
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"name": "other"}))

    config = load_config(["--options-file", str(chosen)], {"HYDRA_OPTIONS_FILE": str(other)})

    assert config.core.name == "chosen"


def test_empty_values_in_options_file_mean_default(tmp_path: Path) -> None:
    """The add-on writes "" or null for options the user left blank."""
    options = write_options(tmp_path, {"name": "", "token": None, "port": None})

    config = load_config(["--options-file", str(options)], environ={})

    assert config.core.name == socket.gethostname()
    assert config.core.token is None
    assert config.core.port == DEFAULT_PORT


def test_values_are_normalised() -> None:
    config = load_config(
        ["--gpu-backend", "SIMULATED", "--log-level", "DEBUG", "--simulated-gpus", "4"],
        {"HYDRA_NAME": "  rig  ", "HYDRA_TOKEN": f"  {SECRET}  "},
    )

    assert config[GpuOptions].gpu_backend == "simulated"
    assert config.core.log_level == "debug"
    assert config[GpuOptions].simulated_gpus == 4
    assert config.core.name == "rig"
    assert config.core.token == SECRET


# --- bad values ----------------------------------------------------------------------------


def test_env_port_not_a_number_names_the_variable() -> None:
    with pytest.raises(ConfigError) as raised:
        load_config([], {"HYDRA_PORT": "abc"})

    assert "HYDRA_PORT" in str(raised.value)
    assert "abc" in str(raised.value)


@pytest.mark.parametrize(
    ("argv", "environ", "names"),
    [
        (["--port", "70000"], {}, ["--port", "65535"]),
        (["--port", "-1"], {}, ["--port"]),
        ([], {"HYDRA_GPU_BACKEND": "cuda"}, ["HYDRA_GPU_BACKEND", "nvml", "simulated", "none"]),
        ([], {"HYDRA_SIMULATED_GPUS": "100"}, ["HYDRA_SIMULATED_GPUS", "64"]),
        (["--log-level", "verbose"], {}, ["--log-level", "debug"]),
        (["--metrics-interval", "0"], {}, ["--metrics-interval", "between 1 and 3600"]),
        ([], {"HYDRA_METRICS_INTERVAL": "soon"}, ["HYDRA_METRICS_INTERVAL", "soon"]),
    ],
)
def test_bad_value_says_which_option_and_why(
    argv: list[str], environ: dict[str, str], names: list[str]
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(argv, environ)

    for name in names:
        assert name in str(raised.value)


def test_bad_value_in_options_file_names_key_and_file(tmp_path: Path) -> None:
    options = write_options(tmp_path, {"port": "eighty"})

    with pytest.raises(ConfigError) as raised:
        load_config(["--options-file", str(options)], environ={})

    message = str(raised.value)
    assert "port" in message
    assert str(options) in message
    assert "eighty" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"port": 8741, "prot": 1, "tokne": "x"}, "unknown options: prot, tokne"),
        ('{"port": 8741,', "not valid JSON"),
        ('["port", 8741]', "must hold a JSON object"),
        ('"port"', "must hold a JSON object"),
    ],
)
def test_bad_options_file(tmp_path: Path, content: Any, expected: str) -> None:
    options = write_options(tmp_path, content)

    with pytest.raises(ConfigError) as raised:
        load_config(["--options-file", str(options)], environ={})

    assert expected in str(raised.value)
    assert str(options) in str(raised.value)


def test_missing_options_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "options.json"

    with pytest.raises(ConfigError) as raised:
        load_config([], {"HYDRA_OPTIONS_FILE": str(missing)})

    assert "Cannot read options file" in str(raised.value)
    assert str(missing) in str(raised.value)


def test_short_token_rejected() -> None:
    short = "x" * (MIN_TOKEN_LENGTH - 1)

    with pytest.raises(ConfigError, match=f"at least {MIN_TOKEN_LENGTH} characters"):
        load_config(["--token", short], environ={})

    assert load_config(["--token", "x" * MIN_TOKEN_LENGTH], environ={}).core.token


# --- the token stays secret ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "environ", "file_content"),
    [
        (["--token", "tiny-secret-1"], {}, None),
        ([], {"HYDRA_TOKEN": "tiny-secret-1"}, None),
        ([], {}, {"token": "tiny-secret-1"}),
        # A valid token, and another option is wrong.
        (["--token", SECRET, "--port", "x"], {}, None),
        ([], {"HYDRA_TOKEN": SECRET, "HYDRA_LOG_LEVEL": "loud"}, None),
        # A typo in the JSON next to the token.
        ([], {}, '{"token": "' + SECRET + '",}'),
        ([], {}, '{"token": "' + SECRET + '", "tokn": "' + SECRET + '"}'),
    ],
)
def test_token_never_in_error_messages(
    tmp_path: Path, argv: list[str], environ: dict[str, str], file_content: Any
) -> None:
    if file_content is not None:
        argv = [*argv, "--options-file", str(write_options(tmp_path, file_content))]

    with pytest.raises(ConfigError) as raised:
        load_config(argv, environ)

    assert "tiny-secret-1" not in str(raised.value)
    assert SECRET not in str(raised.value)


def test_redacted_hides_the_token_and_shows_the_rest(tmp_path: Path) -> None:
    config = load_config(
        ["--token", SECRET, "--port", "9000", "--data-dir", str(tmp_path)], environ={}
    )

    redacted = config.redacted()

    assert SECRET not in json.dumps(redacted)
    assert redacted["token"] == "**REDACTED**"
    assert redacted["port"] == "9000"
    assert redacted["data_dir"] == str(tmp_path)
    # Every option is shown, so a log of the options is complete.
    assert set(redacted) == {option.name for option in all_options()}


# --- state kept in the data dir --------------------------------------------------------------


def test_configured_token_is_used_and_not_written(tmp_path: Path) -> None:
    config = CoreOptions(token=SECRET, data_dir=tmp_path)

    assert ensure_token(config) == SECRET
    assert not (tmp_path / TOKEN_FILE).exists()


def test_generated_token_is_kept_private_and_stable(tmp_path: Path) -> None:
    data_dir = tmp_path / "not" / "yet" / "there"
    config = CoreOptions(data_dir=data_dir)

    token = ensure_token(config)

    path = data_dir / TOKEN_FILE
    assert len(token) >= MIN_TOKEN_LENGTH  # the generated token would pass the length check
    assert path.read_text().strip() == token
    assert mode(path) == 0o600
    # Same token on every later call and after a restart (a new config object).
    assert ensure_token(config) == token
    assert ensure_token(CoreOptions(data_dir=data_dir)) == token
    # A different data dir is a different worker with its own token.
    assert ensure_token(CoreOptions(data_dir=tmp_path / "other")) != token


def test_generated_token_is_private_even_with_a_permissive_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        ensure_token(CoreOptions(data_dir=tmp_path))
    finally:
        os.umask(previous)

    assert mode(tmp_path / TOKEN_FILE) == 0o600


def test_token_kept_by_an_operator_is_used(tmp_path: Path) -> None:
    (tmp_path / TOKEN_FILE).write_text(SECRET + "\n")

    assert ensure_token(CoreOptions(data_dir=tmp_path)) == SECRET


def test_token_generated_into_an_existing_empty_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / TOKEN_FILE
    path.touch()  # e.g. `touch token` by an operator, or a crash before the first write
    path.chmod(0o644)

    token = ensure_token(CoreOptions(data_dir=tmp_path))

    assert path.read_text().strip() == token
    assert mode(path) == 0o600


def test_worker_id_is_stable(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"

    worker_id = ensure_worker_id(data_dir)

    assert worker_id
    assert ensure_worker_id(data_dir) == worker_id
    assert (data_dir / WORKER_ID_FILE).read_text().strip() == worker_id
    assert ensure_worker_id(tmp_path / "another") != worker_id


def test_metrics_interval_from_each_source(tmp_path: Path) -> None:
    options = write_options(tmp_path, {"metrics_interval": 60})

    assert load_config([], environ={})[GpuOptions].metrics_interval == 30
    assert (
        load_config(["--options-file", str(options)], environ={})[GpuOptions].metrics_interval == 60
    )
    assert load_config([], {"HYDRA_METRICS_INTERVAL": "15"})[GpuOptions].metrics_interval == 15
    assert (
        load_config(["--metrics-interval", "5.5"], environ={})[GpuOptions].metrics_interval == 5.5
    )


def test_quality_options_from_each_source(tmp_path: Path) -> None:
    defaults = load_config([], environ={})
    assert (
        defaults[QualityOptions].quality,
        defaults[QualityOptions].quality_model,
        defaults[QualityOptions].quality_pretrained,
    ) == (
        True,
        "ViT-B-32",
        "laion2b_s34b_b79k",
    )
    assert (defaults[QualityOptions].quality_device, defaults[QualityOptions].quality_offline) == (
        "auto",
        False,
    )
    assert (
        defaults[QualityOptions].quality_threshold,
        defaults[QualityOptions].quality_idle_unload,
    ) == (60, 600)
    assert defaults[QualityOptions].quality_config_dir is None

    options = write_options(tmp_path, {"quality_threshold": 72.5, "quality_device": "CUDA:1"})
    config = load_config(
        ["--options-file", str(options), "--quality-pretrained", "none"],
        {"HYDRA_QUALITY_CONFIG_DIR": str(tmp_path), "HYDRA_QUALITY": "off"},
    )
    assert (config[QualityOptions].quality, config[QualityOptions].quality_pretrained) == (
        False,
        "none",
    )
    assert (config[QualityOptions].quality_threshold, config[QualityOptions].quality_device) == (
        72.5,
        "cuda:1",
    )
    assert config[QualityOptions].quality_config_dir == tmp_path


@pytest.mark.parametrize(
    ("argv", "mentions"),
    [
        (["--quality-threshold", "101"], "between 0 and 100"),
        (["--quality-device", "gpu"], "auto, cpu, cuda or cuda:N"),
        (["--quality-idle-unload", "-1"], "between 0 and 86400"),
    ],
)
def test_bad_quality_options(argv: list[str], mentions: str) -> None:
    with pytest.raises(ConfigError, match=mentions):
        load_config(argv, environ={})
