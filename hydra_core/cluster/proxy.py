"""What runs inside Ray: the thin task placed on a node, and the head's box of results.

Only the standard library here: Ray pickles this module by value, so a node runs it whatever
``hydra_core`` its Python has (or has none).

``run_on_node`` asks the Hydra worker of the node it landed on (found through the node file
its ``ray start`` names in the environment) to run one attempt of a task with that worker's
own handler, and passes on what the worker streams back (the node, progress, the answer) as a
Ray streaming generator; if this Ray task dies (its node lost, the head's driver
gone), the connection drops and the worker cancels the handler. Before answering, it leaves
the answer in the ``ResultsBox``, a detached actor on the head's Ray node, so a head worker
killed and restarted finds what finished while it was gone.

``report_gpus`` is the head's look at one node, every ``cluster_report_interval``: pinned to
that node, it asks the node's worker for its GPUs (``GET /gpus``, the ``GpuReport``), so the
head places by the VRAM each node has free now, and skips a node whose worker does not answer.
"""

from __future__ import annotations

from collections.abc import Iterator
import http.client
import json
import os
import ssl
from typing import Any
from urllib.parse import urlsplit

NODE_FILE_ENV = "HYDRA_CLUSTER_NODE_FILE"
BOX_NAME = "hydra_results"
NAMESPACE = "hydra"
# Answers the box keeps at most: far more than run at once, so a head away for a while finds
# those it needs, yet a bound on the memory of a head that never stops.
BOX_SIZE = 10_000
# The longest one attempt may take on a node (a ComfyUI graph, a long generation).
_RUN_TIMEOUT_S = 24 * 3600.0


class NodeGoneError(ConnectionError):
    """The node's Hydra worker did not answer: to the head, the node is lost."""


class NodeUnreachableError(NodeGoneError):
    """The node's Hydra worker could not be reached: the attempt never began."""


class ResultsBox:
    """Answers of finished attempts by task id, until the head has taken them."""

    def __init__(self) -> None:
        self._answers: dict[int, tuple[int, dict[str, Any]]] = {}

    def put(self, task_id: int, attempt: int, answer: dict[str, Any]) -> None:
        """Keep an attempt's answer; the oldest go once there are too many (the head takes
        only those of the tasks it was running when it stopped)."""
        self._answers.pop(task_id, None)
        self._answers[task_id] = (attempt, answer)
        while len(self._answers) > BOX_SIZE:
            del self._answers[next(iter(self._answers))]

    def take(self, task_ids: list[int]) -> dict[int, tuple[int, dict[str, Any]]]:
        """The answers kept for these tasks, forgotten once taken."""
        return {
            task_id: self._answers.pop(task_id) for task_id in task_ids if task_id in self._answers
        }


def _node() -> dict[str, Any]:
    """This host's worker: its name, API URL and token (the node file)."""
    with open(os.environ[NODE_FILE_ENV], encoding="utf-8") as file:
        node: dict[str, Any] = json.load(file)
    return node


def _connection(node: dict[str, Any], timeout: float) -> http.client.HTTPConnection:
    """A connection to this host's worker on the loopback (NodeUnreachableError if none)."""
    url = urlsplit(node["api"])
    if url.scheme == "https":
        # This host's own worker on the loopback, with whatever certificate it serves.
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            url.hostname or "127.0.0.1",
            url.port,
            timeout=timeout,
            context=ssl._create_unverified_context(),  # noqa: S323
        )
    else:
        connection = http.client.HTTPConnection(
            url.hostname or "127.0.0.1", url.port, timeout=timeout
        )
    try:
        connection.connect()
    except OSError as err:
        connection.close()
        raise NodeUnreachableError(
            f"the Hydra worker of node {node['name']} cannot be reached: {err}"
        ) from err
    return connection


def _headers(node: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {node['token']}", "Content-Type": "application/json"}


def report_gpus(timeout: float) -> dict[str, Any]:
    """This node's GPUs as its worker reads them: ``{"name", "report": GpuReport}``, or
    ``{"name", "error"}`` when the worker does not answer within ``timeout`` seconds."""
    node = _node()
    try:
        connection = _connection(node, timeout)
        try:
            connection.request(
                "GET", f"{urlsplit(node['api']).path.rstrip('/')}/gpus", headers=_headers(node)
            )
            response = connection.getresponse()
            body = json.loads(response.read() or b"{}")
        finally:
            connection.close()
    except (OSError, http.client.HTTPException, ValueError) as err:
        return {"name": node["name"], "error": f"{type(err).__name__}: {err}"}
    if response.status != 200:
        return {"name": node["name"], "error": body.get("message") or f"HTTP {response.status}"}
    return {"name": node["name"], "report": body}


def run_on_node(request: dict[str, Any], box: Any) -> Iterator[dict[str, Any]]:
    """Run one attempt with this node's Hydra worker: yields ``{"node"}`` once it started,
    ``{"progress", "message"}`` as it reports, and last ``{"answer": NodeRunResult}``."""
    node = _node()
    url = urlsplit(node["api"])
    answer: dict[str, Any] | None = None
    connection = _connection(node, _RUN_TIMEOUT_S)
    try:
        connection.request(
            "POST",
            f"{url.path.rstrip('/')}/cluster/run",
            body=json.dumps(request),
            headers=_headers(node),
        )
        response = connection.getresponse()
        if response.status != 200:
            body = json.loads(response.read() or b"{}")
            message = body.get("message") or f"HTTP {response.status}"
            answer = {
                "node": node["name"],
                "error": f"The node's worker refused: {message}",
                "permanent": True,
            }
        else:
            # One JSON object a line: the node, progress reports, then the answer.
            for line in response:
                item = json.loads(line)
                if "answer" in item:
                    answer = item["answer"]
                    break
                yield item
    except (OSError, http.client.HTTPException, ValueError) as err:
        # The host's worker is gone (the host lost, or its worker killed): the node is lost.
        raise NodeGoneError(
            f"the Hydra worker of node {node['name']} did not answer: {err}"
        ) from err
    finally:
        connection.close()
    if answer is None:
        raise NodeGoneError(f"the Hydra worker of node {node['name']} ended without an answer")
    if box is not None:
        import ray  # noqa: PLC0415 - only inside Ray, where it is installed

        ray.get(box.put.remote(request["task_id"], request["attempt"], answer))
    yield {"answer": answer}
