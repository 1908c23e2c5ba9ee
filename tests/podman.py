"""A real container engine for tests: Debian's podman serving the Docker Engine API on a socket.

``PodmanEngine`` runs ``podman system service`` as root with everything it writes (configuration,
image and container storage, run state, runc's state, locks, events log, the unix socket) in one
temporary directory, so parallel and earlier runs never meet, and nothing lands in /etc, /var or
~/.config. Containers get no network (``netns = "none"``; the CNI plugin directory is an empty
folder, so a request for a bridge network fails instead of touching the host). The only image is
built locally from busybox-static with ``podman import``: nothing is pulled.

Standard library only, Python 3.11+, no threads: helpers talk to the engine over its unix socket
with ``http.client``; ``EventStream`` reads ``/events`` with a raw socket and a deadline.

Podman 4.3 runs no health check by itself here (that needs systemd timers): ``healthcheck()``
runs one through libpod's endpoint, which is also what makes podman emit ``health_status``.
``scripts/system-setup`` installs the packages (podman runc uidmap busybox-static catatonit).
"""

from __future__ import annotations

import atexit
from collections.abc import Callable, Iterator, Mapping, Sequence
import contextlib
import http.client
import io
import json
import os
from pathlib import Path
import resource
import select
import shutil
import signal
import socket
import struct
import subprocess
import tarfile
import tempfile
import time
from typing import Any, Self
import urllib.parse

IMAGE = "localhost/hydra-test-busybox:latest"
DOCKER_API = "/v1.41"
LIBPOD_API = "/v4.0.0/libpod"
# A container run with ``health_cmd=TOGGLE_HEALTH_CMD`` is healthy exactly while HEALTH_FILE exists;
# ``make_healthy`` / ``make_unhealthy`` create / delete it and run one check.
HEALTH_FILE = "/healthy"
# How long a health check waits for a container that is (re)starting to run.
HEALTHCHECK_WAIT_S = 10.0
TOGGLE_HEALTH_CMD = f"test -f {HEALTH_FILE}"
SETUP_HINT = "run scripts/system-setup (as root) to install podman runc uidmap busybox-static"
DIR_PREFIX = "hydra-podman-"
_BUSYBOX = "/bin/busybox"
_SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_SECOND_NS = 1_000_000_000


class PodmanError(RuntimeError):
    """The engine answered with an error, or could not be started or reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PodmanUnavailable(PodmanError):
    """This machine cannot run the engine (packages missing, not root)."""


class UnixHTTPConnection(http.client.HTTPConnection):
    """``http.client`` over a unix socket (the host name only fills the Host header)."""

    def __init__(self, socket_path: str, timeout: float = 30.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            connect_unix(sock, self.socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def connect_unix(sock: socket.socket, path: str) -> None:
    """``sock.connect(path)`` past pytest-socket's connect guard.

    Home Assistant's test plugin means to allow unix sockets, but its allowed-hosts guard on
    ``socket.socket.connect`` refuses every address that is not 127.0.0.1, unix paths included
    (also with ``socket_enabled``). The helpers here only ever reach their own engine's socket.
    ``socket.SocketType`` is the C socket type, whose ``connect`` no plugin patches.
    """
    socket.SocketType.connect(sock, path)


@contextlib.contextmanager
def allow_unix_connect(*paths: str) -> Iterator[None]:
    """Let every ``connect()`` to these unix socket paths through while the block runs.

    For the code under test (aiohttp's UnixConnector, aiodocker) under Home Assistant's test
    plugin; other addresses still go through whatever guard is installed. A no-op without one.
    """
    guarded = socket.socket.connect
    if guarded is socket.SocketType.connect or not paths:
        yield
        return
    allowed = {os.fsdecode(path) for path in paths}

    def connect(sock: socket.socket, address: Any, /) -> None:
        is_path = sock.family == socket.AF_UNIX and isinstance(address, str | bytes)
        if is_path and os.fsdecode(address) in allowed:
            return socket.SocketType.connect(sock, address)
        return guarded(sock, address)

    socket.socket.connect = connect  # type: ignore[method-assign]
    try:
        yield
    finally:
        if socket.socket.connect is connect:  # the plugin may have restored it already
            socket.socket.connect = guarded  # type: ignore[method-assign]


def request(
    socket_path: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    timeout: float = 30.0,
) -> tuple[int, Any]:
    """One HTTP request on the socket: (status, JSON-decoded body, or the raw bytes if not JSON)."""
    conn = UnixHTTPConnection(socket_path, timeout)
    try:
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        status = response.status
    finally:
        conn.close()
    if raw[:1] in (b"{", b"["):
        with contextlib.suppress(ValueError):
            return status, json.loads(raw)
    return status, raw


def query(**params: Any) -> str:
    """``?a=1&filters=...`` with dicts and lists JSON-encoded, as the Docker API wants them."""
    items = {
        key: json.dumps(value) if isinstance(value, dict | list) else value
        for key, value in params.items()
        if value is not None
    }
    return "?" + urllib.parse.urlencode(items) if items else ""


class EventStream:
    """``GET /events`` read line by line with deadlines, on a plain socket (no thread).

    Use as a context manager; ``next(timeout)`` returns one event (a dict) or None when nothing
    came in time, ``wait_for(predicate, timeout)`` the first event that matches.
    """

    def __init__(self, socket_path: str, path: str, timeout: float = 10.0) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._raw = b""  # received, not yet decoded
        self._body = b""  # decoded body, not yet returned
        self._headers_done = False
        self._chunked = False
        self._chunk_left = -1  # bytes left in this chunk; -1: a size line is next; -2: a CRLF
        self._eof = False
        self.events: list[dict[str, Any]] = []  # everything returned so far
        try:
            self._sock.settimeout(timeout)
            connect_unix(self._sock, socket_path)
            self._sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
            deadline = time.monotonic() + timeout
            while b"\r\n\r\n" not in self._raw:
                if not self._recv(deadline):
                    msg = f"no response to GET {path}"
                    raise PodmanError(msg)
            head, self._raw = self._raw.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            self.status = int(lines[0].split()[1])
            self.headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:])
            }
            self._chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
            self._headers_done = True
            self._decode()
            if self.status != 200:
                self._drain(min(deadline, time.monotonic() + 1))
                msg = f"GET {path}: HTTP {self.status}: {self._body[:500]!r}"
                raise PodmanError(msg, self.status)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Hang up; podman ends its side of the stream."""
        self._sock.close()

    def _recv(self, deadline: float) -> bool:
        """Receive more bytes before the deadline; False on timeout or end of stream."""
        remaining = deadline - time.monotonic()
        if self._eof or remaining <= 0:
            return False
        ready, _, _ = select.select([self._sock], [], [], remaining)
        if not ready:
            return False
        data = self._sock.recv(65536)
        if not data:
            self._eof = True
            return False
        self._raw += data
        self._decode()
        return True

    def _decode(self) -> None:
        if not self._headers_done:
            return
        if not self._chunked:
            self._body += self._raw
            self._raw = b""
            return
        while True:
            if self._chunk_left == -2:  # the CRLF that ends a chunk
                if len(self._raw) < 2:
                    return
                self._raw = self._raw[2:]
                self._chunk_left = -1
            if self._chunk_left == -1:  # a chunk-size line
                if b"\r\n" not in self._raw:
                    return
                size_line, self._raw = self._raw.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self._eof = True
                    return
                self._chunk_left = size
            if not self._raw:
                return
            take = self._raw[: self._chunk_left]
            self._body += take
            self._raw = self._raw[len(take) :]
            self._chunk_left -= len(take)
            if self._chunk_left == 0:
                self._chunk_left = -2

    def _drain(self, deadline: float) -> None:
        while self._recv(deadline):
            pass

    def next(self, timeout: float) -> dict[str, Any] | None:
        """The next event, or None if none arrives within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            line, sep, rest = self._body.partition(b"\n")
            if sep:
                self._body = rest
                if not line.strip():
                    continue
                event = json.loads(line)
                self.events.append(event)
                return event
            if not self._recv(deadline):
                return None

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any] | None:
        """The first event within ``timeout`` seconds for which ``predicate`` is true, else None."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            event = self.next(remaining)
            if event is None:
                return None
            if predicate(event):
                return event
        return None


def _find_binary(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path=_SBIN_PATH)


def _is_static_elf(path: str) -> bool:
    """True for an ELF executable without a program interpreter (so it runs in an empty rootfs)."""
    try:
        with open(path, "rb") as file:
            header = file.read(64)
            if header[:4] != b"\x7fELF" or header[4] != 2:  # 64-bit only (x86_64, aarch64)
                return False
            endian = "<" if header[5] == 1 else ">"
            phoff = struct.unpack_from(endian + "Q", header, 32)[0]
            phentsize, phnum = struct.unpack_from(endian + "HH", header, 54)
            file.seek(phoff)
            table = file.read(phentsize * phnum)
    except OSError:
        return False
    pt_interp = 3
    return all(
        struct.unpack_from(endian + "I", table, i * phentsize)[0] != pt_interp for i in range(phnum)
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _processes_mentioning(text: str) -> list[int]:
    """Processes whose command line contains ``text`` (our temp dir: conmon, podman helpers)."""
    needle = text.encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as file:
                if needle in file.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def _mounts_under(root: str) -> list[str]:
    """Mount points at or below ``root``, deepest first."""
    points = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as file:
            for line in file:
                point = line.split()[4]
                point = point.encode().decode("unicode_escape")  # \040 for spaces etc.
                if point == root or point.startswith(root + "/"):
                    points.append(point)
    except OSError:
        return []
    return sorted(points, key=len, reverse=True)


def busybox_rootfs_tar(busybox: str = _BUSYBOX) -> bytes:
    """A tar of a minimal root filesystem: static busybox at /bin/busybox, one link per applet."""
    applets = subprocess.run(
        [busybox, "--list"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:

        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = mode
            tar.addfile(info)

        def add_file(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))

        for name in ("bin", "dev", "etc", "proc", "root", "run", "sys", "usr", "var"):
            add_dir(name)
        add_dir("tmp", 0o1777)
        add_dir("var/tmp", 0o1777)
        with open(busybox, "rb") as file:
            add_file("bin/busybox", file.read(), 0o755)
        for applet in sorted(set(applets) - {"busybox"}):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
        add_file(
            "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"
        )
        add_file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    return buffer.getvalue()


class PodmanEngine:
    """A private podman engine serving the Docker API on ``unix://<tmp>/podman.sock``.

    ``start()`` takes about 0.2 s (writing the configuration, importing the busybox image,
    starting the service and waiting for ``/_ping``); ``shutdown()`` (also ``stop()`` without a
    name, or leaving the ``with`` block) removes every container, stops the service, ends any
    conmon or helper process that mentions the temp dir and deletes it. Engine directories left
    by killed runs are cleaned when the next engine starts (``reap_stale``).

    Container helpers (``run``, ``healthcheck``, ``kill``, ``recreate``, ...) use the Docker API
    on the socket (libpod's where Docker has no equivalent) and take names or ids; they block
    for milliseconds and start no thread.
    """

    def __init__(self, base_dir: str | os.PathLike[str] | None = None) -> None:
        self.base_dir = Path(base_dir) if base_dir is not None else Path(tempfile.gettempdir())
        self.root: Path | None = None
        self.image = IMAGE
        self.timings: dict[str, float] = {}
        self._service: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self._env: dict[str, str] = {}
        self._specs: dict[str, dict[str, Any]] = {}

    # --- life cycle ---------------------------------------------------------------------------

    @property
    def socket_path(self) -> str:
        """The unix socket that serves the Docker and libpod APIs."""
        self._require_root_dir()
        return str(self.root / "podman.sock")  # type: ignore[operator]

    @property
    def docker_host(self) -> str:
        """``unix://...``, what DOCKER_HOST or aiodocker's url take."""
        return f"unix://{self.socket_path}"

    @property
    def running(self) -> bool:
        """Whether the service process is alive."""
        return self._service is not None and self._service.poll() is None

    @property
    def service_pid(self) -> int:
        """The pid of ``podman system service``."""
        if self._service is None:
            msg = "PodmanEngine is not started"
            raise PodmanError(msg)
        return self._service.pid

    def helper_pids(self) -> list[int]:
        """Processes whose command line names this engine's directory (one conmon per running
        container, podman's cleanup helpers), not counting the service."""
        self._require_root_dir()
        return [pid for pid in _processes_mentioning(str(self.root)) if pid != self.service_pid]

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def start(self, timeout: float = 30.0) -> Self:
        """Write the configuration, import the image, start the service, wait for ``/_ping``."""
        if self.running:
            return self
        began = time.perf_counter()
        binaries = self._check_machine()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        reap_stale(self.base_dir)
        self.root = Path(tempfile.mkdtemp(prefix=DIR_PREFIX, dir=self.base_dir))
        atexit.register(self.shutdown)
        try:
            (self.root / "owner.pid").write_text(f"{os.getpid()}\n")
            if len(self.socket_path) > 100:
                msg = f"socket path too long for AF_UNIX: {self.socket_path}"
                raise PodmanError(msg)
            self._write_config(binaries)
            step = time.perf_counter()
            self._import_image(binaries["busybox"])
            self.timings["import"] = time.perf_counter() - step
            step = time.perf_counter()
            self._start_service(timeout)
            self.timings["service"] = time.perf_counter() - step
        except BaseException:
            self.shutdown()
            raise
        self.timings["start"] = time.perf_counter() - began
        return self

    def shutdown(self) -> None:
        """Remove all containers, stop the service and delete everything in the temp dir."""
        atexit.unregister(self.shutdown)
        root = self.root
        if root is None:
            return
        began = time.perf_counter()
        if self._env:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                self.podman("rm", "--all", "--force", "--time", "0", check=False, timeout=60)
        if self._service is not None:
            if self._service.poll() is None:
                self._service.terminate()
                try:
                    self._service.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._service.kill()
                    self._service.wait(timeout=10)
            self._service = None
        if self._log is not None:
            self._log.close()
            self._log = None
        cleanup_dir(root)
        self.root = None
        self._env = {}
        self._specs.clear()
        self.timings["stop"] = time.perf_counter() - began

    def _require_root_dir(self) -> None:
        if self.root is None:
            msg = "PodmanEngine is not started"
            raise PodmanError(msg)

    @staticmethod
    def _check_machine() -> dict[str, str]:
        if os.geteuid() != 0:
            msg = f"the test container engine runs podman as root; {SETUP_HINT}"
            raise PodmanUnavailable(msg)
        binaries = {name: _find_binary(name) for name in ("podman", "runc", "conmon")}
        missing = [name for name, path in binaries.items() if path is None]
        if missing:
            msg = f"missing {', '.join(missing)}; {SETUP_HINT}"
            raise PodmanUnavailable(msg)
        if not _is_static_elf(_BUSYBOX):
            msg = f"{_BUSYBOX} is missing or not statically linked (busybox-static); {SETUP_HINT}"
            raise PodmanUnavailable(msg)
        return {**binaries, "busybox": _BUSYBOX}  # type: ignore[dict-item]

    def _write_config(self, binaries: Mapping[str, str]) -> None:
        root = self.root
        assert root is not None
        for name in ("tmp", "runc", "cni-plugins-none", "networks", "varlib", "bin"):
            (root / name).mkdir()
        # runc keeps its state in /run/runc unless told otherwise: a wrapper keeps it here.
        wrapper = root / "bin" / "runc"
        wrapper.write_text(f'#!/bin/sh\nexec {binaries["runc"]} --root {root}/runc "$@"\n')
        wrapper.chmod(0o755)
        nofile_soft, nofile_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        nproc_hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
        nofile = nofile_hard if nofile_hard != resource.RLIM_INFINITY else max(nofile_soft, 65536)
        nproc = 4096 if nproc_hard == resource.RLIM_INFINITY else min(4096, nproc_hard)
        conf = root / "containers.conf"
        storage = root / "storage.conf"
        registries = root / "registries.conf"
        env = {
            "CONTAINERS_CONF": str(conf),
            "CONTAINERS_STORAGE_CONF": str(storage),
            "CONTAINERS_REGISTRIES_CONF": str(registries),
        }
        tmp = root / "tmp"
        conmon_env = [f"PATH={_SBIN_PATH}", f"TMPDIR={tmp}", *(f"{k}={v}" for k, v in env.items())]
        conf.write_text(
            f"""\
[containers]
netns = "none"
log_driver = "k8s-file"
default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
lock_type = "file"
tmp_dir = "{tmp}"
image_copy_tmp_dir = "{tmp}"
conmon_path = ["{binaries["conmon"]}"]
conmon_env_vars = {json.dumps(conmon_env)}

[engine.runtimes]
runc = ["{wrapper}"]

[network]
network_backend = "cni"
cni_plugin_dirs = ["{root}/cni-plugins-none"]
network_config_dir = "{root}/networks"
"""
        )
        storage.write_text(
            f"""\
[storage]
driver = "vfs"
runroot = "{root}/runroot"
graphroot = "{root}/graphroot"
"""
        )
        registries.write_text("unqualified-search-registries = []\n")
        self._env = {
            **os.environ,
            **env,
            "TMPDIR": str(tmp),
            "PATH": os.environ.get("PATH", "") + ":" + _SBIN_PATH,
        }
        self._env.pop("CONTAINER_HOST", None)
        self._env.pop("CONTAINER_CONNECTION", None)

    def _import_image(self, busybox: str) -> None:
        root = self.root
        assert root is not None
        tar = root / "rootfs.tar"
        tar.write_bytes(busybox_rootfs_tar(busybox))
        args = [
            "import",
            "--quiet",
            "--change",
            'CMD ["sh"]',
            "--message",
            "hydra test busybox",
            str(tar),
            self.image,
        ]
        # containers/image keeps a blob-info cache in /var/lib/containers/cache for root; give the
        # import a private /var/lib so that it lands in the temp dir instead.
        shell = 'mount --bind "$0" /var/lib && exec "$@"'
        private = ["unshare", "--mount", "--propagation", "private", "sh", "-c", shell]
        private += [str(root / "varlib"), self._podman_bin(), *args]
        if shutil.which("unshare") and self._run(private, check=False).returncode == 0:
            return
        self.podman(*args)

    def _start_service(self, timeout: float) -> None:
        root = self.root
        assert root is not None
        self._log = open(root / "service.log", "wb")  # noqa: SIM115 (closed in stop)
        self._service = subprocess.Popen(
            [self._podman_bin(), "system", "service", "--time=0", f"unix://{self.socket_path}"],
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self._service.poll() is not None:
                msg = (
                    f"podman system service exited ({self._service.returncode}): {self.log_tail()}"
                )
                raise PodmanError(msg)
            with contextlib.suppress(OSError, http.client.HTTPException):
                if request(self.socket_path, "GET", "/_ping", timeout=2)[0] == 200:
                    return
            if time.monotonic() > deadline:
                msg = f"podman system service did not answer /_ping: {self.log_tail()}"
                raise PodmanError(msg)
            time.sleep(0.02)

    def stop_service(self) -> None:
        """Stop the API service only (containers and storage stay), as when the engine dies."""
        if self._service is not None and self._service.poll() is None:
            self._service.terminate()
            self._service.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def start_service(self, timeout: float = 30.0) -> None:
        """Start the API service again after ``stop_service``."""
        self._require_root_dir()
        self._start_service(timeout)

    def log_tail(self, size: int = 2000) -> str:
        """The end of the service's log (stdout and stderr)."""
        if self.root is None:
            return ""
        try:
            return (self.root / "service.log").read_bytes()[-size:].decode(errors="replace")
        except OSError:
            return ""

    # --- plumbing -----------------------------------------------------------------------------

    def engine_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for subprocesses: DOCKER_HOST, and the podman configuration for its CLI."""
        self._require_root_dir()
        env = dict(os.environ if base is None else base)
        for key in ("CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF", "CONTAINERS_REGISTRIES_CONF"):
            env[key] = self._env[key]
        env["DOCKER_HOST"] = self.docker_host
        return env

    def _podman_bin(self) -> str:
        return _find_binary("podman") or "podman"

    def _run(
        self, args: Sequence[str], *, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            list(args),
            env=self._env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if check and result.returncode != 0:
            msg = f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()[-2000:]}"
            raise PodmanError(msg)
        return result

    def podman(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run the podman CLI against this engine's storage (local mode, same configuration)."""
        self._require_root_dir()
        return self._run([self._podman_bin(), *args], check=check, timeout=timeout)

    def request(
        self, method: str, path: str, body: Any = None, *, timeout: float = 30.0
    ) -> tuple[int, Any]:
        """One request to the socket: (status, decoded body)."""
        return request(self.socket_path, method, path, body, timeout=timeout)

    def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        ok: Sequence[int] = (200, 201, 204, 304),
        timeout: float = 30.0,
    ) -> Any:
        """A request that must succeed; returns the decoded body, raises PodmanError otherwise."""
        status, payload = self.request(method, path, body, timeout=timeout)
        if status not in ok:
            message = payload.get("message", payload) if isinstance(payload, dict) else payload
            msg = f"{method} {path}: HTTP {status}: {message!r}"
            raise PodmanError(msg, status)
        return payload

    def events(
        self,
        *,
        filters: Mapping[str, Sequence[str]] | None = None,
        since: float | None = None,
        timeout: float = 10.0,
    ) -> EventStream:
        """An open ``GET /v1.41/events`` stream (``since`` as a Unix time replays from then)."""
        params = query(
            filters=dict(filters) if filters else None,
            since=None if since is None else f"{since:.9f}",
        )
        return EventStream(self.socket_path, f"{DOCKER_API}/events{params}", timeout)

    # --- containers ---------------------------------------------------------------------------

    def run(
        self,
        name: str,
        *,
        command: Sequence[str] = ("sleep", "3600"),
        health_cmd: str | None = None,
        health_retries: int = 1,
        labels: Mapping[str, str] | None = None,
        restart_policy: str | None = None,
        exit_code: int | None = None,
        detach: bool = True,
        init: bool = False,
        env: Mapping[str, str] | None = None,
        image: str | None = None,
    ) -> str:
        """Create and start a container through the Docker API; returns its id.

        ``exit_code=N`` runs ``sh -c "exit N"`` and waits for it to exit (as ``detach=False``
        does for any command). ``health_cmd`` is a CMD-SHELL check with ``health_retries``
        (1: one failed check makes it unhealthy). ``restart_policy`` is a Docker policy name,
        optionally ``name:max`` ("always", "on-failure:3", ...); podman's cleanup process
        applies it. ``init`` runs catatonit as PID 1 (``HostConfig.Init``; inspect's ``Path``
        then is "/run/podman-init"); without it ``sleep`` as PID 1 ignores SIGTERM, so a stop or
        restart with ``t`` > 0 waits the whole grace period. (Podman 4.3's Docker-API stop and
        restart without ``t`` kill at once.) The network mode is always "none".
        """
        spec = {
            "command": tuple(command),
            "health_cmd": health_cmd,
            "health_retries": health_retries,
            "labels": dict(labels or {}),
            "restart_policy": restart_policy,
            "exit_code": exit_code,
            "detach": detach,
            "init": init,
            "env": dict(env or {}),
            "image": image,
        }
        if exit_code is not None:
            command = ("sh", "-c", f"exit {int(exit_code)}")
            detach = False
        host_config: dict[str, Any] = {"NetworkMode": "none", "Init": init}
        if restart_policy:
            policy, _, retries = restart_policy.partition(":")
            host_config["RestartPolicy"] = {"Name": policy, "MaximumRetryCount": int(retries or 0)}
        body: dict[str, Any] = {
            "Image": image or self.image,
            "Cmd": list(command),
            "Labels": dict(labels or {}),
            "Env": [f"{k}={v}" for k, v in (env or {}).items()],
            "HostConfig": host_config,
        }
        if health_cmd is not None:
            body["Healthcheck"] = {
                "Test": ["CMD-SHELL", health_cmd],
                "Interval": 3600 * _SECOND_NS,  # never runs by itself here anyway
                "Timeout": 30 * _SECOND_NS,
                "Retries": health_retries,
            }
        created = self.api("POST", f"{DOCKER_API}/containers/create{query(name=name)}", body)
        self._specs[name] = spec
        container_id = created["Id"]
        self.api("POST", f"{DOCKER_API}/containers/{container_id}/start")
        if not detach:
            self.wait_exited(container_id)
        return container_id

    def recreate(self, name: str, **changes: Any) -> str:
        """Remove the container and run one again under the same name (same settings unless
        changed); returns the new id."""
        spec = {**self._specs.get(name, {}), **changes}
        self.remove(name)
        return self.run(name, **spec)

    def rename(self, name: str, new_name: str) -> None:
        """``POST /containers/{name}/rename?name=new_name`` (the engine emits ``rename``)."""
        self.api("POST", f"{DOCKER_API}/containers/{_quote(name)}/rename{query(name=new_name)}")
        if name in self._specs:
            self._specs[new_name] = self._specs.pop(name)

    def compose_recreate(self, name: str, **changes: Any) -> str:
        """Recreate as Docker Compose v2 does; returns the new id.

        Compose creates the new container as ``<old id[:12]>_<name>``, stops and removes the old
        one, then renames the new one to ``name``. Here the new container already runs under its
        temporary name (Compose starts it after the rename): the harder case, a running
        container under a name that a protection pattern for ``name`` does not match.
        """
        spec = {**self._specs.get(name, {}), **changes}
        old_id = self.inspect(name)["Id"]
        temporary = f"{old_id[:12]}_{name}"
        new_id = self.run(temporary, **spec)
        self.remove(old_id)
        self.rename(new_id, name)
        self._specs[name] = self._specs.pop(temporary)
        return new_id

    def inspect(self, name: str) -> dict[str, Any]:
        """``GET /v1.41/containers/{name}/json``."""
        return self.api("GET", f"{DOCKER_API}/containers/{_quote(name)}/json")

    def containers(self, *, all: bool = True) -> list[dict[str, Any]]:
        """``GET /v1.41/containers/json`` (every container with ``all``)."""
        return self.api("GET", f"{DOCKER_API}/containers/json{query(all=int(all))}")

    def container_ids(self) -> set[str]:
        """Ids of every container, running or not."""
        return {c["Id"] for c in self.containers()}

    def wait_exited(self, name: str, timeout: float = 30.0) -> dict[str, Any]:
        """Poll until the container has exited and podman has cleaned it up; returns inspect.

        (Right after the exit ``State.Status`` is "stopped"; podman's cleanup process, started
        by conmon, makes it "exited" a few milliseconds later. The list shows the same states.)
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                info = self.inspect(name)
            except PodmanError as err:
                # Podman 4.3 answers 500 "read /proc/N/cgroup: no such process" to an inspect
                # that lands while the container's process is going away; ask again.
                if err.status != 500 or "no such process" not in str(err):
                    raise
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
                continue
            if not info["State"]["Running"] and info["State"]["Status"] == "exited":
                return info
            if time.monotonic() > deadline:
                msg = f"container {name} has not exited after {timeout} s: {info['State']}"
                raise PodmanError(msg)
            time.sleep(0.01)

    def exec(self, name: str, *command: str, timeout: float = 30.0) -> int:
        """Run a command in the container (Docker exec API); returns its exit code."""
        created = self.api(
            "POST",
            f"{DOCKER_API}/containers/{_quote(name)}/exec",
            {"Cmd": list(command), "AttachStdout": True, "AttachStderr": True},
        )
        exec_id = created["Id"]
        self.api("POST", f"{DOCKER_API}/exec/{exec_id}/start", {"Detach": False}, timeout=timeout)
        deadline = time.monotonic() + timeout
        while True:
            info = self.api("GET", f"{DOCKER_API}/exec/{exec_id}/json")
            if not info.get("Running") and info.get("ExitCode") is not None:
                return int(info["ExitCode"])
            if time.monotonic() > deadline:
                msg = f"exec {command} in {name} still running after {timeout} s"
                raise PodmanError(msg)
            time.sleep(0.01)

    def healthcheck(self, name: str) -> str:
        """Run one health check (libpod's endpoint); returns the container's health status after it.

        With ``health_retries=1`` that is "healthy" or "unhealthy"; with more retries a failing
        check leaves "starting" until the streak reaches the retries. Each check emits
        ``exec``, ``exec_died`` and ``health_status`` events; podman 4.3 puts the status from
        *before* the check in the event's ``HealthStatus`` (inspect has the new one).
        """
        # Right after a restart podman may still report the container as not running (its
        # transient "stopped" state); the check is for the running container, so wait for it.
        deadline = time.monotonic() + HEALTHCHECK_WAIT_S
        while True:
            try:
                self.api("GET", f"{LIBPOD_API}/containers/{_quote(name)}/healthcheck", timeout=60)
                break
            except PodmanError as err:
                if err.status != 409 or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        return self.inspect(name)["State"]["Health"]["Status"]

    def make_healthy(self, name: str) -> str:
        """For ``health_cmd=TOGGLE_HEALTH_CMD``: create the health file and run one check."""
        self.exec(name, "touch", HEALTH_FILE)
        return self.healthcheck(name)

    def make_unhealthy(self, name: str) -> str:
        """For ``health_cmd=TOGGLE_HEALTH_CMD``: delete the health file and run one check."""
        self.exec(name, "rm", "-f", HEALTH_FILE)
        return self.healthcheck(name)

    def stop(self, name: str | None = None, *, timeout: int = 0) -> None:
        """``stop()``: stop the engine (``shutdown``); ``stop(name)``: stop that container
        (``POST /containers/{name}/stop?t=timeout``; already stopped is fine)."""
        if name is None:
            self.shutdown()
            return
        self.api(
            "POST", f"{DOCKER_API}/containers/{_quote(name)}/stop{query(t=timeout)}", timeout=60
        )

    def start_container(self, name: str) -> None:
        """``POST /containers/{name}/start``."""
        self.api("POST", f"{DOCKER_API}/containers/{_quote(name)}/start")

    def kill(self, name: str, signal_name: str = "KILL", *, wait: bool = True) -> None:
        """Send a signal (libpod's kill returns at once); with SIGKILL wait until it has exited."""
        path = f"{LIBPOD_API}/containers/{_quote(name)}/kill{query(signal=signal_name)}"
        self.api("POST", path)
        if wait and signal_name.upper().removeprefix("SIG") in ("KILL", "9"):
            self.wait_exited(name)

    def remove(self, name: str, *, force: bool = True, missing_ok: bool = True) -> None:
        """Delete the container (killing it first with ``force``).

        Every exec, health checks included, leaves a conmon that waits 300 s (podman's exit
        delay) after the command ended; those of the removed container are ended too.
        """
        status, info = self.request("GET", f"{DOCKER_API}/containers/{_quote(name)}/json")
        if status == 404 and missing_ok:
            return
        params = query(force=str(force).lower(), timeout=0 if force else None)
        status, payload = self.request(
            "DELETE", f"{LIBPOD_API}/containers/{_quote(name)}{params}", timeout=60
        )
        if status == 404 and missing_ok:
            return
        if status not in (200, 204):
            msg = f"removing {name}: HTTP {status}: {payload!r}"
            raise PodmanError(msg, status)
        self._specs.pop(name, None)
        if isinstance(info, dict) and "Id" in info:
            self._end_exec_monitors(info["Id"])

    def _end_exec_monitors(self, container_id: str) -> None:
        root = str(self.root).encode()
        for pid in _processes_mentioning(container_id):
            with contextlib.suppress(OSError):
                with open(f"/proc/{pid}/cmdline", "rb") as file:
                    args = file.read()
                if root in args and b"--exec-attach" in args:
                    os.kill(pid, signal.SIGKILL)

    def remove_all(self, keep: set[str] | frozenset[str] = frozenset()) -> None:
        """Delete every container whose id is not in ``keep``."""
        for container_id in self.container_ids() - set(keep):
            self.remove(container_id)


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def cleanup_dir(root: Path) -> None:
    """End what still runs from an engine directory, unmount what it mounted, delete it."""
    root_str = str(root)
    # Containers first: each init pid is in runc's state (killing it ends the container).
    for state_file in (root / "runc").glob("*/state.json"):
        with contextlib.suppress(OSError, ValueError, KeyError, IndexError, ProcessLookupError):
            state = json.loads(state_file.read_text())
            pid = int(state["init_process_pid"])
            with open(f"/proc/{pid}/stat", encoding="ascii") as file:
                started = int(file.read().rsplit(")", 1)[1].split()[19])
            if pid > 1 and started == int(state["init_process_start"]):  # not a reused pid
                os.kill(pid, signal.SIGKILL)
    # Then conmon and podman's helpers (a dying conmon may just have started a cleanup helper).
    deadline = time.monotonic() + 5
    while (pids := _processes_mentioning(root_str)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    for point in _mounts_under(root_str):
        subprocess.run(["umount", "--lazy", point], capture_output=True, check=False, timeout=30)
    shutil.rmtree(root, ignore_errors=True)


def reap_stale(base_dir: Path) -> list[Path]:
    """Clean engine directories in ``base_dir`` whose owning process is gone (killed runs)."""
    cleaned = []
    for root in base_dir.glob(f"{DIR_PREFIX}*"):
        try:
            owner = int((root / "owner.pid").read_text().strip())
        except (OSError, ValueError):
            # Being created this very moment, or not ours: leave anything younger than a minute.
            with contextlib.suppress(OSError):
                if time.time() - root.stat().st_mtime > 60 and (root / "containers.conf").exists():
                    cleanup_dir(root)
                    cleaned.append(root)
            continue
        if owner != os.getpid() and not _pid_alive(owner):
            cleanup_dir(root)
            cleaned.append(root)
    return cleaned


@contextlib.contextmanager
def podman_engine(base_dir: str | os.PathLike[str] | None = None) -> Iterator[PodmanEngine]:
    """``with podman_engine() as engine:`` a started engine, stopped afterwards."""
    engine = PodmanEngine(base_dir)
    engine.start()
    try:
        yield engine
    finally:
        engine.shutdown()
