"""The engine behaves the way container monitoring needs, seen through the Docker API socket.

These pin podman 4.3's answers (Debian 12), including where they differ from Docker's: the
worker's engine code is written against exactly these shapes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
import json
import os
import subprocess
import time
from typing import Any

import aiohttp

from tests.podman import (
    DOCKER_API,
    IMAGE,
    LIBPOD_API,
    TOGGLE_HEALTH_CMD,
    PodmanEngine,
    query,
)

EVENT_KEYS = {"status", "id", "from", "Type", "Action", "Actor", "scope", "time", "timeNano"}


def by_name(containers: Iterable[dict[str, Any]], name: str) -> dict[str, Any]:
    """The list entry of the container called ``name``."""
    return next(c for c in containers if c["Names"] == [f"/{name}"])


def named(name: str, action: str | None = None) -> Any:
    """An event predicate: this container (and this Action)."""
    return lambda event: (
        event["Actor"]["Attributes"].get("name") == name
        and (action is None or event["Action"] == action)
    )


def test_ping_and_version(podman: PodmanEngine) -> None:
    """``/_ping`` answers OK; the Docker API version is 1.41."""
    assert podman.request("GET", "/_ping") == (200, b"OK")
    version = podman.api("GET", f"{DOCKER_API}/version")
    assert version["ApiVersion"] == "1.41"
    assert version["Components"][0]["Name"] == "Podman Engine"


def test_list_running_exited_and_unhealthy(podman: PodmanEngine) -> None:
    """All three show in ``containers/json?all=1``; health only in inspect, not in Status."""
    web = podman.run("web")
    job = podman.run("job", exit_code=3)
    db = podman.run("db", health_cmd=TOGGLE_HEALTH_CMD)
    assert podman.make_unhealthy("db") == "unhealthy"

    listed = podman.api("GET", f"{DOCKER_API}/containers/json?all=1")
    assert by_name(listed, "web")["Id"] == web
    assert by_name(listed, "web")["State"] == "running"
    assert by_name(listed, "web")["Status"].startswith("Up ")
    assert by_name(listed, "web")["Image"] == IMAGE
    assert by_name(listed, "job")["Id"] == job
    assert by_name(listed, "job")["State"] == "exited"
    assert by_name(listed, "job")["Status"].startswith("Exited (3) ")
    assert by_name(listed, "db")["Id"] == db
    assert by_name(listed, "db")["State"] == "running"
    assert "health" not in by_name(listed, "db")["Status"]  # Docker: "Up 2 seconds (unhealthy)"

    assert podman.inspect("job")["State"]["ExitCode"] == 3
    assert podman.inspect("job")["State"]["Status"] == "exited"
    assert podman.inspect("db")["State"]["Health"]["Status"] == "unhealthy"
    assert podman.inspect("web")["State"]["Health"] == {
        "Status": "",
        "FailingStreak": 0,
        "Log": None,
    }

    running = podman.api("GET", f"{DOCKER_API}/containers/json")
    assert {c["Names"][0] for c in running} >= {"/web", "/db"}
    assert "/job" not in {c["Names"][0] for c in running}


def test_health_checks_run_on_demand(podman: PodmanEngine) -> None:
    """Nothing runs a check by itself; each libpod healthcheck call runs one."""
    podman.run("app", health_cmd=TOGGLE_HEALTH_CMD)
    assert podman.inspect("app")["State"]["Health"]["Status"] == "starting"
    assert podman.inspect("app")["Config"]["Healthcheck"]["Test"] == [
        "CMD-SHELL",
        TOGGLE_HEALTH_CMD,
    ]
    assert podman.make_healthy("app") == "healthy"
    assert podman.make_unhealthy("app") == "unhealthy"
    health = podman.inspect("app")["State"]["Health"]
    assert health["FailingStreak"] == 1
    assert [entry["ExitCode"] for entry in health["Log"]] == [0, 1]
    assert podman.make_healthy("app") == "healthy"
    assert podman.inspect("app")["State"]["Health"]["FailingStreak"] == 0

    # The endpoint itself answers with this one check's result, not the container's status.
    podman.run("slow", health_cmd=TOGGLE_HEALTH_CMD, health_retries=2)
    result = podman.api("GET", f"{LIBPOD_API}/containers/slow/healthcheck")
    assert result["Status"] == "unhealthy"
    assert podman.inspect("slow")["State"]["Health"]["Status"] == "starting"
    assert podman.healthcheck("slow") == "unhealthy"

    status, _ = podman.request("GET", f"{LIBPOD_API}/containers/app-none/healthcheck")
    assert status == 404
    podman.run("plain")
    status, body = podman.request("GET", f"{LIBPOD_API}/containers/plain/healthcheck")
    assert status == 409
    assert "no defined healthcheck" in body["message"]


def test_protected_label_in_list(podman: PodmanEngine) -> None:
    """Labels show in the list; the label filter works."""
    podman.run("keep", labels={"hydra.protected": "true"})
    podman.run("other")
    listed = podman.api("GET", f"{DOCKER_API}/containers/json?all=1")
    assert by_name(listed, "keep")["Labels"] == {"hydra.protected": "true"}
    assert by_name(listed, "other")["Labels"] == {}
    filtered = podman.api(
        "GET",
        f"{DOCKER_API}/containers/json" + query(all=1, filters={"label": ["hydra.protected=true"]}),
    )
    assert [c["Names"] for c in filtered] == [["/keep"]]


def test_recreate_gives_a_new_id(podman: PodmanEngine) -> None:
    """Same name, new id; the old id is gone."""
    first = podman.run("svc", labels={"hydra.protected": "true"})
    second = podman.recreate("svc")
    assert second != first
    assert podman.inspect("svc")["Id"] == second
    assert podman.inspect("svc")["Config"]["Labels"] == {"hydra.protected": "true"}
    assert podman.request("GET", f"{DOCKER_API}/containers/{first}/json")[0] == 404


def test_die_event_within_two_seconds(podman: PodmanEngine) -> None:
    """Killing a container streams a ``die`` event with the name and exit code."""
    victim = podman.run("victim", labels={"hydra.protected": "true"})
    with podman.events(filters={"type": ["container"]}) as events:
        started = time.monotonic()
        podman.kill("victim")
        event = events.wait_for(named("victim", "die"), timeout=2)
        elapsed = time.monotonic() - started
    assert event is not None, [e["Action"] for e in events.events]
    assert elapsed < 2
    assert set(event) == EVENT_KEYS
    assert event["Type"] == "container"
    assert event["status"] == "die"
    assert event["id"] == event["Actor"]["ID"] == victim
    assert event["from"] == IMAGE
    assert event["Actor"]["Attributes"] == {
        "containerExitCode": "137",
        "exitCode": "137",
        "hydra.protected": "true",
        "image": IMAGE,
        "name": "victim",
        "podId": "",
    }
    assert [e["Action"] for e in events.events if e["id"] == victim][:2] == ["kill", "die"]


def test_event_filter_takes_podmans_name_died(podman: PodmanEngine) -> None:
    """``filters={"event": ["die"]}`` matches nothing on podman 4.3: it wants "died"."""
    podman.run("gone")
    with (
        podman.events(filters={"event": ["die"]}) as docker_name,
        podman.events(filters={"event": ["die", "died"]}) as both_names,
    ):
        podman.kill("gone")
        event = both_names.wait_for(named("gone"), timeout=2)
        assert event is not None
        assert event["Action"] == "die"
        assert docker_name.next(timeout=0.5) is None


def test_health_status_event(podman: PodmanEngine) -> None:
    """Each check streams ``health_status``; its HealthStatus is the status before the check."""
    checked = podman.run(
        "checked", health_cmd=TOGGLE_HEALTH_CMD, labels={"hydra.protected": "true"}
    )
    assert podman.make_healthy("checked") == "healthy"
    with podman.events(filters={"type": ["container"], "event": ["health_status"]}) as events:
        assert podman.make_unhealthy("checked") == "unhealthy"
        first = events.wait_for(named("checked"), timeout=2)
        assert podman.healthcheck("checked") == "unhealthy"
        second = events.wait_for(named("checked"), timeout=2)
    assert first is not None
    assert second is not None
    assert set(first) == EVENT_KEYS | {"HealthStatus"}
    assert first["Action"] == first["status"] == "health_status"
    assert first["id"] == checked
    assert first["HealthStatus"] == "healthy"  # podman 4.3 lags one check behind
    assert second["HealthStatus"] == "unhealthy"
    assert first["Actor"]["Attributes"] == {
        "containerExitCode": "0",
        "hydra.protected": "true",
        "image": IMAGE,
        "name": "checked",
        "podId": "",
    }


def test_one_shot_stats(podman: PodmanEngine) -> None:
    """Docker-shaped stats with zeroed ``precpu_stats``; an exited container gives an empty 200."""
    busy = podman.run("busy")
    stats = podman.api("GET", f"{DOCKER_API}/containers/{busy}/stats?stream=false")
    assert stats["name"] == "busy"
    assert stats["Id"] == busy
    cpu = stats["cpu_stats"]
    assert cpu["cpu_usage"]["total_usage"] > 0
    assert len(cpu["cpu_usage"]["percpu_usage"]) == cpu["online_cpus"] == os.cpu_count()
    assert cpu["system_cpu_usage"] > 0
    assert stats["precpu_stats"]["cpu_usage"]["total_usage"] == 0
    assert "system_cpu_usage" not in stats["precpu_stats"]
    assert stats["preread"] == "0001-01-01T00:00:00Z"
    assert stats["memory_stats"]["usage"] > 0
    assert stats["memory_stats"]["limit"] > 0
    assert "stats" not in stats["memory_stats"]  # no cache / inactive_file breakdown
    assert stats["pids_stats"] == {"current": 1}

    again = podman.api("GET", f"{DOCKER_API}/containers/busy/stats?stream=false&one-shot=true")
    assert again["precpu_stats"]["cpu_usage"]["total_usage"] == 0

    podman.run("done", exit_code=0)
    assert podman.request("GET", f"{DOCKER_API}/containers/done/stats?stream=false") == (200, b"")
    assert podman.request("GET", f"{DOCKER_API}/containers/nope/stats?stream=false")[0] == 404


def test_libpod_stats_for_all_containers(podman: PodmanEngine) -> None:
    """One libpod call gives every container's stats (exited ones as zeros)."""
    running = podman.run("one")
    exited = podman.run("two", exit_code=1)
    answer = podman.api("GET", f"{LIBPOD_API}/containers/stats?stream=false")
    assert answer["Error"] is None
    stats = {s["ContainerID"]: s for s in answer["Stats"]}
    assert stats[running]["Name"] == "one"
    assert stats[running]["CPUNano"] > 0
    assert stats[running]["MemUsage"] > 0
    assert stats[running]["MemLimit"] > 0
    assert stats[running]["PIDs"] == 1
    assert 0 <= stats[running]["CPU"] <= 100 * os.cpu_count()
    assert stats[exited]["CPUNano"] == stats[exited]["MemUsage"] == stats[exited]["PIDs"] == 0

    only = podman.api(
        "GET", f"{LIBPOD_API}/containers/stats" + query(stream="false", containers=running)
    )
    assert [s["ContainerID"] for s in only["Stats"]] == [running]


def test_restart(podman: PodmanEngine) -> None:
    """``restart?t=0`` answers 204 and the container runs again with a new process."""
    podman.run("again")
    before = podman.inspect("again")["State"]
    status, _ = podman.request("POST", f"{DOCKER_API}/containers/again/restart?t=0")
    assert status == 204
    after = podman.inspect("again")["State"]
    assert after["Running"]
    assert after["Pid"] != before["Pid"]
    assert after["StartedAt"] > before["StartedAt"]


def test_restart_policy_and_docker_kill(podman: PodmanEngine) -> None:
    """Restart policies work (podman's cleanup process applies them); Docker's kill waits."""
    podman.run("flaky", command=("sh", "-c", "exit 1"), restart_policy="on-failure:2")
    deadline = time.monotonic() + 10
    while (
        podman.inspect("flaky")["RestartCount"] < 2 or podman.inspect("flaky")["State"]["Running"]
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert podman.inspect("flaky")["HostConfig"]["RestartPolicy"] == {
        "Name": "on-failure",
        "MaximumRetryCount": 2,
    }

    podman.run("target")
    status, _ = podman.request("POST", f"{DOCKER_API}/containers/target/kill")
    assert status == 204
    assert podman.inspect("target")["State"]["ExitCode"] == 137


def test_engine_env_for_subprocesses(podman: PodmanEngine) -> None:
    """``engine_env()`` points DOCKER_HOST at the socket and the podman CLI at the same store."""
    podman.run("seen")
    env = podman.engine_env()
    assert env["DOCKER_HOST"] == podman.docker_host == f"unix://{podman.socket_path}"
    names = subprocess.run(
        ["podman", "ps", "--format", "{{.Names}}"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    assert "seen" in names


def test_containers_of_earlier_tests_are_gone(podman: PodmanEngine) -> None:
    """The ``podman`` fixture removed what the tests above created."""
    names = {c["Names"][0] for c in podman.containers()}
    assert not names & {"/web", "/job", "/db", "/app", "/keep", "/svc", "/victim", "/seen"}


async def test_events_and_stats_through_aiohttp(podman: PodmanEngine) -> None:
    """aiohttp's UnixConnector (what the worker uses) streams events and reads stats."""
    watched = podman.run("watched")
    connector = aiohttp.UnixConnector(path=podman.socket_path)
    async with aiohttp.ClientSession(
        connector=connector, base_url="http://localhost", timeout=aiohttp.ClientTimeout(total=10)
    ) as session:
        async with session.get(
            f"{DOCKER_API}/containers/{watched}/stats", params={"stream": "false"}
        ) as response:
            assert "Content-Type" not in response.headers  # so json() needs content_type=None
            stats = await response.json(content_type=None)
        assert stats["memory_stats"]["usage"] > 0

        params = {"filters": json.dumps({"type": ["container"]})}
        async with session.get(f"{DOCKER_API}/events", params=params) as response:
            assert response.status == 200
            podman.kill("watched", wait=False)
            seen = []
            async with asyncio.timeout(2):
                async for line in response.content:
                    event = json.loads(line)
                    seen.append(event["Action"])
                    if named("watched", "die")(event):
                        break
    assert seen[-1] == "die"
