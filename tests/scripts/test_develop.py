"""scripts/develop --check end to end: a real worker and a real Home Assistant, run twice.

The first run onboards a fresh Home Assistant, sets its country and units, adds the Hydra entry
through the config flow, makes the Hydra dashboard the default and seeds the queue; the second,
on the same dev dir, must log in with what the first kept and change nothing. Each run must
leave no process behind. Takes about 50-90 s on a busy 2-core machine (each run starts Home
Assistant, the worker with every part and the demo containers' podman engine once).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import re
import socket
import stat
import subprocess
import time

ROOT = Path(__file__).resolve().parents[2]
DEVELOP = ROOT / "scripts" / "develop"
RUN_TIMEOUT = 540  # more than --timeout plus a clean stop


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            probe.bind(("127.0.0.1", 0))
            sockets.append(probe)
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that contain ``text`` (zombies have none)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        line = cmdline.replace(b"\0", b" ").decode(errors="replace")
        if text in line:
            found.append(f"{entry.name}: {line}")
    return found


def _run_check(dev_dir: Path, ha_port: int, worker_port: int, voice_port: int) -> tuple[str, float]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HYDRA_")}
    started = time.monotonic()
    result = subprocess.run(
        [
            str(DEVELOP),
            "--check",
            "--dev-dir",
            str(dev_dir),
            "--ha-port",
            str(ha_port),
            "--worker-port",
            str(worker_port),
            "--voice-port",
            str(voice_port),
            "--timeout",
            "300",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 0, (
        f"exit {result.returncode} after {elapsed:.0f} s:\n{output[-8000:]}"
    )
    pids = {int(pid) for pid in re.findall(r"\(pid (\d+)\)", output)}
    assert len(pids) >= 2, output[-4000:]  # the worker's and hass's
    assert _processes_mentioning(str(dev_dir)) == []
    return output, elapsed


def _hydra_entries(dev_dir: Path) -> list[dict]:
    storage = json.loads((dev_dir / "config" / ".storage" / "core.config_entries").read_text())
    return [entry for entry in storage["data"]["entries"] if entry["domain"] == "hydra"]


def test_develop_check_twice_on_one_dev_dir(tmp_path: Path, socket_enabled: None) -> None:
    dev_dir = tmp_path / "dev"
    ha_port, worker_port, _voice = ports = _free_ports(3)

    first, first_s = _run_check(dev_dir, *ports)

    credentials_file = dev_dir / "credentials"
    credentials = json.loads(credentials_file.read_text())
    assert credentials["username"] == "hydra"
    assert stat.S_IMODE(credentials_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((dev_dir / "ha-auth.json").stat().st_mode) == 0o600
    login = f"login: hydra / {credentials['password']}"
    assert login in first
    assert f"Home Assistant: http://127.0.0.1:{ha_port}" in first
    assert (
        "no NVIDIA GPU found: using the simulated backend" in first
        or "using the nvml backend" in first
    )
    assert "onboarding: created the owner 'hydra'" in first
    assert "config flow: added the Hydra entry" in first
    assert re.search(r"check: Hydra entry '.+' is loaded", first)
    # The instance's units are US customary: Home Assistant shows the worker's °C in °F.
    temperatures = re.findall(r"check: (sensor\.\S+) = [\d.]+ °F", first)
    assert temperatures, first[-4000:]
    assert all(entity_id.endswith("_temperature") for entity_id in temperatures)
    assert "check passed" in first
    # Every part has something to show: containers (where podman runs), voice, queued work; the
    # country and units are set, and Home Assistant opens on the Hydra dashboard.
    assert (
        "podman serves the demo containers hydra-demo-web, hydra-demo-db, hydra-demo-cache" in first
        or "no demo containers" in first
    )
    assert "voice: Whisper tiny.en, Kokoro (jf_alpha)" in first
    assert "work: queued maintenance task #1" in first
    assert "work: queued research task #2" in first
    assert "work: queued quality_scoring task #3" in first
    # The creative part draws with the tests' ComfyUI stand-in, and the output says so; the
    # chapter is queued, not waited for.
    assert "is the tests' stand-in" in first
    assert "--comfyui-url URL uses your own ComfyUI instead" in first
    assert re.search(
        r"creative: cast Mira, Sera, Odo and queued chapter #1 'The Glass Crown'", first
    ), first[-4000:]
    assert "core config: set the country to US and the units to us_customary" in first
    dashboard = f"http://127.0.0.1:{ha_port}/hydra-dashboard"
    assert f"dashboard: Home Assistant now opens on {dashboard}" in first
    assert re.search(rf"dashboard {dashboard} answers, \d+ s after", first)
    assert (
        (dev_dir / "config" / "dashboards" / "hydra.yaml")
        .read_text()
        .endswith("strategy:\n  type: custom:hydra\n")
    )
    link = dev_dir / "config" / "custom_components" / "hydra"
    assert link.resolve() == (ROOT / "custom_components" / "hydra").resolve()
    # The http: block was migrated into Home Assistant's own store and dropped from the YAML.
    configuration = (dev_dir / "config" / "configuration.yaml").read_text()
    assert not re.search(r"^(default_config|http):", configuration, re.MULTILINE)
    http = json.loads((dev_dir / "config" / ".storage" / "http").read_text())["data"]
    assert http["stable"]["server_host"] == ["127.0.0.1"]
    assert http["stable"]["server_port"] == ha_port
    assert http["pending"] is None
    [entry] = _hydra_entries(dev_dir)
    assert entry["data"]["url"] == f"http://127.0.0.1:{worker_port}"

    second, second_s = _run_check(dev_dir, *ports)

    assert login in second
    assert "onboarding: already done" in second
    assert "onboarding: created" not in second
    assert "already set up" in second
    assert "config flow: added" not in second
    assert re.search(r"check: sensor\.\S+_temperature = [\d.]+ °F", second)
    assert "work: the queue was seeded on an earlier run" in second
    assert "creative: the chapter was seeded on an earlier run" in second
    assert "queued chapter" not in second
    assert "core config: country US, temperatures in °F" in second
    assert "dashboard: Home Assistant now opens" not in second
    assert json.loads(credentials_file.read_text()) == credentials
    assert [e["entry_id"] for e in _hydra_entries(dev_dir)] == [entry["entry_id"]]
    print(f"scripts/develop --check: first run {first_s:.0f} s, second run {second_s:.0f} s")
