"""What runs inside Ray: the thin task placed on a node, and the head's box of results.

Only the standard library here: Ray pickles this module by value, so a node runs it whatever
``hydra_core`` its Python has (or has none).

``run_on_node`` asks the Hydra worker of the node it landed on (found through the node file
its ``ray start`` names in the environment) to run one attempt of a task with that worker's
own handler, and waits for the answer; if this Ray task dies (its node lost, the head's driver
gone), the connection drops and the worker cancels the handler. Before answering, it leaves
the answer in the ``ResultsBox``, a detached actor on the head's Ray node, so a head worker
killed and restarted finds what finished while it was gone.
"""

from __future__ import annotations

import http.client
import json
import os
from typing import Any
from urllib.parse import urlsplit

NODE_FILE_ENV = "HYDRA_CLUSTER_NODE_FILE"
BOX_NAME = "hydra_results"
NAMESPACE = "hydra"
# The longest one attempt may take on a node (a ComfyUI graph, a long generation).
_RUN_TIMEOUT_S = 24 * 3600.0


class NodeGoneError(ConnectionError):
    """The node's Hydra worker did not answer: to the head, the node is lost."""


class ResultsBox:
    """Answers of finished attempts by task id, until the head has taken them."""

    def __init__(self) -> None:
        self._answers: dict[int, tuple[int, dict[str, Any]]] = {}

    def put(self, task_id: int, attempt: int, answer: dict[str, Any]) -> None:
        """Keep an attempt's answer."""
        self._answers[task_id] = (attempt, answer)

    def take(self, task_ids: list[int]) -> dict[int, tuple[int, dict[str, Any]]]:
        """The answers kept for these tasks, forgotten once taken."""
        return {
            task_id: self._answers.pop(task_id) for task_id in task_ids if task_id in self._answers
        }


def run_on_node(request: dict[str, Any], box: Any) -> dict[str, Any]:
    """Run one attempt with this node's Hydra worker; its answer (``NodeRunResult``)."""
    with open(os.environ[NODE_FILE_ENV], encoding="utf-8") as file:
        node = json.load(file)
    url = urlsplit(node["api"])
    connection = http.client.HTTPConnection(
        url.hostname or "127.0.0.1", url.port, timeout=_RUN_TIMEOUT_S
    )
    try:
        connection.request(
            "POST",
            f"{url.path.rstrip('/')}/cluster/run",
            body=json.dumps(request),
            headers={
                "Authorization": f"Bearer {node['token']}",
                "Content-Type": "application/json",
            },
        )
        response = connection.getresponse()
        body = json.loads(response.read() or b"{}")
    except (OSError, http.client.HTTPException) as err:
        # The host's worker is gone (the host lost, or its worker killed): the node is lost.
        raise NodeGoneError(
            f"the Hydra worker of node {node['name']} did not answer: {err}"
        ) from err
    finally:
        connection.close()
    if response.status != 200:
        message = body.get("message") or f"HTTP {response.status}"
        answer = {
            "node": node["name"],
            "error": f"The node's worker refused: {message}",
            "permanent": True,
        }
    else:
        answer = body
    if box is not None:
        import ray  # noqa: PLC0415 - only inside Ray, where it is installed

        ray.get(box.put.remote(request["task_id"], request["attempt"], answer))
    return answer
