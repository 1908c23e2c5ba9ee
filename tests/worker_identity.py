"""Who the workers in the tests are, who asks them, and the token they take."""

from __future__ import annotations

from hydra_core.models import Actor, WorkerInfo

TOKEN = "test-token-0123456789abcdef"
INFO = WorkerInfo(worker_id="0f1e2d3c4b5a", name="gpu-box", version="0.1.0")
USER = Actor(type="user", id="u1", name="Ada")
