"""A task in words: what the to-do list and the notifications show of it."""

from __future__ import annotations

from hydra_core.creative.models import CHAPTER_TASK_KINDS
from hydra_core.scheduler.models import Task


def of_chapter(task: Task) -> bool:
    """Whether the task is a chapter's or one of the chapter's images, voice lines or package:
    the chapter's events, notifications and the briefing's Creative section speak for it."""
    return task.kind in CHAPTER_TASK_KINDS


def task_summary(task: Task) -> str:
    """A task in a few words: its kind and payload."""
    if not task.payload:
        return task.kind
    fields = ", ".join(f"{key}={value}" for key, value in task.payload.items())
    return f"{task.kind} ({fields})"


def task_description(task: Task) -> str:
    """Where a task stands: its state, the cluster node that runs or ran it, its progress, why
    it waits, or its error."""
    lines = [f"#{task.id}: {task.state}, attempt {task.attempts} of {task.max_attempts}"]
    if task.node:
        lines.append(f"Node: {task.node}")
    if task.state == "running":
        progress = f"{task.progress:.0f} %"
        if task.progress_message:
            progress += f": {task.progress_message}"
        lines.append(progress)
    if task.waiting_reason:
        lines.append(task.waiting_reason)
    if task.error:
        lines.append(f"Error: {task.error}")
    return "\n".join(lines)
