"""The engine of ``scripts/develop``: a local Hydra worker plus a real Home Assistant, set up.

Run by ``scripts/develop`` with the ``.venv`` Python (Home Assistant and hydra_core installed):

1. picks the worker's GPU backend: ``nvml`` when ``python -m hydra_core.gpu`` finds a GPU,
   otherwise ``simulated`` (said so in the output);
2. starts the worker on 127.0.0.1 with its data dir in ``DEV/worker``;
3. writes Home Assistant's ``configuration.yaml`` in ``DEV/config`` (no ``default_config``),
   links ``custom_components/hydra`` into it and starts ``hass`` on 127.0.0.1;
4. onboards Home Assistant through its HTTP API (owner ``hydra`` with a password generated once
   and kept in ``DEV/credentials``), or logs in on later runs (refresh token kept in
   ``DEV/ha-auth.json``);
5. adds the worker through the Hydra config flow's REST API unless the entry already exists;
6. sets the country and units (once: a later change in the UI is kept), and makes the "Hydra"
   dashboard (a YAML dashboard whose file is ``strategy: type: custom:hydra``) the one Home
   Assistant opens on;
7. fills the instance with something of every part (``showcase.py``): demo containers on a
   private podman engine, voice with the packaged test weights, a maintenance run and a research
   task on Hydra's own documentation; and ComfyUI's API from the tests' stand-in (or the
   developer's own ComfyUI, ``--comfyui-url``) with one short chapter, which the creative part
   makes while the instance runs (``--check`` does not wait for it);
8. prints the login and the dashboard's address and runs until Ctrl-C / SIGTERM, or with
   ``--check`` waits for the entry to load, for Hydra's GPU temperature sensors and for the
   dashboard to answer, prints them and stops.

Both children run in their own sessions and get SIGTERM if this process dies; on Ctrl-C they are
stopped in order (Home Assistant first, then the worker) and this process exits 0.

Home Assistant 2026.10 keeps its HTTP settings in ``.storage/http``: an ``http:`` block in YAML is
migrated there once as a *pending* setting that reverts after 5 minutes unless promoted. So the
block is written only when Home Assistant has not migrated it yet (or the stored host/port differ
from the wanted ones, in which case the store is removed so it migrates again); after start-up
the pending setting is promoted through the ``http/config/promote`` WebSocket command and the
block is dropped from the YAML again.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Awaitable, Sequence
import contextlib
from dataclasses import dataclass, field
import hashlib
import json
import os
from pathlib import Path
import secrets
import signal
import socket
import sys
import time
import traceback
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
# showcase.py lives next to this file; it uses the tests' podman and speech weight helpers.
for _path in (ROOT, Path(__file__).resolve().parent):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import showcase  # noqa: E402

INTEGRATION_DIR = ROOT / "custom_components" / "hydra"
DOMAIN = "hydra"
HOST = "127.0.0.1"
# The worker runs on the ML workers' interpreter (Python 3.11 with PyTorch, so images can be
# scored); Home Assistant's own Python has everything else if that venv is missing.
WORKER_PYTHON = ROOT / ".venv-worker" / "bin" / "python"
DEFAULT_HA_PORT = 8123
DEFAULT_WORKER_PORT = 8741
DEFAULT_VOICE_PORT = 10300
DEFAULT_TIMEOUT = 240
USERNAME = "hydra"
OWNER_NAME = "Hydra Developer"
GPU_PROBE = (sys.executable, "-m", "hydra_core.gpu")
RESTART_EXIT_CODE = 100  # what hass exits with when asked to restart
HASS_STOP_TIMEOUT = 90
STARTUP_GRACE = 120  # how long a stop waits for Home Assistant to finish starting
WORKER_STOP_TIMEOUT = 15
ONBOARDING_STEPS = ("user", "core_config", "analytics", "integration")
READY_ENTRY_STATES = ("loaded",)
FAILED_ENTRY_STATES = ("setup_error", "migration_error", "failed_unload")
# The "Hydra" dashboard: a YAML dashboard (its path needs a hyphen) built by the integration's
# strategy, and Home Assistant's default panel.
DASHBOARD_PATH = "hydra-dashboard"
DASHBOARD_FILE = "dashboards/hydra.yaml"
DASHBOARD_YAML = (
    "# Written by scripts/develop. The Hydra integration's dashboard strategy builds the views\n"
    "# from what the worker has; this is the one line a user adds to a dashboard of their own.\n"
    "strategy:\n"
    "  type: custom:hydra\n"
)
# Set once, when Home Assistant has no country yet (else it raises a repair about it).
CORE_CONFIG = {"country": "US", "unit_system": "us_customary", "currency": "USD"}

# Sets PR_SET_PDEATHSIG, then becomes the real command: a child gets SIGTERM if this process dies,
# so even a SIGKILLed develop leaves no worker or hass behind. Done in a tiny launcher rather than
# preexec_fn, which is unsafe once aiohttp's resolver threads exist.
_LAUNCHER = """
import ctypes, os, signal, sys
ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)
os.execv(sys.argv[2], sys.argv[2:])
"""


class DevelopError(Exception):
    """A failure the developer can act on; the message says what happened and what to do."""


class ApiError(DevelopError):
    """Home Assistant answered a request with an unexpected status or an error result."""

    def __init__(self, what: str, status: int | str, body: Any) -> None:
        super().__init__(f"{what}: {status} {body}")
        self.status = status
        self.body = body


def say(message: str) -> None:
    """One line of develop's own output (the children's lines are prefixed by their name)."""
    sys.stdout.write(f"[develop] {message}\n")
    sys.stdout.flush()


# --- files -------------------------------------------------------------------------------------


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only (mode 0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    os.replace(temporary, path)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None if the file is missing or is not a JSON object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@dataclass(frozen=True, slots=True)
class Credentials:
    """The Home Assistant owner's login, made once per dev dir."""

    username: str
    password: str


def load_or_create_credentials(path: Path) -> Credentials:
    """The stored login, or a new one (random password) stored at ``path`` with mode 0600."""
    if path.exists():
        data = read_json(path)
        if not data or not isinstance(data.get("username"), str) or not data.get("password"):
            raise DevelopError(
                f"{path} is not a login this script wrote. Delete it together with "
                f"{path.parent / 'config'} to start Home Assistant over."
            )
        path.chmod(0o600)
        return Credentials(data["username"], str(data["password"]))
    credentials = Credentials(USERNAME, secrets.token_urlsafe(12))
    text = json.dumps({"username": credentials.username, "password": credentials.password})
    write_private(path, text + "\n")
    return credentials


def render_configuration(*, ha_port: int, with_http: bool) -> str:
    """Home Assistant's configuration.yaml for the dev instance (no default_config)."""
    http = (
        "# Migrated by Home Assistant into .storage/http on first start, then dropped from here.\n"
        f"http:\n  server_host: {HOST}\n  server_port: {ha_port}\n\n"
        if with_http
        else ""
    )
    return (
        "# Written by scripts/develop on every start: changes here are lost. Put your own\n"
        "# configuration in packages/<name>.yaml next to this file; those files are kept.\n"
        "# default_config is not used: its go2rtc needs a download. These are what Hydra's\n"
        "# development needs on top of what Home Assistant always sets up.\n"
        "homeassistant:\n"
        "  packages: !include_dir_named packages\n\n"
        f"{http}"
        "frontend:\n"
        "lovelace:\n"
        "  dashboards:\n"
        f"    {DASHBOARD_PATH}:\n"
        "      mode: yaml\n"
        "      title: Hydra\n"
        "      icon: mdi:server-network\n"
        "      show_in_sidebar: true\n"
        f"      filename: {DASHBOARD_FILE}\n"
        "config:\n"
        "history:\n"
        "logbook:\n"
        "system_health:\n\n"
        "logger:\n"
        "  default: warning\n"
        "  logs:\n"
        "    custom_components.hydra: debug\n"
        "    hydra_core: debug\n"
        "    homeassistant.setup: info\n"
        "    homeassistant.bootstrap: info\n"
        "    homeassistant.util.package: info\n"
    )


def stored_http_matches(config_dir: Path, ha_port: int) -> bool | None:
    """Whether Home Assistant's stored HTTP setting is ``HOST:ha_port``.

    None: nothing stored or the YAML not migrated yet (the YAML block will be). False: stored
    settings differ (another port, set in the UI, or unreadable).
    """
    path = config_dir / ".storage" / "http"
    store = read_json(path)
    if store is None:
        return False if path.exists() else None
    data = store.get("data")
    if not isinstance(data, dict) or not data.get("yaml_migration_done"):
        return None
    pending = data.get("pending")
    active = pending if isinstance(pending, dict) and pending.get("error") is None else None
    active = active or data.get("stable")
    if not isinstance(active, dict):
        return False
    return active.get("server_host") == [HOST] and active.get("server_port") == ha_port


def link_integration(config_dir: Path) -> Path:
    """Make ``config/custom_components/hydra`` a symlink to the repository's integration."""
    link = config_dir / "custom_components" / DOMAIN
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink():
        if link.resolve() == INTEGRATION_DIR.resolve():
            return link
        link.unlink()
    elif link.exists():
        raise DevelopError(
            f"{link} exists and is not a link to {INTEGRATION_DIR}: move it away and rerun."
        )
    link.symlink_to(INTEGRATION_DIR, target_is_directory=True)
    return link


def choose_gpu_backend(returncode: int, out: bytes, err: bytes) -> tuple[str, str]:
    """The worker's GPU backend and a line saying why, from ``python -m hydra_core.gpu``'s result.

    That command prints NVML's report as JSON and exits 0 only when NVML sees a GPU.
    """
    report: Any = {}
    with contextlib.suppress(ValueError):
        report = json.loads(out or b"{}")
    if not isinstance(report, dict):
        report = {}
    gpus = report.get("gpus") or []
    if returncode == 0 and gpus:
        names = ", ".join(str(gpu.get("name", "?")) for gpu in gpus)
        return "nvml", f"NVML found {len(gpus)} GPU(s) ({names}): using the nvml backend"
    reason = report.get("reason") or err.decode(errors="replace").strip() or "no GPU listed"
    return "simulated", f"no NVIDIA GPU found: using the simulated backend ({reason})"


def port_is_free(port: int) -> bool:
    """Whether ``HOST:port`` can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def token_fingerprint(url: str, token: str) -> str:
    """A hash that tells whether the entry was made for this worker URL and token."""
    return hashlib.sha256(f"{url}\n{token}".encode()).hexdigest()


# --- child processes ---------------------------------------------------------------------------


@dataclass
class Child:
    """A supervised child process whose output is copied, prefixed, to our stdout."""

    name: str
    process: asyncio.subprocess.Process
    pump: asyncio.Task[None]

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.returncode is None


async def spawn(name: str, argv: Sequence[str], *, cwd: Path | None = None) -> Child:
    """Start ``argv`` in its own session (Ctrl-C reaches it only through us)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HYDRA_")}
    env["PYTHONUNBUFFERED"] = "1"
    # This checkout's hydra_core, also where the venv's editable install is another checkout's
    # (a git worktree sharing the venv): Home Assistant must run the integration's own library.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT), env.get("PYTHONPATH"))))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _LAUNCHER,
        str(os.getpid()),
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
        cwd=cwd,
        env=env,
        limit=1 << 24,
    )
    assert process.stdout is not None
    pump = asyncio.create_task(_pump(f"{name:<6} | ", process.stdout))
    return Child(name, process, pump)


async def _pump(prefix: str, stream: asyncio.StreamReader) -> None:
    out = sys.stdout.buffer
    while True:
        try:
            line = await stream.readline()
        except ValueError:  # a line longer than the limit: pass it on in pieces
            line = await stream.read(1 << 16)
        if not line:
            return
        out.write(prefix.encode() + line + (b"" if line.endswith(b"\n") else b"\n"))
        out.flush()


async def stop_child(child: Child | None, grace: float) -> None:
    """SIGTERM the child's process group, SIGKILL it after ``grace`` s; wait for its output."""
    if child is None:
        return
    group = child.pid  # a session leader: its pid is its process group id
    if child.running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        try:
            await asyncio.wait_for(child.process.wait(), grace)
        except TimeoutError:
            say(f"{child.name} did not stop within {grace:.0f} s: killing it")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
            await child.process.wait()
    # Anything the child left in its group (an installer it started, say) goes too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        await asyncio.wait_for(child.pump, 5)


# --- Home Assistant's HTTP and WebSocket APIs ----------------------------------------------------


class HomeAssistant:
    """The bits of Home Assistant's HTTP API this script uses, as the owner."""

    def __init__(self, session: aiohttp.ClientSession, port: int) -> None:
        self.session = session
        self.url = f"http://{HOST}:{port}"
        self.client_id = f"{self.url}/"
        self.redirect_uri = f"{self.url}/?auth_callback=1"
        self.access_token: str | None = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        form: dict[str, str] | None = None,
        auth: bool = True,
        ok: Sequence[int] = (200,),
    ) -> Any:
        """Send one request; return the decoded JSON (or text) or raise ``ApiError``."""
        headers = {"Authorization": f"Bearer {self.access_token}"} if auth else {}
        try:
            async with self.session.request(
                method,
                self.url + path,
                json=json_body,
                data=form,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=60),
            ) as response:
                status, text = response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError) as err:
            raise ApiError(f"{method} {path}", "no answer", repr(err)) from err
        if status not in ok:
            raise ApiError(f"{method} {path}", status, text.strip()[:500])
        try:
            return json.loads(text) if text else None
        except ValueError:
            return text

    async def answers(self) -> bool:
        """Whether the HTTP server is up (any HTTP answer counts)."""
        try:
            async with self.session.get(
                f"{self.url}/auth/providers", timeout=aiohttp.ClientTimeout(total=5)
            ) as response:
                return response.status < 500
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def onboarding_done(self) -> set[str]:
        """The onboarding steps done (all of them once the onboarding views are gone)."""
        status = await self.request("GET", "/api/onboarding", auth=False, ok=(200, 404))
        if not isinstance(status, list):
            return set(ONBOARDING_STEPS)
        return {step["step"] for step in status if step.get("done")}

    async def tokens(self, form: dict[str, str]) -> dict[str, Any]:
        """POST /auth/token; keep the access token."""
        tokens = await self.request(
            "POST", "/auth/token", form={**form, "client_id": self.client_id}, auth=False
        )
        self.access_token = tokens["access_token"]
        return tokens

    async def login_flow(self, credentials: Credentials) -> dict[str, Any]:
        """Log in with the password through /auth/login_flow; return the tokens."""
        flow = await self.request(
            "POST",
            "/auth/login_flow",
            json_body={
                "client_id": self.client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": self.redirect_uri,
            },
            auth=False,
        )
        result = await self.request(
            "POST",
            f"/auth/login_flow/{flow['flow_id']}",
            json_body={
                "client_id": self.client_id,
                "username": credentials.username,
                "password": credentials.password,
            },
            auth=False,
        )
        if result.get("type") != "create_entry":
            raise DevelopError(
                f"Home Assistant refused the login {credentials.username!r} kept by this script "
                f"({result.get('errors')}): its config was onboarded some other way."
            )
        return await self.tokens({"grant_type": "authorization_code", "code": result["result"]})

    @contextlib.asynccontextmanager
    async def websocket(self) -> AsyncIterator[_WebSocket]:
        """An authenticated WebSocket connection."""
        async with self.session.ws_connect(f"{self.url}/api/websocket", heartbeat=30) as ws:
            await ws.receive_json(timeout=30)  # auth_required
            await ws.send_json({"type": "auth", "access_token": self.access_token})
            reply = await ws.receive_json(timeout=30)
            if reply.get("type") != "auth_ok":
                raise ApiError("WebSocket auth", reply.get("type", "?"), reply)
            yield _WebSocket(ws)


class _WebSocket:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, command: str, **data: Any) -> Any:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "type": command, **data})
        while True:
            message = await self.ws.receive_json(timeout=60)
            if message.get("id") == self.next_id and message.get("type") == "result":
                if message.get("success"):
                    return message.get("result")
                raise ApiError(command, "error", message.get("error"))


# --- the session ---------------------------------------------------------------------------------


@dataclass
class Options:
    """What the command line asked for."""

    dev_dir: Path
    ha_port: int
    worker_port: int
    voice_port: int
    check: bool
    timeout: float
    comfyui_url: str | None = None


@dataclass
class Develop:
    """One run of scripts/develop: the children, the paths and the steps between them."""

    options: Options
    ha: HomeAssistant
    worker: Child | None = None
    hass: Child | None = None
    backend: str = "simulated"
    gpu_note: str = ""
    worker_token: str = ""
    credentials: Credentials | None = None
    deadline: float = field(default=0.0)
    http_yaml: bool = False
    started: float = field(default_factory=time.monotonic)
    demo: showcase.DemoEngine = field(default_factory=showcase.DemoEngine)
    docs: showcase.DocsSite = field(default_factory=showcase.DocsSite)
    comfyui: showcase.ComfyUISite = field(default_factory=showcase.ComfyUISite)
    worker_id: str = ""
    health_checks: asyncio.Task[None] | None = None

    @property
    def dev(self) -> Path:
        return self.options.dev_dir

    @property
    def worker_dir(self) -> Path:
        return self.dev / "worker"

    @property
    def config_dir(self) -> Path:
        return self.dev / "config"

    @property
    def credentials_file(self) -> Path:
        return self.dev / "credentials"

    @property
    def auth_file(self) -> Path:
        return self.dev / "ha-auth.json"

    @property
    def state_file(self) -> Path:
        return self.dev / "state.json"

    @property
    def worker_url(self) -> str:
        return f"http://{HOST}:{self.options.worker_port}"

    @property
    def models_dir(self) -> Path:
        return self.dev / "models"

    @property
    def seeded_file(self) -> Path:
        return self.dev / "seeded.json"

    @property
    def dashboard_url(self) -> str:
        return f"http://{HOST}:{self.options.ha_port}/{DASHBOARD_PATH}"

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    async def run(self) -> int:
        """Start everything, then wait (or check) until done; the caller stops the children."""
        self.deadline = time.monotonic() + self.options.timeout
        self.dev.mkdir(parents=True, exist_ok=True)
        for name, port in (
            ("Home Assistant", self.options.ha_port),
            ("worker", self.options.worker_port),
        ):
            if not port_is_free(port):
                raise DevelopError(
                    f"{HOST}:{port} (the {name} port) is in use: is another scripts/develop "
                    f"running? Stop it, or pick another port with --ha-port / --worker-port."
                )
        self.credentials = load_or_create_credentials(self.credentials_file)
        await self.pick_gpu_backend()
        await self.prepare_showcase()
        await self.start_worker()
        self.prepare_config()
        ha = self.ha
        await self.start_hass(ha)
        await self.configure(ha)
        await self.seed_work()
        if self.options.check:
            await self.check(ha)
        await self.wait_running(ha)
        await self.wait_dashboard(ha)
        self.print_login()
        if self.options.check:
            say("check passed: stopping")
            return 0
        return await self.supervise(ha)

    async def pick_gpu_backend(self) -> None:
        process = await asyncio.create_subprocess_exec(
            *GPU_PROBE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), 60)
        except TimeoutError:
            process.kill()
            await process.wait()
            out, err = b"", b"the NVML probe took longer than 60 s"
        assert process.returncode is not None
        self.backend, self.gpu_note = choose_gpu_backend(process.returncode, out, err)
        say(self.gpu_note)

    async def prepare_showcase(self) -> None:
        """The demo containers' engine, the speech models and the pages the research reads."""
        await asyncio.to_thread(self.demo.start)
        say(self.demo.note)
        if self.demo.engine is not None:
            self.health_checks = asyncio.create_task(self.run_health_checks())
        say(await asyncio.to_thread(showcase.install_voice_models, self.models_dir))
        await asyncio.to_thread(showcase.write_review_image, self.worker_dir / "outputs")
        await self.docs.start()
        self.comfyui = showcase.ComfyUISite(self.options.comfyui_url)
        await self.comfyui.start()
        say(self.comfyui.note)
        await asyncio.to_thread(showcase.write_style_book, self.worker_dir / "creative")

    async def run_health_checks(self) -> None:
        while True:
            await asyncio.sleep(showcase.HEALTH_INTERVAL_S)
            await asyncio.to_thread(self.demo.check_health)

    async def start_worker(self) -> None:
        self.worker = await spawn(
            "worker",
            [
                str(WORKER_PYTHON) if WORKER_PYTHON.exists() else sys.executable,
                "-m",
                "hydra_core.worker",
                "--host",
                HOST,
                "--port",
                str(self.options.worker_port),
                "--data-dir",
                str(self.worker_dir),
                "--gpu-backend",
                self.backend,
                # A development worker stays off the network: the voice server listens on HOST
                # only, and is not announced.
                "--voice-zeroconf",
                "false",
                "--voice-port",
                str(self.options.voice_port),
                "--models-dir",
                str(self.models_dir),
                "--voice-offline",
                "true",
                "--stt-model",
                showcase.STT_MODEL,
                "--tts-voice",
                showcase.TTS_VOICE,
                # The research task reads Hydra's documentation from loopback.
                "--research-allow-private",
                "true",
                *showcase.QUALITY_ARGS,
                "--comfyui-urls",
                self.comfyui.url,
                *(
                    ()
                    if self.demo.docker_host is None
                    else ("--docker-host", self.demo.docker_host)
                ),
            ],
            cwd=ROOT,
        )
        say(
            f"worker started (pid {self.worker.pid}) on {self.worker_url}, "
            f"data in {self.worker_dir}"
        )
        while True:
            if not self.worker.running:
                raise DevelopError(
                    f"the worker exited with {self.worker.process.returncode} before it answered"
                )
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with self.ha.session.get(
                    f"{self.worker_url}/api/v1/health", timeout=aiohttp.ClientTimeout(total=5)
                ) as response:
                    if response.status == 200:
                        health = await response.json()
                        break
            if self.remaining() <= 0:
                raise DevelopError(f"the worker did not answer on {self.worker_url} in time")
            await asyncio.sleep(0.3)
        token_file = self.worker_dir / "token"
        try:
            self.worker_token = token_file.read_text().strip()
        except OSError as err:
            raise DevelopError(f"cannot read the worker's token in {token_file}: {err}") from err
        self.worker_id = str(health.get("worker_id"))
        say(
            f"worker {health.get('name')!r} ({health.get('worker_id')}) answers; "
            f"token in {token_file}"
        )

    def prepare_config(self) -> None:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "packages").mkdir(exist_ok=True)
        link_integration(self.config_dir)
        matches = stored_http_matches(self.config_dir, self.options.ha_port)
        if matches is False:
            say(
                f"Home Assistant's stored HTTP settings are not {HOST}:{self.options.ha_port}: "
                "resetting them (.storage/http) so it takes them from configuration.yaml"
            )
            (self.config_dir / ".storage" / "http").unlink(missing_ok=True)
        self.http_yaml = not matches
        self.write_configuration()
        dashboard = self.config_dir / DASHBOARD_FILE
        dashboard.parent.mkdir(exist_ok=True)
        if not dashboard.exists() or dashboard.read_text() != DASHBOARD_YAML:
            dashboard.write_text(DASHBOARD_YAML)

    def write_configuration(self) -> None:
        text = render_configuration(ha_port=self.options.ha_port, with_http=self.http_yaml)
        path = self.config_dir / "configuration.yaml"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)

    async def start_hass(self, ha: HomeAssistant) -> None:
        argv = [sys.executable, "-m", "homeassistant", "--config", str(self.config_dir)]
        if not sys.stdout.isatty():
            argv.append("--log-no-color")
        self.hass = await spawn("hass", argv, cwd=self.config_dir)
        say(
            f"Home Assistant started (pid {self.hass.pid}); it will answer on {ha.url} "
            "(a first start can take a minute or two); "
            f"log in {self.config_dir / 'home-assistant.log'}"
        )
        started = time.monotonic()
        while not await ha.answers():
            if not self.hass.running:
                raise DevelopError(
                    f"Home Assistant exited with {self.hass.process.returncode} before it answered;"
                    f" see the lines above and {self.config_dir / 'home-assistant.log'}"
                )
            if self.remaining() <= 0:
                raise DevelopError(f"Home Assistant did not answer on {ha.url} in time")
            await asyncio.sleep(1)
        say(f"Home Assistant answers on {ha.url} after {time.monotonic() - started:.0f} s")

    async def configure(self, ha: HomeAssistant) -> None:
        """Onboard or log in, settle the HTTP setting and make sure the Hydra entry exists."""
        await self.onboard_or_login(ha)
        await self.settle_http(ha)
        # Before the entry: its sensors take the units the instance has when they are added.
        await self.settle_core_config(ha)
        await self.ensure_entry(ha)
        await self.open_on_dashboard(ha)

    async def settle_core_config(self, ha: HomeAssistant) -> None:
        """Set the country and units once; a country set before (by hand too) is kept."""
        async with ha.websocket() as ws:
            config = await ws.call("get_config")
            if config.get("country"):
                units = config["unit_system"]["temperature"]
                say(f"core config: country {config['country']}, temperatures in {units}")
                return
            await ws.call("config/core/update", **CORE_CONFIG)
        say(
            f"core config: set the country to {CORE_CONFIG['country']} and the units to "
            f"{CORE_CONFIG['unit_system']}"
        )

    async def open_on_dashboard(self, ha: HomeAssistant) -> None:
        """Make the Hydra dashboard what Home Assistant opens on, for every user."""
        async with ha.websocket() as ws:
            core = (await ws.call("frontend/get_system_data", key="core")).get("value") or {}
            if core.get("default_panel") == DASHBOARD_PATH:
                return
            await ws.call(
                "frontend/set_system_data",
                key="core",
                value={**core, "default_panel": DASHBOARD_PATH},
            )
        say(f"dashboard: Home Assistant now opens on {self.dashboard_url}")

    async def seed_work(self) -> None:
        """Queue the maintenance run, the research task and the chapter, once per worker (a
        dev dir seeded before chapters were gets its chapter on its next run)."""
        seeded = read_json(self.seeded_file) or {}
        if seeded.get("worker_id") == self.worker_id:
            say("work: the queue was seeded on an earlier run")
        else:
            for line in await showcase.seed_work(
                self.ha.session, self.worker_url, self.worker_token, self.docs
            ):
                say(line)
            seeded = {"worker_id": self.worker_id}
            write_private(self.seeded_file, json.dumps(seeded) + "\n")
        if seeded.get("chapter") == self.worker_id:
            say("creative: the chapter was seeded on an earlier run")
            return
        for line in await showcase.seed_chapter(
            self.ha.session, self.worker_url, self.worker_token, showcase.shortest_chapter()
        ):
            say(line)
        seeded["chapter"] = self.worker_id
        write_private(self.seeded_file, json.dumps(seeded) + "\n")

    async def wait_dashboard(self, ha: HomeAssistant) -> None:
        """Wait until the dashboard's address answers; say how long scripts/develop took."""
        while True:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with ha.session.get(
                    self.dashboard_url, timeout=aiohttp.ClientTimeout(total=10)
                ) as response:
                    if response.status == 200:
                        break
            if self.remaining() <= 0:
                raise DevelopError(f"the dashboard did not answer on {self.dashboard_url}")
            await asyncio.sleep(1)
        say(
            f"dashboard {self.dashboard_url} answers, "
            f"{time.monotonic() - self.started:.0f} s after scripts/develop started"
        )

    async def onboard_or_login(self, ha: HomeAssistant) -> None:
        assert self.credentials is not None
        done = await ha.onboarding_done()
        if "user" not in done:
            result = await ha.request(
                "POST",
                "/api/onboarding/users",
                json_body={
                    "client_id": ha.client_id,
                    "name": OWNER_NAME,
                    "username": self.credentials.username,
                    "password": self.credentials.password,
                    "language": "en",
                },
                auth=False,
            )
            tokens = await ha.tokens(
                {"grant_type": "authorization_code", "code": result["auth_code"]}
            )
            self.save_refresh_token(ha, tokens)
            say(f"onboarding: created the owner {self.credentials.username!r}")
        else:
            await self.login(ha)
        bodies: dict[str, dict[str, str]] = {
            "core_config": {},
            "analytics": {},
            "integration": {"client_id": ha.client_id, "redirect_uri": ha.redirect_uri},
        }
        missing = [step for step in ONBOARDING_STEPS[1:] if step not in done]
        for step in missing:
            await ha.request("POST", f"/api/onboarding/{step}", json_body=bodies[step])
        if missing:
            say(f"onboarding: finished the steps {', '.join(missing)}")
        elif "user" in done:
            say("onboarding: already done")

    async def login(self, ha: HomeAssistant) -> None:
        assert self.credentials is not None
        saved = read_json(self.auth_file) or {}
        if saved.get("client_id") == ha.client_id and saved.get("refresh_token"):
            try:
                await ha.tokens(
                    {"grant_type": "refresh_token", "refresh_token": saved["refresh_token"]}
                )
            except ApiError as err:
                say(f"the stored refresh token was refused ({err.status}): logging in again")
            else:
                say(f"logged in to Home Assistant as {self.credentials.username!r}")
                return
        tokens = await ha.login_flow(self.credentials)
        self.save_refresh_token(ha, tokens)
        say(f"logged in to Home Assistant as {self.credentials.username!r} with the password")

    def save_refresh_token(self, ha: HomeAssistant, tokens: dict[str, Any]) -> None:
        write_private(
            self.auth_file,
            json.dumps({"client_id": ha.client_id, "refresh_token": tokens["refresh_token"]})
            + "\n",
        )

    async def settle_http(self, ha: HomeAssistant) -> None:
        """Promote a pending (just migrated) HTTP setting so it does not revert in 5 minutes."""
        async with ha.websocket() as ws:
            http = await ws.call("http/config")
            if http.get("pending") and http.get("active_config_type") == "pending":
                await ws.call("http/config/promote")
                say(
                    f"HTTP: promoted {HOST}:{self.options.ha_port} "
                    "to Home Assistant's stable setting"
                )
            if self.http_yaml:
                # The YAML block has been migrated: drop it, and the repair that asks for that.
                with contextlib.suppress(ApiError):
                    await ws.call(
                        "repairs/ignore_issue",
                        domain="http",
                        issue_id="deprecated_yaml",
                        ignore=True,
                    )
        if self.http_yaml:
            self.http_yaml = False
            self.write_configuration()

    async def ensure_entry(self, ha: HomeAssistant) -> None:
        entries = await self.hydra_entries(ha)
        fingerprint = token_fingerprint(self.worker_url, self.worker_token)
        state = read_json(self.state_file) or {}
        entry_ids = [entry["entry_id"] for entry in entries]
        if state.get("entry_id") in entry_ids and state.get("fingerprint") == fingerprint:
            entry = next(entry for entry in entries if entry["entry_id"] == state["entry_id"])
            say(f"Hydra entry {entry['title']!r} already set up: skipping the config flow")
            return
        user_input = {"url": self.worker_url, "token": self.worker_token}
        entry_id = None
        if entries:
            entry = entries[0]
            result = await self.run_flow(
                ha, {"handler": DOMAIN, "entry_id": entry["entry_id"]}, user_input
            )
            reason = result.get("reason")
            if result.get("type") == "abort" and reason == "reconfigure_successful":
                entry_id = entry["entry_id"]
                say(
                    f"Hydra entry {entry['title']!r}: pointed it at {self.worker_url} (reconfigure)"
                )
            elif result.get("type") == "abort" and reason == "wrong_worker":
                await ha.request("DELETE", f"/api/config/config_entries/entry/{entry['entry_id']}")
                say(f"Hydra entry {entry['title']!r} was for another worker: removed it")
            else:
                raise DevelopError(f"reconfiguring the Hydra entry failed: {result}")
        if entry_id is None:
            result = await self.run_flow(ha, {"handler": DOMAIN}, user_input)
            if result.get("type") != "create_entry":
                raise DevelopError(f"the Hydra config flow did not create an entry: {result}")
            entry_id = result["result"]["entry_id"]
            say(f"config flow: added the Hydra entry {result.get('title')!r} for {self.worker_url}")
        write_private(
            self.state_file, json.dumps({"entry_id": entry_id, "fingerprint": fingerprint}) + "\n"
        )

    async def hydra_entries(self, ha: HomeAssistant) -> list[dict[str, Any]]:
        return await ha.request("GET", f"/api/config/config_entries/entry?domain={DOMAIN}")

    async def run_flow(
        self, ha: HomeAssistant, init: dict[str, Any], user_input: dict[str, str]
    ) -> dict[str, Any]:
        """Start a config flow and answer its form; return the final result."""
        path = "/api/config/config_entries/flow"
        try:
            form = await ha.request("POST", path, json_body=init)
        except ApiError as err:
            raise DevelopError(
                f"Home Assistant cannot start the Hydra config flow ({err}); is "
                f"{INTEGRATION_DIR} complete? See the hass lines above."
            ) from err
        if form.get("type") != "form":
            return form
        result = await ha.request("POST", f"{path}/{form['flow_id']}", json_body=user_input)
        if result.get("type") == "form":
            with contextlib.suppress(ApiError):
                await ha.request("DELETE", f"{path}/{form['flow_id']}")
            raise DevelopError(
                f"the Hydra config flow refused {self.worker_url}: errors {result.get('errors')}"
            )
        return result

    async def check(self, ha: HomeAssistant) -> None:
        """Wait for the entry to load and for Hydra's GPU temperature sensors; print them."""
        last = "no Hydra entry yet"
        while True:
            found = await self.hydra_temperatures(ha)
            if isinstance(found, list):
                for line in found:
                    say(f"check: {line}")
                return
            last = found
            if self.remaining() <= 0:
                raise DevelopError(
                    f"check failed: timed out after {self.options.timeout:.0f} s ({last})"
                )
            if not self.hass or not self.hass.running:
                raise DevelopError(f"check failed: Home Assistant exited ({last})")
            await asyncio.sleep(2)

    async def hydra_temperatures(self, ha: HomeAssistant) -> list[str] | str:
        """Lines describing the loaded entry and its temperature sensors, or why not yet."""
        entries = await self.hydra_entries(ha)
        if not entries:
            return "no Hydra config entry"
        ours = (read_json(self.state_file) or {}).get("entry_id")
        entry = next((entry for entry in entries if entry["entry_id"] == ours), entries[0])
        if entry["state"] in FAILED_ENTRY_STATES:
            raise DevelopError(
                f"check failed: the Hydra entry is in state {entry['state']}: {entry.get('reason')}"
            )
        if entry["state"] not in READY_ENTRY_STATES:
            return f"the Hydra entry is {entry['state']} ({entry.get('reason')})"
        rendered = await ha.request(
            "POST",
            "/api/template",
            json_body={"template": f"{{{{ integration_entities('{DOMAIN}') | tojson }}}}"},
        )
        entity_ids = set(rendered if isinstance(rendered, list) else json.loads(rendered))
        states = await ha.request("GET", "/api/states")
        temperatures = [
            state
            for state in states
            if state["entity_id"] in entity_ids
            and state["entity_id"].startswith("sensor.")
            and state["attributes"].get("device_class") == "temperature"
            and state["state"] not in ("unknown", "unavailable")
        ]
        if not temperatures:
            return (
                "the Hydra entry is loaded but has no GPU temperature yet "
                f"({len(entity_ids)} entities)"
            )
        lines = [
            f"Hydra entry {entry['title']!r} is {entry['state']}, "
            f"{len(entity_ids)} entities, GPU backend {self.backend}"
        ]
        lines += [
            f"{state['entity_id']} = {state['state']} "
            f"{state['attributes'].get('unit_of_measurement', '')}".rstrip()
            for state in sorted(temperatures, key=lambda state: state["entity_id"])
        ]
        return lines

    async def wait_running(self, ha: HomeAssistant) -> None:
        """Wait until Home Assistant has finished starting (it handles SIGTERM only then)."""
        while True:
            state = (await ha.request("GET", "/api/config")).get("state")
            if state == "RUNNING":
                return
            if not self.hass or not self.hass.running:
                raise DevelopError(f"Home Assistant exited while {state}")
            if self.remaining() <= 0:
                raise DevelopError(f"Home Assistant did not finish starting in time ({state})")
            await asyncio.sleep(1)

    async def let_hass_finish_starting(self) -> None:
        """Before a stop: a SIGTERM during start-up kills hass before it saves its state."""
        if not self.hass or not self.hass.running:
            return
        self.deadline = time.monotonic() + STARTUP_GRACE
        with contextlib.suppress(DevelopError, aiohttp.ClientError, TimeoutError, KeyError):
            if not self.ha.access_token:
                # Stopped before logging in: if it can be logged in to, it is worth waiting for.
                if not await self.ha.answers() or "user" not in await self.ha.onboarding_done():
                    return
                await self.login(self.ha)
            state = (await self.ha.request("GET", "/api/config")).get("state")
            if state != "RUNNING":
                say(
                    f"Home Assistant is {state}: letting it finish starting before stopping it "
                    "(Ctrl-C again to kill it now)"
                )
                await self.wait_running(self.ha)

    def print_login(self) -> None:
        assert self.credentials is not None
        rule = "=" * 72
        lines = [
            rule,
            f"Home Assistant: http://{HOST}:{self.options.ha_port}",
            f"  Hydra dashboard: {self.dashboard_url}",
            f"  login: {self.credentials.username} / {self.credentials.password}"
            f"  (kept in {self.credentials_file})",
            f"  config: {self.config_dir}",
            f"Hydra worker: {self.worker_url}  (data and token in {self.worker_dir})",
            f"  {self.gpu_note}",
            f"  {self.demo.note}",
            f"  Wyoming voice on {HOST}:{self.options.voice_port}",
            f"  {self.comfyui.note}",
            f"processes: worker pid {self.worker.pid if self.worker else '-'}, "
            f"hass pid {self.hass.pid if self.hass else '-'}",
        ]
        if not self.options.check:
            lines.append("Press Ctrl-C to stop both.")
        lines.append(rule)
        for line in lines:
            say(line)

    async def supervise(self, ha: HomeAssistant) -> int:
        """Wait for a child to exit; restart Home Assistant when it asks for a restart."""
        assert self.worker is not None
        while True:
            assert self.hass is not None
            hass_wait = asyncio.ensure_future(self.hass.process.wait())
            worker_wait = asyncio.ensure_future(self.worker.process.wait())
            await asyncio.wait({hass_wait, worker_wait}, return_when=asyncio.FIRST_COMPLETED)
            for waiter in (hass_wait, worker_wait):
                waiter.cancel()
            if not self.worker.running:
                raise DevelopError(f"the worker exited with {self.worker.process.returncode}")
            code = self.hass.process.returncode
            await stop_child(self.hass, HASS_STOP_TIMEOUT)
            if code == 0:
                say("Home Assistant stopped")
                return 0
            if code != RESTART_EXIT_CODE:
                raise DevelopError(f"Home Assistant exited with {code}")
            say("Home Assistant asked for a restart: starting it again")
            self.deadline = time.monotonic() + self.options.timeout
            self.prepare_config()
            await self.start_hass(ha)
            await self.configure(ha)
            await self.wait_running(ha)
            self.print_login()

    async def shutdown(self) -> None:
        """Stop Home Assistant, then the worker."""
        await self.let_hass_finish_starting()
        if self.hass and self.hass.running:
            say(f"stopping Home Assistant (pid {self.hass.pid})")
        await stop_child(self.hass, HASS_STOP_TIMEOUT)
        if self.worker and self.worker.running:
            say(f"stopping the worker (pid {self.worker.pid})")
        await stop_child(self.worker, WORKER_STOP_TIMEOUT)
        await self.docs.stop()
        await self.comfyui.stop()
        if self.health_checks is not None:
            self.health_checks.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.health_checks
        if self.demo.engine is not None:
            say("stopping the demo containers' podman engine")
        await asyncio.to_thread(self.demo.shutdown)


# --- command line ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> Options:
    caller_dir = Path(os.environ.get("HYDRA_DEVELOP_CALLER_DIR") or Path.cwd())
    parser = argparse.ArgumentParser(
        prog="scripts/develop",
        description=(
            "Run a local Hydra worker and a real Home Assistant with the Hydra integration set "
            f"up, both on {HOST}. Ctrl-C stops both."
        ),
    )
    parser.add_argument(
        "--dev-dir",
        type=Path,
        default=Path(os.environ.get("HYDRA_DEV_DIR") or ROOT / ".dev"),
        help="where the state lives (env HYDRA_DEV_DIR; default .dev in the repository)",
    )
    parser.add_argument("--ha-port", type=int, default=DEFAULT_HA_PORT, help="default 8123")
    parser.add_argument("--worker-port", type=int, default=DEFAULT_WORKER_PORT, help="default 8741")
    parser.add_argument(
        "--voice-port", type=int, default=DEFAULT_VOICE_PORT, help="Wyoming, default 10300"
    )
    parser.add_argument(
        "--comfyui-url",
        metavar="URL",
        help="your own ComfyUI (http://host:8188) for the creative part; without it the dev "
        "instance serves the tests' ComfyUI stand-in (images drawn by Pillow, no model)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="start, wait for the Hydra entry to load with GPU temperature sensors, "
        "print them, stop",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds start-up (and --check) may take before giving up "
        f"(default {DEFAULT_TIMEOUT})",
    )
    args = parser.parse_args(argv)
    return Options(
        dev_dir=(caller_dir / args.dev_dir).resolve(),
        ha_port=args.ha_port,
        worker_port=args.worker_port,
        voice_port=args.voice_port,
        check=args.check,
        timeout=args.timeout,
        comfyui_url=args.comfyui_url,
    )


async def amain(options: Options) -> int:
    """Run until done or signalled; always stop the children before returning."""
    async with aiohttp.ClientSession() as session:
        return await _run(Develop(options, HomeAssistant(session, options.ha_port)))


async def _run(develop: Develop) -> int:
    options = develop.options
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)

    def on_signal(signum: int) -> None:
        if stop.is_set():  # a second Ctrl-C: do not wait for a clean stop
            for child in (develop.hass, develop.worker):
                if child and child.running:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(child.pid, signal.SIGKILL)
            return
        say(f"{signal.Signals(signum).name}: stopping (again to kill)")
        stop.set()

    for signum in signals:
        loop.add_signal_handler(signum, on_signal, signum)
    run = asyncio.create_task(develop.run())
    stopped = asyncio.create_task(stop.wait())
    code = 1
    try:
        await asyncio.wait({run, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if run.done():
            code = _outcome(run)
        else:
            run.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await run
            code = 1 if options.check else 0
            if options.check:
                say("check interrupted")
    finally:
        stopped.cancel()
        await develop.shutdown()
    say("stopped" if code == 0 else f"exit {code}")
    return code


def _outcome(run: Awaitable[int]) -> int:
    assert isinstance(run, asyncio.Task)
    error = run.exception()
    if error is None:
        return run.result()
    if isinstance(error, DevelopError):
        say(f"error: {error}")
    else:
        say(f"error: {type(error).__name__}: {error}")
        traceback.print_exception(error)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    return asyncio.run(amain(options))


if __name__ == "__main__":
    sys.exit(main())
