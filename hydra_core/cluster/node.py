"""This host's Ray node: ``ray start`` as a child the worker stops, advertising what it has.

The node advertises ``VRAM_MB`` (its GPUs' memory, or ``cluster_vram_mb``), one
``hydra_label_<label>`` resource per label (10,000 units; a routed task takes one) and node
labels naming the Hydra worker and its GPU model. It is started with ``--block`` in a session
of its own, so the worker can stop it (and only it) by its process group; its pid is kept in
the data dir so that a head worker killed with SIGKILL and restarted adopts the Ray head it
left running (the join nodes stay connected, and tasks finished meanwhile are kept).

The Ray task placed on this node reads ``node.json`` (written here, mode 0600) to find this
worker's loopback API and token.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path
import re
import signal
import subprocess
import sys
import time

from ..gpu import GpuProbe
from ..state_files import write_atomic
from .options import DEFAULT_RAY_PORT, ClusterOptions

_LOGGER = logging.getLogger(__name__)

FOLDER = "cluster"
NODE_FILE = "node.json"
PID_FILE = "ray.pid"
VRAM_RESOURCE = "VRAM_MB"
LABEL_RESOURCE = "hydra_label_{}"
LABEL_UNITS = 10_000
NAME_LABEL = "hydra-name"
GPU_LABEL = "hydra-gpu"
NODE_FILE_ENV = "HYDRA_CLUSTER_NODE_FILE"
_MIB = 1024**2
_STOP_TIMEOUT_S = 15.0


def label_value(text: str) -> str:
    """Text as a Ray node label value (63 characters of letters, digits, ``-_.``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.-")[:63]


def label_resource(label: str) -> str:
    """The Ray resource a node with ``label`` advertises and a routed task asks for."""
    return LABEL_RESOURCE.format(label)


class RayNode:
    """The ``ray start`` process of this host: the cluster's head, or a node joining it."""

    def __init__(
        self,
        options: ClusterOptions,
        *,
        name: str,
        probe: GpuProbe,
        data_dir: Path,
        api_url: str,
        token: str,
    ) -> None:
        self._options = options
        self._name = name
        self._probe = probe
        self._folder = data_dir / FOLDER
        self._api_url = api_url
        self._token = token
        self._process: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None

    @property
    def head(self) -> bool:
        """Whether this node is the cluster's head."""
        return self._options.cluster == "head"

    @property
    def address(self) -> str:
        """The HOST:PORT of the head's Ray cluster."""
        if self._options.cluster_address:
            return self._options.cluster_address
        return f"{self._options.cluster_node_ip or '127.0.0.1'}:{DEFAULT_RAY_PORT}"

    @property
    def node_file(self) -> Path:
        """What the Ray tasks on this node read to reach this worker."""
        return self._folder / NODE_FILE

    async def async_start(self) -> None:
        """Write the node file, then start the Ray node (a head adopts one it left running)."""
        write_atomic(
            self.node_file,
            json.dumps({"name": self._name, "api": self._api_url, "token": self._token}).encode(),
            mode=0o600,
        )
        if self.head and (pid := self._running_pid()) is not None:
            _LOGGER.info("Adopting the Ray head left running (pid %d)", pid)
            self._pid = pid
            return
        command = await self._command()
        log = (self._folder / "ray.log").open("ab")
        env = {**os.environ, NODE_FILE_ENV: str(self.node_file), "RAY_USAGE_STATS_ENABLED": "0"}
        with log:
            self._process = subprocess.Popen(  # noqa: ASYNC220, S603 - our own command; starting it does not block
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self._pid = self._process.pid
        write_atomic(self._folder / PID_FILE, f"{self._pid}\n".encode())
        _LOGGER.info("Ray %s node started (pid %d): %s", self._options.cluster, self._pid, command)

    async def async_stop(self) -> None:
        """Stop the Ray node's processes (its process group), SIGKILL after a while."""
        if self._pid is None:
            return
        pid, self._pid = self._pid, None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        if not await self._ended(pid, _STOP_TIMEOUT_S):
            _LOGGER.warning("The Ray node (pid %d) did not stop; killing it", pid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            await self._ended(pid, _STOP_TIMEOUT_S)
        with contextlib.suppress(FileNotFoundError):
            (self._folder / PID_FILE).unlink()

    async def _ended(self, pid: int, within: float) -> bool:
        """Wait until the process has ended (reaped, if it is this worker's child)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self._process is not None:
                if self._process.poll() is not None:
                    return True
            elif not _alive(pid):
                return True
            await asyncio.sleep(0.1)
        return False

    @property
    def exited(self) -> int | None:
        """The Ray node's exit status if it ended on its own, else None."""
        return None if self._process is None else self._process.poll()

    def _running_pid(self) -> int | None:
        try:
            pid = int((self._folder / PID_FILE).read_text())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _alive(pid) else None

    async def _command(self) -> list[str]:
        options = self._options
        report = await self._probe.async_read()
        gpus = report.gpus if report.available else ()
        vram_mb = options.cluster_vram_mb or sum(
            (gpu.memory_total_bytes or 0) // _MIB for gpu in gpus
        )
        resources: dict[str, float] = {VRAM_RESOURCE: float(vram_mb)}
        resources.update({label_resource(label): LABEL_UNITS for label in options.cluster_labels})
        labels = {NAME_LABEL: label_value(self._name)}
        if gpus:
            labels[GPU_LABEL] = label_value(gpus[0].name)
        command = [
            sys.executable,
            "-m",
            "ray.scripts.scripts",
            "start",
            "--block",
            "--disable-usage-stats",
            f"--num-cpus={os.cpu_count() or 1}",
            f"--num-gpus={len(gpus)}",
            f"--resources={json.dumps(resources)}",
            f"--labels={','.join(f'{key}={value}' for key, value in labels.items())}",
            f"--object-store-memory={options.cluster_object_store_mb * _MIB}",
        ]
        host, _, port = self.address.rpartition(":")
        node_ip = options.cluster_node_ip or (host if self.head else "")
        if node_ip:
            command.append(f"--node-ip-address={node_ip}")
        if self.head:
            command += ["--head", f"--port={port}", "--include-dashboard=false"]
        else:
            command.append(f"--address={self.address}")
        return command


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) ``ray start`` process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z" and b"ray" in cmdline
