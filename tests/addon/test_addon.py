"""The Home Assistant add-on: its files agree with the worker they run.

The add-on's options are written by the Supervisor to ``/data/options.json`` and read by the
worker as is, so every option, choice and range here must be one the worker accepts. ``run.sh``
is run for real on loopback, with a stand-in for the Supervisor's discovery endpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
import contextlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
import os
from pathlib import Path
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from typing import Any
import urllib.request

import pytest
import yaml

from hydra_core import __version__
from hydra_core.containers.options import ContainerOptions
from hydra_core.gpu import BACKENDS
from hydra_core.gpu.options import GpuOptions
from hydra_core.voice.options import DEFAULT_VOICE_PORT
from hydra_core.worker.config import (
    DEFAULT_PORT,
    LOG_LEVELS,
    TOKEN_FILE,
    ConfigError,
    all_options,
    load_config,
)
from tests.certificates import make_certificate

# Loopback TCP only; Home Assistant's test plugin would block it otherwise.
pytestmark = pytest.mark.usefixtures("loopback_sockets")

ROOT = Path(__file__).resolve().parents[2]
ADDON = ROOT / "addon"
RUN_SH = ADDON / "run.sh"
# What the Supervisor's container gets as its host name: "<repository hash>-<slug>".
ADDON_HOSTNAME = "a0d7b954-hydra"
SUPERVISOR_TOKEN = "supervisor-token-for-the-test"
# The worker options that run.sh fixes itself; a user must not be able to change them.
FIXED_BY_RUN_SH = {"host", "port", "data_dir", "token"}
# The worker's own choices for each option the add-on offers as a list.
WORKER_CHOICES = {"gpu_backend": BACKENDS, "log_level": LOG_LEVELS}
WORKER_ENV = {option.env for option in all_options()}
POWER_PERCENTS = ("power_eco_percent", "power_balanced_percent")


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return _yaml(ADDON / "config.yaml")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _yaml(ADDON / "compose.yaml")


def _dockerfile() -> str:
    return (ADDON / "Dockerfile").read_text()


def _run_sh_default(variable: str) -> str:
    match = re.search(rf"\$\{{{variable}:-([^}}]+)\}}", RUN_SH.read_text())
    assert match, f"run.sh has no default for {variable}"
    return match.group(1)


def _load_options(tmp_path: Path, options: dict[str, Any]):
    options_file = tmp_path / "options.json"
    options_file.write_text(json.dumps(options))
    return load_config(
        ["--options-file", str(options_file), "--data-dir", str(tmp_path)], environ={}
    )


# The add-on's options and the worker's.


def test_options_are_worker_options(config: dict[str, Any]) -> None:
    assert set(config["options"]) <= {option.name for option in all_options()}
    assert set(config["schema"]) == set(config["options"])
    assert not set(config["options"]) & FIXED_BY_RUN_SH


def test_every_option_is_translated(config: dict[str, Any]) -> None:
    translations = _yaml(ADDON / "translations" / "en.yaml")["configuration"]
    assert set(translations) == set(config["options"])
    for option, text in translations.items():
        assert text["name"], option
        assert text["description"], option


def test_every_option_is_documented(config: dict[str, Any]) -> None:
    docs = (ADDON / "DOCS.md").read_text()
    for option in config["options"]:
        assert f"### Option: `{option}`" in docs


def test_default_options_configure_the_worker(config: dict[str, Any], tmp_path: Path) -> None:
    worker = _load_options(tmp_path, config["options"])

    assert worker.core.name == socket.gethostname()  # empty name: the host name
    assert worker[GpuOptions].gpu_backend == config["options"]["gpu_backend"] == "nvml"
    assert worker[GpuOptions].simulated_gpus == config["options"]["simulated_gpus"] == 2
    assert worker.core.log_level == config["options"]["log_level"] == "info"
    assert worker.core.data_dir == tmp_path
    assert worker.core.token is None  # so the worker makes its own in /data/token


def test_schema_types_are_known(config: dict[str, Any]) -> None:
    """A new kind of schema entry needs its own check against the worker below."""
    for option, kind in config["schema"].items():
        if isinstance(kind, list):
            assert kind == ["str"], (option, kind)  # a list of strings
            continue
        assert re.fullmatch(
            r"str\?|password\?|bool|list\([\w|]+\)|int\(\d+,\d+\)|float\([\d.]+,[\d.]+\)", kind
        ), (option, kind)


def test_bool_and_string_list_options_reach_the_worker(
    config: dict[str, Any], tmp_path: Path
) -> None:
    """The Supervisor writes a bool and a JSON list; the worker takes both as they are."""
    kinds = config["schema"]
    assert kinds["self_healing"] == "bool"
    assert kinds["protected_containers"] == ["str"]
    worker = _load_options(tmp_path, {"self_healing": False, "protected_containers": ["a", "b*"]})
    assert worker[ContainerOptions].self_healing is False
    assert worker[ContainerOptions].protected_containers == ("a", "b*")
    defaults = _load_options(tmp_path, config["options"])
    assert defaults[ContainerOptions].protected_containers == tuple(
        config["options"]["protected_containers"]
    )


def test_password_options_are_the_workers_secrets(config: dict[str, Any], tmp_path: Path) -> None:
    """The add-on's form masks what the worker keeps out of its logs."""
    passwords = {option for option, kind in config["schema"].items() if kind == "password?"}
    assert passwords == {
        item.name
        for item in all_options()
        if item.spec.addon and item.spec.secret and item.kind is str
    }
    worker = _load_options(tmp_path, {"metrics_token": "m" * 20})
    assert worker.value("metrics_token") == "m" * 20
    assert worker.redacted()["metrics_token"] == "**REDACTED**"


def test_list_choices_are_the_workers(config: dict[str, Any], tmp_path: Path) -> None:
    lists = {
        option: tuple(kind[len("list(") : -1].split("|"))
        for option, kind in config["schema"].items()
        if isinstance(kind, str) and kind.startswith("list(")
    }
    assert lists == WORKER_CHOICES
    for option, choices in lists.items():
        for choice in choices:
            assert _load_options(tmp_path, {option: choice}).value(option) == choice


def test_int_ranges_are_the_workers(config: dict[str, Any], tmp_path: Path) -> None:
    ranges = {
        option: tuple(int(bound) for bound in kind[len("int(") : -1].split(","))
        for option, kind in config["schema"].items()
        if isinstance(kind, str) and kind.startswith("int(")
    }
    assert ranges == {"simulated_gpus": (0, 64)}
    for option, (low, high) in ranges.items():
        assert _load_options(tmp_path, {option: low}).value(option) == low
        assert _load_options(tmp_path, {option: high}).value(option) == high
        for outside in (low - 1, high + 1):
            with pytest.raises(ConfigError, match=option):
                _load_options(tmp_path, {option: outside})


def test_float_ranges_are_the_workers(config: dict[str, Any], tmp_path: Path) -> None:
    ranges = {
        option: tuple(float(bound) for bound in kind[len("float(") : -1].split(","))
        for option, kind in config["schema"].items()
        if isinstance(kind, str) and kind.startswith("float(")
    }
    assert ranges == {
        "wake_threshold": (0.01, 0.99),
        "power_eco_percent": (10, 100),
        "power_balanced_percent": (10, 100),
        "forecast_horizon_days": (1, 365),
    }
    for option, (low, high) in ranges.items():
        # The eco profile may not exceed the balanced one: their bounds are tried together.
        together = POWER_PERCENTS if option in POWER_PERCENTS else (option,)
        for bound in (low, high):
            assert _load_options(tmp_path, dict.fromkeys(together, bound)).value(option) == bound
        for outside in (low - 0.01, high + 0.01):
            with pytest.raises(ConfigError, match=option):
                _load_options(tmp_path, {option: outside})


def test_name_takes_any_text(tmp_path: Path) -> None:
    assert _load_options(tmp_path, {"name": "Garage rack"}).core.name == "Garage rack"


# Versions, images and ports.


def test_versions_agree(config: dict[str, Any]) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pinned = re.search(r'"hydra-homelab\[\$\{HYDRA_EXTRAS\}\]==([^"]+)"', _dockerfile())
    assert pinned
    assert config["version"] == pinned.group(1) == pyproject["project"]["version"] == __version__
    changelog = (ADDON / "CHANGELOG.md").read_text()
    assert f"## {config['version']}" in changelog


def test_the_addon_installs_the_worker_and_compose_adds_scoring(
    compose: dict[str, Any],
) -> None:
    """The add-on's image has the worker alone; the GPU host's compose file adds image scoring,
    with extras that exist."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert re.search(r"^ARG HYDRA_EXTRAS=worker$", _dockerfile(), re.MULTILINE)
    # A cluster's hosts add Ray by setting HYDRA_EXTRAS (docs/cluster.md).
    chosen = re.fullmatch(
        r"\$\{HYDRA_EXTRAS:-([^}]*)\}",
        compose["services"]["hydra"]["build"]["args"]["HYDRA_EXTRAS"],
    )
    assert chosen is not None
    assert chosen[1] == "worker,quality"
    assert {*chosen[1].split(","), "cluster"} <= set(extras)


def test_images_are_glibc_for_every_arch(config: dict[str, Any]) -> None:
    build_from = _yaml(ADDON / "build.yaml")["build_from"]
    assert set(build_from) == set(config["arch"]) == {"amd64", "aarch64"}
    for arch, image in build_from.items():
        assert image == f"ghcr.io/home-assistant/{arch}-base-debian:bookworm"


def test_dockerfile_runs_run_sh_with_the_venv_python() -> None:
    dockerfile = _dockerfile()
    assert "python3 -m venv /opt/hydra" in dockerfile
    assert _run_sh_default("HYDRA_ADDON_PYTHON") == "/opt/hydra/bin/python"
    assert "COPY run.sh /run.sh" in dockerfile
    assert 'CMD ["/run.sh"]' in dockerfile
    assert os.access(RUN_SH, os.X_OK)


def test_the_same_ports_everywhere(config: dict[str, Any], compose: dict[str, Any]) -> None:
    ports = (DEFAULT_PORT, DEFAULT_VOICE_PORT)
    # Not published on the host unless the user sets a port: HA uses the internal network.
    assert config["ports"] == {f"{port}/tcp": None for port in ports}
    assert set(config["ports_description"]) == {f"{port}/tcp" for port in ports}
    assert set(_yaml(ADDON / "translations" / "en.yaml")["network"]) == set(config["ports"])
    assert int(_run_sh_default("HYDRA_ADDON_PORT")) == DEFAULT_PORT
    assert int(_run_sh_default("HYDRA_ADDON_VOICE_PORT")) == DEFAULT_VOICE_PORT
    dockerfile = _dockerfile()
    assert f"EXPOSE {DEFAULT_PORT} {DEFAULT_VOICE_PORT}" in dockerfile
    assert f"http://127.0.0.1:{DEFAULT_PORT}/api/v1/health" in dockerfile
    bind = "${HYDRA_BIND_ADDRESS:-0.0.0.0}"
    assert compose["services"]["hydra"]["ports"] == [f"{bind}:{port}:{port}" for port in ports]


def test_run_sh_serves_everyone_from_data() -> None:
    assert _run_sh_default("HYDRA_ADDON_HOST") == "0.0.0.0"  # noqa: S104 - the add-on serves HA
    assert _run_sh_default("HYDRA_ADDON_DATA") == "/data"


def test_addon_is_discovered_as_hydra_and_wyoming(config: dict[str, Any]) -> None:
    assert config["slug"] == "hydra"
    assert config["discovery"] == ["hydra", "wyoming"]
    assert config["init"] is False


def test_repository_manifest() -> None:
    repository = _yaml(ROOT / "repository.yaml")
    assert {"name", "url", "maintainer"} <= set(repository)


# The compose file for a separate GPU host.


def test_compose_runs_the_addon_image_on_an_nvidia_gpu(compose: dict[str, Any]) -> None:
    service = compose["services"]["hydra"]
    build = service["build"]
    assert (ADDON / build["context"] / build["dockerfile"]).resolve() == ADDON / "Dockerfile"
    assert build["args"]["BUILD_FROM"] == _yaml(ADDON / "build.yaml")["build_from"]["amd64"]
    assert service["restart"] == "unless-stopped"
    assert "hydra-data:/data" in service["volumes"]
    assert "hydra-data" in compose["volumes"]
    assert service["environment"]["HYDRA_GPU_BACKEND"] == "nvml"
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]


def test_compose_sets_only_worker_options(compose: dict[str, Any]) -> None:
    environment = compose["services"]["hydra"]["environment"]
    assert set(environment) <= WORKER_ENV
    # An empty HYDRA_TOKEN would be rejected as too short: Compose must leave it unset instead.
    assert environment["HYDRA_TOKEN"] is None


# run.sh, read.


def test_run_sh_is_valid_bash() -> None:
    subprocess.run(["bash", "-n", str(RUN_SH)], check=True)


def test_run_sh_never_prints_the_token() -> None:
    script = RUN_SH.read_text()
    assert "set -x" not in script
    assert "xtrace" not in script
    for line in script.splitlines():
        if re.search(r"\b(echo|printf|log)\b", line):
            assert "token" not in line.lower(), line


# run.sh, run on loopback.


@dataclass
class FakeSupervisor:
    """The Supervisor's ``POST /discovery``, as an add-on sees it."""

    url: str
    requests: queue.Queue[tuple[str, dict[str, str], dict[str, Any]]]


@pytest.fixture
def supervisor() -> Iterator[FakeSupervisor]:
    received: queue.Queue[tuple[str, dict[str, str], dict[str, Any]]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.put((self.path, dict(self.headers), json.loads(body)))
            answer = json.dumps({"result": "ok", "data": {"uuid": "0" * 32}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads the requests instead."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield FakeSupervisor(url=f"http://127.0.0.1:{server.server_port}", requests=received)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class AddOn:
    """run.sh running as the add-on's CMD, on loopback, with what it has printed so far."""

    process: subprocess.Popen[str]
    port: int
    voice_port: int
    data_dir: Path
    printed: list[str] = field(default_factory=list)
    _lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    _reader: threading.Thread | None = None

    def __post_init__(self) -> None:
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for_output(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.printed):
            line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            assert line is not None, f"run.sh ended without printing {text!r}:\n{self.output()}"
            self.printed.append(line)

    def health(self) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.port}/api/v1/health"
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.load(response)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=15)

    def output(self) -> str:
        """Everything run.sh and the worker printed, once both have ended."""
        assert self._reader is not None
        self._reader.join(timeout=15)
        while not self._lines.empty():
            line = self._lines.get_nowait()
            if line is not None:
                self.printed.append(line)
        return "".join(self.printed)


StartAddOn = Callable[..., AddOn]


@pytest.fixture
def start_addon(tmp_path: Path) -> Iterator[StartAddOn]:
    started: list[AddOn] = []

    def start(environment: dict[str, str], options: dict[str, Any] | None = None) -> AddOn:
        data_dir = tmp_path / "data"
        data_dir.mkdir(exist_ok=True)
        if options is not None:
            (data_dir / "options.json").write_text(json.dumps(options))
        port = _free_port()
        voice_port = _free_port()
        inherited = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("HYDRA_") and name not in {"SUPERVISOR_TOKEN", "HOSTNAME"}
        }
        process = subprocess.Popen(
            ["bash", str(RUN_SH)],
            env={
                **inherited,
                "HOSTNAME": ADDON_HOSTNAME,
                "HYDRA_ADDON_PYTHON": sys.executable,
                "HYDRA_ADDON_DATA": str(data_dir),
                "HYDRA_ADDON_HOST": "127.0.0.1",
                "HYDRA_ADDON_PORT": str(port),
                "HYDRA_ADDON_VOICE_PORT": str(voice_port),
                **environment,
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        addon = AddOn(process=process, port=port, voice_port=voice_port, data_dir=data_dir)
        started.append(addon)
        return addon

    yield start
    for addon in started:
        # The whole process group: a worker that run.sh failed to stop must not outlive the test.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(addon.process.pid, signal.SIGKILL)
        addon.process.wait()
        addon.output()


def test_addon_announces_itself_to_home_assistant(
    start_addon: StartAddOn, supervisor: FakeSupervisor
) -> None:
    addon = start_addon(
        {"SUPERVISOR_TOKEN": SUPERVISOR_TOKEN, "HYDRA_ADDON_SUPERVISOR_URL": supervisor.url},
        options={"name": "", "gpu_backend": "simulated", "simulated_gpus": 1, "log_level": "info"},
    )

    addon.wait_for_output("Voice services on port")
    announced = [supervisor.requests.get(timeout=5) for _ in range(2)]

    health = addon.health()
    assert health["status"] == "ok"
    assert health["name"] == socket.gethostname()
    token = (addon.data_dir / TOKEN_FILE).read_text().strip()
    for path, headers, _ in announced:
        assert path == "/discovery"
        assert headers["Authorization"] == f"Bearer {SUPERVISOR_TOKEN}"
    hydra, wyoming = (body for _, _, body in announced)
    assert hydra == {
        "service": "hydra",
        "config": {"url": f"http://{ADDON_HOSTNAME}:{addon.port}", "token": token},
    }
    # What Home Assistant's wyoming integration reads in its hassio step.
    assert wyoming == {
        "service": "wyoming",
        "config": {"uri": f"tcp://{ADDON_HOSTNAME}:{addon.voice_port}"},
    }
    assert any("Worker ready" in line and "announced" in line for line in addon.printed)
    assert addon.stop() == 0
    assert token not in addon.output()
    assert supervisor.requests.empty()


def test_addon_without_voice_announces_only_the_worker(
    start_addon: StartAddOn, supervisor: FakeSupervisor
) -> None:
    addon = start_addon(
        {"SUPERVISOR_TOKEN": SUPERVISOR_TOKEN, "HYDRA_ADDON_SUPERVISOR_URL": supervisor.url},
        options={"gpu_backend": "none", "voice": False},
    )

    addon.wait_for_output("announced to Home Assistant")
    _, _, body = supervisor.requests.get(timeout=5)
    assert body["service"] == "hydra"
    assert addon.stop() == 0
    assert "Voice services" not in addon.output()
    assert supervisor.requests.empty()


def test_addon_reads_its_options_file(start_addon: StartAddOn) -> None:
    addon = start_addon({}, options={"name": "Rack", "gpu_backend": "none"})

    addon.wait_for_output("Worker ready")
    assert addon.health()["name"] == "Rack"
    assert addon.stop() == 0


def test_without_supervisor_the_environment_configures_the_worker(
    start_addon: StartAddOn, supervisor: FakeSupervisor
) -> None:
    """A plain docker host (compose.yaml): no options file, no Supervisor, HYDRA_* variables."""
    addon = start_addon(
        {
            "HYDRA_NAME": "GPU host",
            "HYDRA_GPU_BACKEND": "simulated",
            "HYDRA_TOKEN": "a-token-chosen-by-the-user",
            "HYDRA_ADDON_SUPERVISOR_URL": supervisor.url,
        }
    )

    addon.wait_for_output("no discovery is sent")
    assert addon.health()["name"] == "GPU host"
    assert addon.stop() == 0
    assert "a-token-chosen-by-the-user" not in addon.output()
    assert supervisor.requests.empty()
    assert not (addon.data_dir / TOKEN_FILE).exists()


def test_addon_exits_with_the_workers_status(start_addon: StartAddOn) -> None:
    addon = start_addon({}, options={"simulated_gpus": 65})

    assert addon.process.wait(timeout=30) == 2
    assert "simulated_gpus" in addon.output()


def test_addon_with_a_certificate_serves_https_and_announces_its_fingerprint(
    start_addon: StartAddOn, supervisor: FakeSupervisor, tmp_path: Path
) -> None:
    """With tls_cert and tls_key the add-on serves HTTPS, and tells Home Assistant, through the
    Supervisor, which certificate is its own: a self-signed one needs no question to the user."""
    certificate = make_certificate(tmp_path / "ssl")
    addon = start_addon(
        {"SUPERVISOR_TOKEN": SUPERVISOR_TOKEN, "HYDRA_ADDON_SUPERVISOR_URL": supervisor.url},
        options={
            "gpu_backend": "none",
            "voice": False,
            "tls_cert": str(certificate.cert),
            "tls_key": str(certificate.key),
        },
    )

    addon.wait_for_output("announced to Home Assistant")
    _, _, body = supervisor.requests.get(timeout=5)
    token = (addon.data_dir / TOKEN_FILE).read_text().strip()
    assert body == {
        "service": "hydra",
        "config": {
            "url": f"https://{ADDON_HOSTNAME}:{addon.port}",
            "token": token,
            "fingerprint": certificate.fingerprint,
        },
    }
    url = f"https://127.0.0.1:{addon.port}/api/v1/health"
    with urllib.request.urlopen(url, timeout=2, context=certificate.trusting_context()) as answer:
        assert json.load(answer)["status"] == "ok"
    assert addon.stop() == 0
    assert token not in addon.output()
