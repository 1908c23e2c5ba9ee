"""The worker's options, gathered from the command line, the environment and an options file.

Precedence, highest first: command line, ``HYDRA_*`` environment variables, the JSON options file
(the add-on's ``/data/options.json``), built-in defaults. Keys in the options file are the option
names below, so the add-on's options map one to one onto the worker's.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
import json
import os
from pathlib import Path
import re
import secrets
import socket
from typing import Any
import uuid

from ..gpu import BACKENDS

DEFAULT_PORT = 8741
DEFAULT_VOICE_PORT = 10300
MIN_TOKEN_LENGTH = 16
LOG_LEVELS = ("debug", "info", "warning", "error")
TOKEN_FILE = "token"  # noqa: S105 - a file name, not a secret
WORKER_ID_FILE = "worker_id"


class ConfigError(ValueError):
    """An option has a value the worker cannot use; the message says which and why."""


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "hydra"


def _ranged(kind: Callable[[Any], float], low: float, high: float) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        number = kind(value)
        if not low <= number <= high:
            raise ValueError(f"must be between {low:g} and {high:g}")
        return number

    return check


_port = _ranged(int, 0, 65535)
_count = _ranged(int, 0, 64)


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _patterns(value: Any) -> tuple[str, ...]:
    """Comma-separated on the command line and in the environment; a list in an options file."""
    items = value if isinstance(value, list) else str(value).split(",")
    return tuple(str(item).strip() for item in items if str(item).strip())


def _choice(choices: Sequence[str]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = str(value).lower()
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return text

    return check


def _text(value: Any) -> str:
    return str(value).strip()


def _device(value: Any) -> str:
    text = str(value).strip().lower()
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", text):
        raise ValueError("must be auto, cpu, cuda or cuda:N")
    return text


@dataclass(frozen=True, slots=True)
class _Option:
    name: str
    convert: Callable[[Any], Any]
    help: str
    secret: bool = False

    @property
    def env(self) -> str:
        return f"HYDRA_{self.name.upper()}"

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


OPTIONS: tuple[_Option, ...] = (
    _Option("host", _text, "address to listen on (default 0.0.0.0)"),
    _Option("port", _port, f"TCP port of the control API (default {DEFAULT_PORT})"),
    _Option(
        "token",
        _text,
        "bearer token clients must send; default: generated once and kept in DATA_DIR/token",
        secret=True,
    ),
    _Option("data_dir", Path, "where the worker keeps its state (default ~/.local/share/hydra)"),
    _Option("name", _text, "name shown in Home Assistant (default: the host name)"),
    _Option("gpu_backend", _choice(BACKENDS), "nvml (default), simulated or none"),
    _Option("simulated_gpus", _count, "how many GPUs the simulated backend shows (default 2)"),
    _Option("log_level", _choice(LOG_LEVELS), "debug, info (default), warning or error"),
    _Option(
        "docker_host",
        _text,
        "container engine address, unix:///path or tcp://host:port (default: DOCKER_HOST, else"
        " /var/run/docker.sock if it exists); 'none' turns container monitoring off",
    ),
    _Option(
        "protected_containers",
        _patterns,
        "comma-separated name patterns (fnmatch, e.g. 'homeassistant,db-*') Hydra never stops"
        " or restarts; containers labelled hydra.protected=true are protected too",
    ),
    _Option("self_healing", _boolean, "restart broken containers (default true)"),
    _Option(
        "heal_after_checks",
        _ranged(int, 1, 100),
        "consecutive unhealthy checks before self-healing restarts a container (default 3)",
    ),
    _Option(
        "heal_max_restarts",
        _ranged(int, 0, 100),
        "self-healing restarts per container per hour before Hydra gives up (default 3)",
    ),
    _Option(
        "outputs_dir",
        Path,
        "where generated outputs go; maintenance removes old ones (default DATA_DIR/outputs)",
    ),
    _Option(
        "retention_days",
        _ranged(float, 0.01, 36500),
        "how many days maintenance keeps outputs (default 30)",
    ),
    _Option(
        "maintenance_paths",
        _patterns,
        "comma-separated extra folders whose disk use maintenance reports",
    ),
    _Option(
        "container_interval",
        _ranged(float, 1, 3600),
        "seconds between container status checks (default 10)",
    ),
    _Option(
        "metrics_interval",
        _ranged(float, 1, 3600),
        "seconds between the GPU samples kept for the night report, a week's worth (default 30)",
    ),
    _Option(
        "power_eco_percent",
        _ranged(float, 10, 100),
        "the eco power profile's limit, in percent of each GPU's default limit (default 60)",
    ),
    _Option(
        "power_balanced_percent",
        _ranged(float, 10, 100),
        "the balanced power profile's limit, in percent of each GPU's default limit (default 80)",
    ),
    _Option(
        "power_interval",
        _ranged(float, 1, 3600),
        "seconds between checks that every GPU still enforces its power profile (default 30)",
    ),
    _Option("voice", _boolean, "serve wake word, speech-to-text and text-to-speech (default true)"),
    _Option(
        "voice_port", _port, f"TCP port of the Wyoming voice server (default {DEFAULT_VOICE_PORT})"
    ),
    _Option(
        "voice_zeroconf",
        _boolean,
        "announce the voice server on the network (zeroconf _wyoming._tcp) (default true)",
    ),
    _Option(
        "models_dir",
        Path,
        "where speech and CLIP models are kept (default DATA_DIR/models)",
    ),
    _Option(
        "voice_offline",
        _boolean,
        "never download models; use only what is in MODELS_DIR (default false)",
    ),
    _Option(
        "model_idle_unload",
        _ranged(float, 0, 86400),
        "seconds a speech model may sit unused before it is unloaded; 0 keeps it (default 600)",
    ),
    _Option(
        "wake_threshold",
        _ranged(float, 0.01, 0.99),
        "wake word score that counts as a detection (default 0.5)",
    ),
    _Option(
        "wake_trigger_level",
        _ranged(int, 1, 10),
        "consecutive frames above the threshold before the wake word fires (default 1)",
    ),
    _Option(
        "wake_refractory",
        _ranged(float, 0, 30),
        "seconds a wake word stays quiet after it fired (default 2)",
    ),
    _Option(
        "wake_models_dir",
        Path,
        "folder of custom openWakeWord .tflite models (default DATA_DIR/wake_words)",
    ),
    _Option("stt_model", _text, "faster-whisper model: tiny.en, base.en (default), small, ..."),
    _Option("stt_language", _text, "language of speech, e.g. en (default: detect)"),
    _Option("stt_device", _choice(("auto", "cpu", "cuda")), "auto (default), cpu or cuda"),
    _Option(
        "stt_compute_type",
        _text,
        "CTranslate2 compute type; auto (default) is float16 on CUDA, int8 on CPU",
    ),
    _Option("stt_beam_size", _ranged(int, 1, 10), "beam size of the decoder (default 1)"),
    _Option("stt_vad", _boolean, "let faster-whisper skip silence with its VAD (default false)"),
    _Option("tts_voice", _text, "Kokoro voice (default af_heart, else the first voice)"),
    _Option("tts_speed", _ranged(float, 0.5, 2.0), "speaking rate (default 1.0)"),
    _Option("tts_language", _text, "language Kokoro speaks (default en-us)"),
    _Option(
        "quality",
        _boolean,
        "score images with CLIP and keep them for review (default true; scoring needs"
        " hydra-homelab[quality])",
    ),
    _Option(
        "quality_model",
        _text,
        "open_clip architecture that scores images (default ViT-B-32)",
    ),
    _Option(
        "quality_pretrained",
        _text,
        "open_clip weights: a pretrained tag (default laion2b_s34b_b79k) or a file; 'none' runs"
        " random weights (tests: the scores mean nothing)",
    ),
    _Option("quality_device", _device, "auto (default), cpu, cuda or cuda:N"),
    _Option(
        "quality_offline",
        _boolean,
        "never download CLIP weights; use only what is in MODELS_DIR/clip (default false)",
    ),
    _Option(
        "quality_config_dir",
        Path,
        "folder of extra open_clip architecture JSONs, usable as quality_model by file name",
    ),
    _Option(
        "quality_threshold",
        _ranged(float, 0, 100),
        "overall score (0-100) at or above which an asset is accepted without review, until"
        " decisions calibrate it per character (default 60)",
    ),
    _Option(
        "quality_idle_unload",
        _ranged(float, 0, 86400),
        "seconds the CLIP model may sit unused before it is unloaded; 0 keeps it (default 600)",
    ),
)
OPTION_NAMES = frozenset(option.name for option in OPTIONS)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerConfig:
    """The worker's effective options."""

    host: str = "0.0.0.0"  # noqa: S104 - a worker serves Home Assistant on another machine
    port: int = DEFAULT_PORT
    token: str | None = field(default=None, repr=False)
    data_dir: Path = field(default_factory=_default_data_dir)
    name: str = field(default_factory=socket.gethostname)
    gpu_backend: str = "nvml"
    simulated_gpus: int = 2
    log_level: str = "info"
    docker_host: str | None = None
    protected_containers: tuple[str, ...] = ()
    self_healing: bool = True
    heal_after_checks: int = 3
    heal_max_restarts: int = 3
    container_interval: float = 10.0
    metrics_interval: float = 30.0
    power_eco_percent: float = 60.0
    power_balanced_percent: float = 80.0
    power_interval: float = 30.0
    outputs_dir: Path | None = None
    retention_days: float = 30.0
    maintenance_paths: tuple[str, ...] = ()
    voice: bool = True
    voice_port: int = DEFAULT_VOICE_PORT
    voice_zeroconf: bool = True
    models_dir: Path | None = None
    voice_offline: bool = False
    model_idle_unload: float = 600.0
    wake_threshold: float = 0.5
    wake_trigger_level: int = 1
    wake_refractory: float = 2.0
    wake_models_dir: Path | None = None
    stt_model: str = "base.en"
    stt_language: str | None = None
    stt_device: str = "auto"
    stt_compute_type: str = "auto"
    stt_beam_size: int = 1
    stt_vad: bool = False
    tts_voice: str | None = None
    tts_speed: float = 1.0
    tts_language: str = "en-us"
    quality: bool = True
    quality_model: str = "ViT-B-32"
    quality_pretrained: str = "laion2b_s34b_b79k"
    quality_device: str = "auto"
    quality_offline: bool = False
    quality_config_dir: Path | None = None
    quality_threshold: float = 60.0
    quality_idle_unload: float = 600.0

    def redacted(self) -> dict[str, Any]:
        """The options for logs: secrets replaced."""
        secret = {option.name for option in OPTIONS if option.secret}
        return {
            field.name: ("**REDACTED**" if field.name in secret else str(getattr(self, field.name)))
            for field in fields(self)
        }


def build_parser() -> argparse.ArgumentParser:
    """The command line: one flag per option, plus the options file."""
    parser = argparse.ArgumentParser(
        prog="hydra-worker",
        description="Hydra worker: the control API Home Assistant's Hydra integration talks to.",
        epilog="Every option can also be set as HYDRA_<NAME> in the environment.",
    )
    parser.add_argument(
        "--options-file",
        type=Path,
        help="JSON file of options (the add-on's /data/options.json); env HYDRA_OPTIONS_FILE",
    )
    for option in OPTIONS:
        parser.add_argument(option.flag, dest=option.name, help=option.help)
    return parser


def load_config(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> WorkerConfig:
    """Merge the sources into a ``WorkerConfig``; raise ``ConfigError`` on any bad value."""
    environ = os.environ if environ is None else environ
    args = build_parser().parse_args(argv)
    options_file = args.options_file or environ.get("HYDRA_OPTIONS_FILE")
    file_values = read_options_file(Path(options_file)) if options_file else {}
    values: dict[str, Any] = {}
    for option in OPTIONS:
        raw = getattr(args, option.name)
        source = option.flag
        # An empty variable counts as unset, as an empty value in the options file does.
        if raw is None and environ.get(option.env):
            raw, source = environ[option.env], option.env
        if raw is None and file_values.get(option.name) not in (None, ""):
            raw, source = file_values[option.name], f"{option.name} in {options_file}"
        if raw is None:
            continue
        try:
            values[option.name] = option.convert(raw)
        except (TypeError, ValueError) as err:
            shown = "(hidden)" if option.secret else repr(raw)
            raise ConfigError(f"{source}: {shown} is not valid: {err}") from err
    token = values.get("token")
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(f"The token must be at least {MIN_TOKEN_LENGTH} characters long")
    config = WorkerConfig(**values)
    if config.power_eco_percent > config.power_balanced_percent:
        raise ConfigError(
            f"power_eco_percent ({config.power_eco_percent:g}) must not exceed"
            f" power_balanced_percent ({config.power_balanced_percent:g})"
        )
    return config


def read_options_file(path: Path) -> dict[str, Any]:
    """Read a JSON options file; unknown keys are an error so typos do not pass silently."""
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise ConfigError(f"Cannot read options file {path}: {err.strerror}") from err
    except json.JSONDecodeError as err:
        raise ConfigError(f"Options file {path} is not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"Options file {path} must hold a JSON object")
    unknown = sorted(set(data) - OPTION_NAMES)
    if unknown:
        raise ConfigError(f"Options file {path} has unknown options: {', '.join(unknown)}")
    return data


def ensure_token(config: WorkerConfig) -> str:
    """The configured token, or the one kept in the data dir (made on first start)."""
    if config.token:
        return config.token
    return _read_or_create(config.data_dir / TOKEN_FILE, lambda: secrets.token_urlsafe(32))


def ensure_worker_id(data_dir: Path) -> str:
    """A stable identity for this worker, made on first start and kept in the data dir."""
    return _read_or_create(data_dir / WORKER_ID_FILE, lambda: uuid.uuid4().hex)


def _read_or_create(path: Path, make: Callable[[], str]) -> str:
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    # Written private from the start: the token must never be readable by other users.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    # O_CREAT's mode only applies to a new file; an existing empty one may be world-readable.
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(value + "\n")
    return value
