"""Hydra on a real Ray cluster on 127.0.0.1: a head and two nodes, each a Hydra worker process.

One cluster serves the whole module (each Ray node costs seconds to start); the tests run in
order, the faults last. Runs are counted by what the handler did on each node (its runs.log),
not by the queue's own fields.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
import os
from pathlib import Path
import signal
import time
from typing import Any, TypeVar

from prometheus_client.parser import text_string_to_metric_families
import pytest

from .harness import REPORT_INTERVAL_S, Cluster, EventListener, free_port, start_cluster

_GIB = 1024**3
_T = TypeVar("_T")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    folder: Path = tmp_path_factory.mktemp("cluster")
    running = start_cluster(folder, free_port())
    try:
        yield running
    finally:
        running.stop()


def test_nodes_listed_with_resources_and_labels(cluster: Cluster) -> None:
    status, report = cluster.head.call("GET", "cluster")
    assert status == 200, report
    assert report["mode"] == "head"
    assert report["routes"] == {
        "chat": "llm",
        "hold": "gpu",
        "medium": "gpu",
        "big": "*",
        "small": "*",
        "huge": "*",
    }
    nodes = {node["name"]: node for node in report["nodes"]}
    assert set(nodes) == {"h", "a", "b"}
    assert [node["name"] for node in report["nodes"] if node["head"]] == ["h"]
    assert {name: node["total"]["vram_mb"] for name, node in nodes.items()} == {
        "h": 8000,
        "a": 24576,
        "b": 8000,
    }
    assert {name: node["total"]["labels"] for name, node in nodes.items()} == {
        "h": ["images"],
        "a": ["gpu"],
        "b": ["gpu", "llm"],
    }
    assert nodes["a"]["gpu_model"] == "Simulated GPU 0 24 GB"
    assert nodes["a"]["total"]["gpus"] == 1
    assert all(node["alive"] and node["last_seen"] for node in nodes.values())
    status, body = cluster.head.call("GET", "status")
    assert status == 200, body
    assert body["parts"]["cluster"]["capabilities"] == ["head"]
    # Prometheus sees every node up.
    up = {
        sample.labels["node"]: sample.value
        for family in text_string_to_metric_families(cluster.head.scrape())
        if family.name == "hydra_cluster_node_up"
        for sample in family.samples
    }
    assert up == {"h": 1.0, "a": 1.0, "b": 1.0}
    # A joining node runs the part too, and knows its head.
    status, joined = cluster.nodes["a"].call("GET", "cluster")
    assert (status, joined["mode"], joined["address"]) == (200, "join", report["address"])


def test_placement_by_vram_and_label(cluster: Cluster) -> None:
    big = [cluster.enqueue("big", ms=300)["id"] for _ in range(3)]
    chat = [cluster.enqueue("chat", ms=100)["id"] for _ in range(2)]
    small = [cluster.enqueue("small", ms=100)["id"] for _ in range(3)]
    tasks = {task_id: cluster.wait_task(task_id) for task_id in big + chat + small}
    assert {task["state"] for task in tasks.values()} == {"succeeded"}
    # 12,000 MB fits only the 24,576 MB node; chat goes only where the llm label is.
    assert {tasks[task_id]["node"] for task_id in big} == {"a"}
    assert {tasks[task_id]["node"] for task_id in chat} == {"b"}
    for task_id, task in tasks.items():
        # The node recorded is the one whose handler ran it, once.
        assert cluster.ran_on(task_id, "done") == [(task["node"], 1)]
    # A kind no rule names runs on the head itself, as on one box.
    local = cluster.wait_task(cluster.enqueue("tiny")["id"])
    assert (local["state"], local["node"]) == ("succeeded", None)
    assert cluster.ran_on(local["id"], "done") == [("h", 1)]


def test_task_no_node_fits_is_refused_at_enqueue(cluster: Cluster) -> None:
    status, body = cluster.head.call("POST", "tasks", {"kind": "huge", "payload": {}})
    assert status == 400, body
    assert body["code"] == "no_node_fits"
    assert "100000 MB of VRAM" in body["message"]
    assert "a: 24576 MB [gpu]" in body["message"]
    status, listed = cluster.head.call("GET", "tasks?kind=huge")
    assert listed["tasks"] == []


def test_routes_put_while_running_move_a_kind_to_a_node(cluster: Cluster) -> None:
    """tiny has no rule and runs on the head; a PUT routes it to llm and the next one runs on
    b (counted by what b's handler logged). A joined node holds no rules; DELETE returns to
    the option's, and tiny runs on the head again."""
    status, before = cluster.head.call("GET", "cluster/routes")
    assert (status, before["source"]) == (200, "option"), before
    option = before["routes"]
    status, body = cluster.head.call("PUT", "cluster/routes", {"routes": {**option, "tiny": "llm"}})
    assert (status, body["source"], body["warnings"]) == (200, "api", []), body
    moved = cluster.wait_task(cluster.enqueue("tiny")["id"])
    assert (moved["state"], moved["node"]) == ("succeeded", "b")
    assert cluster.ran_on(moved["id"], "done") == [("b", 1)]

    status, refused = cluster.nodes["a"].call("PUT", "cluster/routes", {"routes": {}})
    assert (status, refused["code"]) == (409, "cluster_not_head")

    status, body = cluster.head.call("DELETE", "cluster/routes")
    assert (status, body["source"], body["routes"]) == (200, "option", option)
    back = cluster.wait_task(cluster.enqueue("tiny")["id"])
    assert (back["state"], back["node"]) == ("succeeded", None)
    assert cluster.ran_on(back["id"], "done") == [("h", 1)]


def _until(check: Callable[[], _T], within: float, what: str) -> _T:
    """Wait until ``check`` gives something true; that."""
    deadline = time.monotonic() + within
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return found


def _waiting(cluster: Cluster, task_id: int) -> dict[str, Any]:
    task: dict[str, Any] = _until(
        lambda: (task := cluster.task(task_id))["state"] == "waiting" and task,
        30,
        f"task {task_id} never waited: {cluster.task(task_id)}",
    )
    return task


def _mediums_run_on(cluster: Cluster, node: str) -> None:
    """Three medium tasks (6,000 MB, a or b) all run on ``node``, once each."""
    ids = [cluster.enqueue("medium", ms=50)["id"] for _ in range(3)]
    tasks = [cluster.wait_task(task_id, within=60) for task_id in ids]
    assert [(task["state"], task["node"]) for task in tasks] == [("succeeded", node)] * 3
    assert [cluster.ran_on(task_id) for task_id in ids] == [[(node, 1)]] * 3


def test_nodes_report_their_gpus_and_latency(cluster: Cluster) -> None:
    nodes = _until(
        lambda: (
            (nodes := cluster.nodes_alive())
            and all(node.get("reported") for node in nodes.values())
            and nodes
        ),
        REPORT_INTERVAL_S + 30,
        f"not every node reported: {cluster.nodes_alive()}",
    )
    gpus = {
        name: [(gpu["name"], gpu["memory_free_bytes"]) for gpu in node["gpus"]]
        for name, node in nodes.items()
    }
    # a's worker reads one simulated card, all free; h and b read none (no GPU monitoring).
    assert gpus == {"h": [], "a": [("Simulated GPU 0 (24 GB)", 24 * _GIB)], "b": []}
    assert nodes["a"]["available"]["vram_mb"] == 24576
    assert all(node["worker_up"] for node in nodes.values())
    latency = {name: node["latency_ms"] for name, node in nodes.items()}
    assert all(0 < ms < 5000 for ms in latency.values()), latency
    # Prometheus sees the round trip from the head to each node.
    scraped = {
        (sample.labels["source"], sample.labels["target"]): sample.value
        for family in text_string_to_metric_families(cluster.head.scrape())
        if family.name == "hydra_cluster_node_latency_seconds"
        for sample in family.samples
    }
    assert set(scraped) == {("h", "h"), ("h", "a"), ("h", "b")}
    assert all(0 < seconds < 5 for seconds in scraped.values()), scraped


def test_free_vram_follows_a_load_and_steers_placement(cluster: Cluster) -> None:
    a = cluster.nodes["a"]
    # Something on a's own worker takes 20,000 MB of its card (as a model load does).
    occupy = cluster.enqueue("occupy", on=a, mb=20_000)["id"]
    _until(
        lambda: cluster.node("a")["available"]["vram_mb"] <= 24576 - 20_000,
        REPORT_INTERVAL_S + 10,
        f"a's free VRAM never dropped: {cluster.node('a')}",
    )
    # medium (6,000 MB) goes to a label both a and b carry: now only b has the room.
    _mediums_run_on(cluster, "b")
    # big (12,000 MB) fits only a's card: it waits, neither failing nor spending an attempt.
    big = cluster.enqueue("big", ms=50)["id"]
    waiting = _waiting(cluster, big)
    assert waiting["attempts"] == 0, waiting
    assert "12000 MB of VRAM free" in waiting["waiting_reason"], waiting
    time.sleep(2 * REPORT_INTERVAL_S)
    assert cluster.task(big)["state"] == "waiting"
    assert cluster.ran_on(big) == []
    # The load ends: big runs on a, once.
    a.release(occupy)
    done = cluster.wait_task(big, within=REPORT_INTERVAL_S + 30)
    assert (done["state"], done["node"], done["attempts"]) == ("succeeded", "a", 1)
    assert cluster.ran_on(big, "done") == [("a", 1)]
    assert cluster.task(occupy, on=a)["state"] == "succeeded"


def test_node_whose_worker_does_not_answer_gets_no_tasks(cluster: Cluster) -> None:
    b = cluster.nodes["b"]
    b.pause()  # its Ray node runs on; its worker takes connections and answers nothing
    try:
        _until(
            lambda: not cluster.node("b").get("worker_up", False),
            REPORT_INTERVAL_S + 30,
            "the head never saw b's worker stop answering",
        )
        # medium goes to a or b: all to a, once each.
        _mediums_run_on(cluster, "a")
        # chat goes only to b (llm): it waits, naming why, its attempts untouched.
        chat = cluster.enqueue("chat", ms=50)["id"]
        waiting = _waiting(cluster, chat)
        assert waiting["attempts"] == 0, waiting
        assert "b: its Hydra worker does not answer" in waiting["waiting_reason"], waiting
    finally:
        b.resume()
    done = cluster.wait_task(chat, within=REPORT_INTERVAL_S + 30)
    assert (done["state"], done["node"], done["attempts"]) == ("succeeded", "b", 1)
    assert cluster.ran_on(chat) == [("b", 1)]


def test_node_lost_mid_task_runs_elsewhere_then_rejoins(cluster: Cluster) -> None:
    events = EventListener(cluster.head)
    try:
        _node_lost_and_back(cluster, events)
    finally:
        events.stop()


def _node_lost_and_back(cluster: Cluster, events: EventListener) -> None:
    task_id = cluster.enqueue("hold")["id"]
    lost = cluster.wait_started(task_id, 1)
    # While it runs, the queue shows where and how far (the node's progress comes back).
    deadline = time.monotonic() + 10
    while (running := cluster.task(task_id))["progress_message"] != "holding":
        assert time.monotonic() < deadline, running
        time.sleep(0.05)
    assert (running["state"], running["node"], running["progress"]) == ("running", lost, 10)
    other = ({"a", "b"} - {lost}).pop()
    cluster.nodes[lost].kill_host()
    killed_at = time.monotonic()
    assert cluster.wait_started(task_id, 2) == other
    rerun_s = time.monotonic() - killed_at
    cluster.nodes[other].release(task_id)
    task = cluster.wait_task(task_id)
    assert (task["state"], task["node"], task["attempts"]) == ("succeeded", other, 2)
    # One start on each node, one end: never more runs than the attempt budget (3).
    assert cluster.ran_on(task_id) == sorted([(lost, 1), (other, 2)])
    assert cluster.ran_on(task_id, "done") == [(other, 2)]
    assert rerun_s < 30, rerun_s
    cluster.wait_node(lost, alive=False)
    _, report = cluster.head.call("GET", "cluster")
    gone = next(node for node in report["nodes"] if node["name"] == lost)
    assert not gone["alive"]
    assert gone["last_seen"] is not None

    # The host comes back: its node joins again and is used again.
    cluster.nodes[lost].start()
    cluster.wait_node(lost)
    kind = {"a": "big", "b": "chat"}[lost]
    again = cluster.wait_task(cluster.enqueue(kind, ms=50)["id"])
    assert (again["state"], again["node"]) == ("succeeded", lost)
    # The event stream told of the loss and the return (Home Assistant raises a repair).
    assert [
        (event["data"]["event"], event["data"]["node"]["alive"])
        for event in events.stop()
        if event["type"] == "cluster" and event["data"]["node"]["name"] == lost
    ] == [("node_lost", False), ("node_joined", True)]


def test_node_whose_ray_ended_joins_again(cluster: Cluster) -> None:
    before = cluster.nodes_alive()["b"]["node_id"]
    os.killpg(cluster.nodes["b"].ray_pid(), signal.SIGKILL)  # its worker keeps running
    deadline = time.monotonic() + 60
    while cluster.nodes_alive().get("b", {}).get("node_id") in (None, before):
        assert time.monotonic() < deadline, "b never joined again"
        time.sleep(0.2)
    again = cluster.wait_task(cluster.enqueue("chat", ms=50)["id"])
    assert (again["state"], again["node"]) == ("succeeded", "b")


def test_head_killed_and_restarted_loses_nothing_runs_nothing_twice(cluster: Cluster) -> None:
    ids = [cluster.enqueue("small", ms=1500)["id"] for _ in range(6)]
    deadline = time.monotonic() + 60
    while not any(cluster.ran_on(task_id, "done") for task_id in ids):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    cluster.head.kill_worker()  # its Ray head keeps running, and is adopted at the restart
    time.sleep(2)
    cluster.head.start()
    tasks = [cluster.wait_task(task_id, within=120) for task_id in ids]
    assert [task["state"] for task in tasks] == ["succeeded"] * 6, tasks
    for task in tasks:
        done = cluster.ran_on(task["id"], "done")
        assert len(done) == 1, (task, done)
        assert done[0][0] == task["node"]
        assert task["attempts"] <= 2
