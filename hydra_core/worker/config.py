"""The worker's options, gathered from the command line, the environment and an options file.

Precedence, highest first: command line, ``HYDRA_*`` environment variables, the JSON options file
(the add-on's ``/data/options.json``), built-in defaults. Keys in the options file are the option
names below, so the add-on's options map one to one onto the worker's.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
import functools
import json
import os
from pathlib import Path
import secrets
import socket
import ssl
from typing import Any, TypeVar, cast
import uuid

from ..options import Option, option, options_of
from ..state_files import write_atomic

DEFAULT_PORT = 8741
MIN_TOKEN_LENGTH = 16
LOG_LEVELS = ("debug", "info", "warning", "error")
TOKEN_FILE = "token"  # noqa: S105 - a file name, not a secret
WORKER_ID_FILE = "worker_id"
_T = TypeVar("_T")


class ConfigError(ValueError):
    """An option has a value the worker cannot use; the message says which and why."""


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "hydra"


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreOptions:
    """What every worker has, whatever parts it runs."""

    host: str = option(
        "0.0.0.0",  # noqa: S104 - a worker serves Home Assistant on another machine
        help="address to listen on",
    )
    port: int = option(DEFAULT_PORT, help="TCP port of the control API", low=0, high=65535)
    token: str | None = option(
        None,
        help="bearer token clients must send (16+ characters); when unset, generated once into"
        " DATA_DIR/token (mode 0600)",
        default_text="generated once and kept in DATA_DIR/token",
        secret=True,
    )
    data_dir: Path = option(
        Path(),
        help="the worker's state: token, worker id, queue, audit log, settings",
        default_text="~/.local/share/hydra",
        default_factory=_default_data_dir,
    )
    name: str = option(
        "",
        help="the name Home Assistant shows",
        default_text="the host name",
        default_factory=socket.gethostname,
        addon=True,
    )
    log_level: str = option("info", help="how much the worker logs", choices=LOG_LEVELS, addon=True)
    models_dir: Path | None = option(
        None,
        help="speech models (whisper/<name>/, kokoro/) and CLIP weights (clip/)",
        default_text="DATA_DIR/models",
    )

    tls_cert: Path | None = option(
        None,
        help="PEM certificate (its chain after it) to serve the API over HTTPS and its event"
        " stream over wss on the same port; needs tls_key. Unset: plain HTTP",
        pattern_text="a PEM file",
        addon=True,
    )
    tls_key: Path | None = option(
        None,
        help="the unencrypted PEM private key of tls_cert",
        pattern_text="a PEM file",
        addon=True,
    )

    @property
    def models_folder(self) -> Path:
        """Where downloaded models are kept."""
        return self.models_dir or self.data_dir / "models"

    def check(self, _config: WorkerConfig) -> None:
        """A certificate that cannot serve stops the worker before it starts, not at the first
        client."""
        self.tls_context()

    def tls_context(self) -> ssl.SSLContext | None:
        """What the API serves TLS with, or None for plain HTTP; ValueError says what is wrong
        with the certificate options."""
        if self.tls_cert is None and self.tls_key is None:
            return None
        if self.tls_cert is None or self.tls_key is None:
            missing = "tls_key" if self.tls_key is None else "tls_cert"
            raise ValueError(
                f"tls_cert and tls_key go together: {missing} is not set (set both for HTTPS,"
                " neither for plain HTTP)"
            )
        for name, path in (("tls_cert", self.tls_cert), ("tls_key", self.tls_key)):
            try:
                path.read_bytes()
            except OSError as err:
                raise ValueError(f"{name}: cannot read {path}: {err.strerror}") from err
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            # An empty password instead of none: an encrypted key fails here instead of
            # prompting on a terminal no one watches.
            context.load_cert_chain(self.tls_cert, self.tls_key, password=b"")
        except ssl.SSLError as err:
            if "KEY_VALUES_MISMATCH" in str(err):
                raise ValueError(
                    f"tls_cert {self.tls_cert} and tls_key {self.tls_key} do not match: the key"
                    " is not the certificate's"
                ) from err
            raise ValueError(
                f"tls_cert {self.tls_cert} and tls_key {self.tls_key} are not a PEM certificate"
                f" and its unencrypted PEM key ({err.reason or err})"
            ) from err
        return context


def option_sections() -> tuple[type[Any], ...]:
    """Every options dataclass: the core's, then each part's in the order of ``PARTS``."""
    from .parts import PARTS  # noqa: PLC0415 - the parts import this module's types

    return (CoreOptions, *(part.options for part in PARTS))


@functools.cache
def all_options() -> tuple[Option, ...]:
    """Every option of the worker, in the order the docs list them (read once: the dataclasses
    do not change)."""
    found = tuple(item for section in option_sections() for item in options_of(section))
    names = [item.name for item in found]
    if duplicates := sorted({name for name in names if names.count(name) > 1}):
        raise TypeError(f"Options declared twice: {', '.join(duplicates)}")
    return found


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """The worker's effective options: one instance of each options dataclass."""

    sections: Mapping[type[Any], Any]

    @property
    def core(self) -> CoreOptions:
        """The options every worker has."""
        return self[CoreOptions]

    def __getitem__(self, section: type[_T]) -> _T:
        return cast(_T, self.sections[section])

    def value(self, name: str) -> Any:
        """An option's value by its name."""
        for item in all_options():
            if item.name == name:
                return self._value(item)
        raise KeyError(name)

    def redacted(self) -> dict[str, str]:
        """The options for logs: secrets replaced."""
        return {
            item.name: "**REDACTED**" if item.spec.secret else str(self._value(item))
            for item in all_options()
        }

    def _value(self, item: Option) -> Any:
        return getattr(self.sections[item.section], item.name)


def _build(values: Mapping[str, Any]) -> WorkerConfig:
    unknown = sorted(set(values) - {item.name for item in all_options()})
    if unknown:
        raise TypeError(f"Unknown options: {', '.join(unknown)}")
    return WorkerConfig(
        {
            section: section(
                **{
                    item.name: values[item.name]
                    for item in all_options()
                    if item.section is section and item.name in values
                }
            )
            for section in option_sections()
        }
    )


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
    for item in all_options():
        parser.add_argument(item.flag, dest=item.name, help=item.help)
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
    for item in all_options():
        raw = getattr(args, item.name)
        source = item.flag
        # An empty variable counts as unset, as an empty value in the options file does.
        if raw is None and environ.get(item.env):
            raw, source = environ[item.env], item.env
        if raw is None and file_values.get(item.name) not in (None, ""):
            raw, source = file_values[item.name], f"{item.name} in {options_file}"
        if raw is None:
            continue
        try:
            values[item.name] = item.convert(raw)
        except (TypeError, ValueError) as err:
            shown = "(hidden)" if item.spec.secret else repr(raw)
            raise ConfigError(f"{source}: {shown} is not valid: {err}") from err
    token = values.get("token")
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(f"The token must be at least {MIN_TOKEN_LENGTH} characters long")
    config = _build(values)
    for section in config.sections.values():
        if (check := getattr(section, "check", None)) is not None:
            try:
                check(config)
            except ValueError as err:
                raise ConfigError(str(err)) from err
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
    unknown = sorted(set(data) - {item.name for item in all_options()})
    if unknown:
        raise ConfigError(f"Options file {path} has unknown options: {', '.join(unknown)}")
    return data


def ensure_token(core: CoreOptions) -> str:
    """The configured token, or the one kept in the data dir (made on first start)."""
    if core.token:
        return core.token
    return _read_or_create(core.data_dir / TOKEN_FILE, lambda: secrets.token_urlsafe(32))


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
    value = make()
    # Private from its first byte (the token must never be readable by other users), and whole
    # and synced before it is used: an empty file after a power cut would mean a new token.
    write_atomic(path, f"{value}\n".encode(), mode=0o600)
    return value
