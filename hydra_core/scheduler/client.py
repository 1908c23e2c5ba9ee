"""The task queue part's calls: tasks, the scheduler and the night report."""

from __future__ import annotations

from typing import Any

from ..client import PartClient
from ..models import Actor
from ..wire import dump
from .models import NightReport, SchedulerState, Task


class TasksClient(PartClient):
    """Tasks, the scheduler and the night report, through a ``HydraClient``."""

    async def async_queue_task(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        actor: Actor,
        priority: int | None = None,
        max_attempts: int | None = None,
    ) -> Task:
        """Queue a task; HydraApiError unknown_kind, invalid_payload or invalid_priority."""
        body: dict[str, Any] = {"kind": kind, "payload": payload, "actor": dump(actor)}
        if priority is not None:
            body["priority"] = priority
        if max_attempts is not None:
            body["max_attempts"] = max_attempts
        return await self._client.call(Task, "POST", "tasks", json=body)

    async def async_tasks(
        self, *, state: str | None = None, kind: str | None = None, limit: int = 100
    ) -> list[Task]:
        """Tasks, newest first."""
        query = {"state": state, "kind": kind, "limit": str(limit)}
        body = await self._client.request(
            "GET", "tasks", params={key: value for key, value in query.items() if value}
        )
        return [self._client.parse(Task, task) for task in body["tasks"]]

    async def async_task(self, task_id: int) -> Task:
        """One task; HydraApiError ``task_not_found``."""
        return await self._client.call(Task, "GET", f"tasks/{task_id}")

    async def async_cancel_task(self, task_id: int) -> Task:
        """Cancel a task; HydraApiError ``task_finished`` if it already ended."""
        return await self._client.call(Task, "POST", f"tasks/{task_id}/cancel")

    async def async_retry_task(self, task_id: int) -> Task:
        """Queue a failed or cancelled task again; HydraApiError ``task_not_retryable``."""
        return await self._client.call(Task, "POST", f"tasks/{task_id}/retry")

    async def async_scheduler(self) -> SchedulerState:
        """The scheduler's settings, today's task counts and the accepted kinds."""
        return await self._client.call(SchedulerState, "GET", "scheduler")

    async def async_update_scheduler(self, **changes: Any) -> SchedulerState:
        """Change thresholds, max_concurrent or paused; HydraApiError invalid_setting."""
        return await self._client.call(SchedulerState, "PUT", "scheduler", json=changes)

    async def async_report(self, since: float) -> NightReport:
        """What happened on the worker since ``since`` (Unix time): tasks, GPUs, containers."""
        return await self._client.call(NightReport, "GET", "report", params={"since": f"{since:f}"})
