"""Real Hydra workers on 127.0.0.1 forming a Ray cluster: a head and nodes that join it.

Each is ``tests/cluster/cluster_worker.py`` (hydra-worker with test task kinds) in a process of
its own; its Ray node is the ``ray start`` child it runs. Losing a host is simulated as it
happens: the worker and its Ray node killed with SIGKILL together.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
from pathlib import Path
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import aiohttp

from .cluster_worker import RELEASE_DIR, WORKER, runs

TOKEN = "cluster-test-token-0123456789"
LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 90.0
FINAL_STATES = ("succeeded", "failed", "cancelled")
# How often the head asks each node for its GPUs (cluster_report_interval) in these tests.
REPORT_INTERVAL_S = 1.0


def free_port() -> int:
    """A TCP port free on the loopback now."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


class Worker:
    """One Hydra worker of the cluster (a restart is a new process on a new port)."""

    def __init__(
        self, name: str, folder: Path, *options: str, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.data_dir = folder / name
        self.options = options
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.logs: list[Path] = []

    def start(self) -> None:
        """Start the worker and wait until its API answers."""
        self.port = free_port()
        log = self.data_dir.parent / f"{self.name}-{len(self.logs)}.log"
        self.logs.append(log)
        env = {key: value for key, value in os.environ.items() if not key.startswith("HYDRA_")}
        env |= self.env
        command = [
            sys.executable,
            str(WORKER),
            *("--host", LOOPBACK, "--port", str(self.port), "--data-dir", str(self.data_dir)),
            *("--name", self.name, "--token", TOKEN, "--gpu-backend", "none"),
            *("--docker-host", "none", "--voice", "false", "--quality", "false"),
            *("--knowledge", "false", "--models", "false", "--retry-backoff", "0.2"),
            *("--cluster-node-ip", LOOPBACK, "--cluster-object-store-mb", "80"),
            *self.options,
        ]
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                command, env=env, stdout=output, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited:\n{self.log()[-4000:]}")
            with contextlib.suppress(OSError):
                if self.call("GET", "health")[0] == 200:
                    return
            time.sleep(0.2)
        raise AssertionError(f"{self.name} did not answer:\n{self.log()[-4000:]}")

    def ray_pid(self) -> int:
        """The pid (and process group) of this host's ``ray start``."""
        return int((self.data_dir / "cluster" / "ray.pid").read_text())

    def kill_worker(self) -> None:
        """kill -9 the Hydra worker only (its Ray node keeps running)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def kill_host(self) -> None:
        """The host lost: the worker and its Ray node killed with SIGKILL at once."""
        ray_pid = self.ray_pid()
        self.kill_worker()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(ray_pid, signal.SIGKILL)

    def pause(self) -> None:
        """SIGSTOP the Hydra worker only: it takes connections and answers nothing, while its
        Ray node runs on."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT a paused worker."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """SIGTERM; the worker stops its Ray node."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill_host()
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError):
            os.killpg(self.ray_pid(), signal.SIGKILL)

    def log(self) -> str:
        """Every log of this worker."""
        return "\n".join(path.read_text(errors="replace") for path in self.logs)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One API call: status and JSON answer."""
        connection = http.client.HTTPConnection(LOOPBACK, self.port, timeout=30)
        try:
            connection.request(
                method,
                f"/api/v1/{path}",
                body=None if body is None else json.dumps(body),
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            response = connection.getresponse()
            text = response.read()
            return response.status, json.loads(text) if text else None
        finally:
            connection.close()

    def scrape(self) -> str:
        """What Prometheus reads from this worker (``/api/v1/metrics``)."""
        connection = http.client.HTTPConnection(LOOPBACK, self.port, timeout=30)
        try:
            connection.request(
                "GET", "/api/v1/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            return connection.getresponse().read().decode()
        finally:
            connection.close()

    def runs(self) -> list[tuple[str, int, int]]:
        """What the handler did on this host."""
        return runs(self.data_dir)

    def release(self, task_id: int) -> None:
        """Let a ``hold`` task end on this host."""
        folder = self.data_dir / RELEASE_DIR
        folder.mkdir(parents=True, exist_ok=True)
        (folder / str(task_id)).touch()


class EventListener:
    """The head's event stream, read on a thread of its own until stopped."""

    def __init__(self, worker: Worker) -> None:
        self.events: list[dict[str, Any]] = []
        self._done = threading.Event()
        self._url = f"http://{LOOPBACK}:{worker.port}/api/v1/events"
        connected = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._listen(connected),))
        self._thread.start()
        assert connected.wait(10), "the event stream did not open"

    async def _listen(self, connected: threading.Event) -> None:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(self._url, headers=headers) as socket_,
        ):
            connected.set()
            while not self._done.is_set():
                try:
                    message = await socket_.receive(timeout=0.2)
                except TimeoutError:
                    continue
                if message.type != aiohttp.WSMsgType.TEXT:
                    return  # the worker stopped
                self.events.append(json.loads(message.data))

    def stop(self) -> list[dict[str, Any]]:
        """Stop listening; every event received."""
        self._done.set()
        self._thread.join(10)
        return self.events


class Cluster:
    """A head and the nodes that joined it."""

    def __init__(self, head: Worker, nodes: list[Worker]) -> None:
        self.head = head
        self.nodes = {node.name: node for node in nodes}

    @property
    def workers(self) -> list[Worker]:
        return [self.head, *self.nodes.values()]

    def nodes_alive(self) -> dict[str, dict[str, Any]]:
        """The nodes the head sees alive, by name."""
        status, report = self.head.call("GET", "cluster")
        assert status == 200, report
        return {node["name"]: node for node in report["nodes"] if node["alive"]}

    def wait_node(self, name: str, *, alive: bool = True, within: float = 90.0) -> None:
        """Wait until the head sees the node alive (or not)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if (name in self.nodes_alive()) == alive:
                return
            time.sleep(0.2)
        raise AssertionError(f"node {name} never {'joined' if alive else 'lost'}")

    def enqueue(self, kind: str, *, on: Worker | None = None, **payload: Any) -> dict[str, Any]:
        """Queue a task on the head (or ``on`` another worker); it must be accepted."""
        status, task = (on or self.head).call("POST", "tasks", {"kind": kind, "payload": payload})
        assert status == 201, task
        return task  # type: ignore[no-any-return]

    def node(self, name: str) -> dict[str, Any]:
        """The node as the head lists it now (alive)."""
        return self.nodes_alive()[name]

    def task(self, task_id: int, *, on: Worker | None = None) -> dict[str, Any]:
        status, task = (on or self.head).call("GET", f"tasks/{task_id}")
        assert status == 200, task
        return task  # type: ignore[no-any-return]

    def wait_task(self, task_id: int, within: float = 90.0) -> dict[str, Any]:
        """Wait until a task ended; the task."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            task = self.task(task_id)
            if task["state"] in FINAL_STATES:
                return task
            time.sleep(0.1)
        raise AssertionError(f"task {task_id} not finished:\n{self.head.log()[-3000:]}")

    def ran_on(self, task_id: int, event: str = "start") -> list[tuple[str, int]]:
        """(node, attempt) of each ``event`` the handler logged for a task, on every node."""
        return sorted(
            (worker.name, attempt)
            for worker in self.workers
            for logged, logged_id, attempt in worker.runs()
            if logged == event and logged_id == task_id
        )

    def wait_started(self, task_id: int, attempt: int, within: float = 60.0) -> str:
        """Wait until the handler started this attempt somewhere; the node."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for node, logged in self.ran_on(task_id):
                if logged == attempt:
                    return node
            time.sleep(0.05)
        raise AssertionError(f"task {task_id} attempt {attempt} never started")

    def wait_started_at(self, task_id: int, *, on: Worker, within: float = 60.0) -> float:
        """Wait until a task queued on ``on`` runs there; when it started (unix time)."""
        deadline = time.monotonic() + within
        while (task := self.task(task_id, on=on))["started_at"] is None:
            assert time.monotonic() < deadline, task
            time.sleep(0.05)
        return float(task["started_at"])

    def stop(self) -> None:
        for worker in reversed(self.workers):
            worker.stop()


def start_cluster(folder: Path, ray_port: int) -> Cluster:
    """h (the head: 8,000 MB, images), a (a simulated 24,576 MB GPU, gpu) and b (8,000 MB,
    llm and gpu). chat is routed to llm, hold to gpu, big, small and huge to any node; tiny
    has no rule. Nodes join one after the other (two raylets starting at once on one small
    machine can time out)."""
    address = f"{LOOPBACK}:{ray_port}"
    head = Worker(
        "h",
        folder,
        *("--cluster", "head", "--cluster-address", address, "--cluster-vram-mb", "8000"),
        *(
            "--cluster-labels",
            "images",
            "--cluster-routes",
            "chat=llm,hold=gpu,medium=gpu,big=*,small=*,huge=*",
        ),
        "--cluster-poll-interval",
        "0.5",
        env={"HYDRA_CLUSTER_REPORT_INTERVAL": str(REPORT_INTERVAL_S)},
    )
    # a advertises what its GPU probe reads: one simulated 24 GiB card.
    joins = {
        "a": ("--gpu-backend", "simulated", "--simulated-gpus", "1", "--cluster-labels", "gpu"),
        "b": ("--cluster-vram-mb", "8000", "--cluster-labels", "llm,gpu"),
    }
    nodes = [
        Worker(name, folder, "--cluster", "join", "--cluster-address", address, *options)
        for name, options in joins.items()
    ]
    cluster = Cluster(head, nodes)
    try:
        head.start()
        for node in nodes:
            node.start()
            cluster.wait_node(node.name)
    except BaseException:
        cluster.stop()
        raise
    return cluster
