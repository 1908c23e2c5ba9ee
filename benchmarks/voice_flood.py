"""Flood: hostile Wyoming connections against a real worker process, while Home Assistant polls.

Run: .venv-worker/bin/python -m benchmarks.voice_flood [--connections 100] [--seconds 30]

Starts ``python -m hydra_core.worker`` on loopback with the voice services (the real Whisper
tiny.en and Kokoro weights the voice tests use, offline), then opens ``--connections`` hostile
connections for ``--seconds``, each reconnecting as soon as the worker closes it:

* oversized: an event header announcing a 1 GiB payload, then bytes as fast as they go;
* endless speech: ``transcribe`` and audio chunks of noise as fast as they go, never stopping;
* endless wake word audio: ``detect`` and noise as fast as it goes;
* slowloris: one byte of an event header a second.

Meanwhile a separate process asks ``/api/v1/status`` every 50 ms (Home Assistant polls it; every
entity goes unavailable when it fails) and this one samples the worker's RSS. Prints status p99
and RSS before, during and after, each beside its goal.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
from pathlib import Path
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from tests.voice.weights import assemble_weights, install_kokoro, install_whisper

LOOPBACK = "127.0.0.1"
TOKEN = "voice-flood-token-0123456789"  # noqa: S105 - a throwaway worker's
STATUS_P99_GOAL_MS = 100.0
# What the limits allow: 32 connections, each up to 2 MB of speech or a wake word stream with its
# own interpreters (about 9 MB), plus the models.
RSS_GROWTH_GOAL_MB = 400.0
KINDS = ("oversized", "endless speech", "endless wake audio", "slowloris")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def status_ms(port: int) -> float:
    started = time.perf_counter()
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
    try:
        connection.request("GET", "/api/v1/status", headers={"Authorization": f"Bearer {TOKEN}"})
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"/api/v1/status answered {response.status}")
    finally:
        connection.close()
    return (time.perf_counter() - started) * 1000


def poll_status(port: int, seconds: float, out: multiprocessing.Queue[list[float]]) -> None:
    """In its own process, so the attackers' work never delays the measurement."""
    times: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        times.append(status_ms(port))
        time.sleep(0.05)
    out.put(times)


def p99(times: list[float]) -> float:
    return statistics.quantiles(times, n=100)[98] if len(times) > 1 else times[0]


# The attackers ----------------------------------------------------------------------------


def _header(event_type: str, payload: int = 0, **data: object) -> bytes:
    header: dict[str, object] = {"type": event_type}
    body = json.dumps(data).encode() if data else b""
    if body:
        header["data_length"] = len(body)
    if payload:
        header["payload_length"] = payload
    return json.dumps(header).encode() + b"\n" + body


def _noise_chunk(rng: random.Random) -> bytes:
    return _header("audio-chunk", 2560, rate=16000, width=2, channels=1) + rng.randbytes(2560)


async def _attack_once(kind: str, port: int, rng: random.Random) -> None:
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    try:
        if kind == "oversized":
            writer.write(_header("audio-chunk", 2**30, rate=16000, width=2, channels=1))
            block = bytes(1 << 16)
            while not reader.at_eof():
                writer.write(block)
                await writer.drain()
        elif kind == "slowloris":
            for byte in b'{"type": "transcribe", "data_length": 2}\n{}' * 100:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(1)
                if reader.at_eof():
                    break
        else:
            start = "transcribe" if kind == "endless speech" else "detect"
            writer.write(_header(start) + _header("audio-start", rate=16000, width=2, channels=1))
            while not reader.at_eof():
                writer.write(_noise_chunk(rng))
                await writer.drain()
    finally:
        writer.close()


async def _attacker(kind: str, port: int, deadline: float, counts: dict[str, int]) -> None:
    rng = random.Random(kind)  # noqa: S311 - noise, not secrets
    while time.monotonic() < deadline:
        try:
            async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
                await _attack_once(kind, port, rng)
        except (OSError, TimeoutError):
            pass
        counts[kind] = counts.get(kind, 0) + 1
        await asyncio.sleep(0.1)  # then connect again, as a stubborn attacker would


def attack(
    port: int,
    connections: int,
    seconds: float,
    kinds: list[str],
    out: multiprocessing.Queue[dict[str, int]],
) -> None:
    async def run() -> dict[str, int]:
        counts: dict[str, int] = {}
        deadline = time.monotonic() + seconds
        await asyncio.gather(
            *(
                _attacker(kinds[index % len(kinds)], port, deadline, counts)
                for index in range(connections)
            )
        )
        return counts

    out.put(asyncio.run(run()))


# The run ----------------------------------------------------------------------------------


def start_worker(folder: Path, port: int, voice_port: int) -> subprocess.Popen[bytes]:
    models = folder / "models"
    (folder / "weights").mkdir()
    weights = assemble_weights(folder / "weights")
    install_whisper(models, weights)
    install_kokoro(models, weights)
    env = {key: value for key, value in os.environ.items() if not key.startswith("HYDRA_")}
    log = (folder / "worker.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hydra_core.worker",
            *("--host", LOOPBACK, "--port", str(port), "--data-dir", str(folder / "data")),
            *("--token", TOKEN, "--gpu-backend", "none", "--docker-host", "none"),
            *("--voice-port", str(voice_port), "--voice-zeroconf", "false"),
            *("--voice-offline", "true", "--models-dir", str(models), "--stt-model", "tiny.en"),
            *("--log-level", "warning"),
        ],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            status_ms(port)
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the worker did not start:\n{(folder / 'worker.log').read_text()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--kinds", default=",".join(KINDS), help=f"comma-separated, of: {', '.join(KINDS)}"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        port, voice_port = free_port(), free_port()
        worker = start_worker(Path(tmp), port, voice_port)
        try:
            for _ in range(20):  # warm up (first status reads the host)
                status_ms(port)
            before = [status_ms(port) for _ in range(100)]
            rss_before = rss_mb(worker.pid)

            times: multiprocessing.Queue[list[float]] = multiprocessing.Queue()
            counts: multiprocessing.Queue[dict[str, int]] = multiprocessing.Queue()
            prober = multiprocessing.Process(target=poll_status, args=(port, args.seconds, times))
            attacker = multiprocessing.Process(
                target=attack,
                args=(voice_port, args.connections, args.seconds, args.kinds.split(","), counts),
            )
            attacker.start()
            time.sleep(1.0)  # let the flood build up first
            prober.start()
            rss_during: list[float] = []
            while prober.is_alive() or attacker.is_alive():
                rss_during.append(rss_mb(worker.pid))
                time.sleep(0.5)
            during = times.get()
            attempts = counts.get()
            prober.join()
            attacker.join()

            time.sleep(5.0)
            after = [status_ms(port) for _ in range(100)]
            rss_after = rss_mb(worker.pid)
            alive = worker.poll() is None
        finally:
            worker.terminate()
            worker.wait(timeout=30)

    half = len(rss_during) // 2
    first_half, second_half = max(rss_during[:half]), max(rss_during[half:])
    print(f"hostile connections at once: {args.connections} for {args.seconds:.0f} s")
    print("connections opened, by kind:", ", ".join(f"{k} {n}" for k, n in attempts.items()))
    print(f"worker still up: {alive}  (goal: yes)")
    print(
        f"/api/v1/status p99: before {p99(before):.1f} ms, during {p99(during):.1f} ms "
        f"(max {max(during):.0f} ms, {len(during)} requests), after {p99(after):.1f} ms  "
        f"(goal: during < {STATUS_P99_GOAL_MS:.0f} ms)"
    )
    print(
        f"worker RSS: before {rss_before:.0f} MB, max in the flood's first half "
        f"{first_half:.0f} MB, in its second half {second_half:.0f} MB, after {rss_after:.0f} MB"
        f"  (goal: bounded, the second half no higher than the first; growth under "
        f"{RSS_GROWTH_GOAL_MB:.0f} MB)"
    )


if __name__ == "__main__":
    main()
