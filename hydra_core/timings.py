"""How long a part's stages take, for whoever listens (the metrics part's histograms).

A part that times its work owns a ``StageTimings`` and records each stage as it ends; nothing is
kept here, so a worker without the metrics part pays one empty loop per stage.
"""

from __future__ import annotations

from collections.abc import Callable

StageListener = Callable[[str, float], None]


class StageTimings:
    """Stage durations in seconds, handed to every listener as they are recorded."""

    def __init__(self) -> None:
        self._listeners: list[StageListener] = []

    def listen(self, listener: StageListener) -> None:
        """Call ``listener(stage, seconds)`` for every stage recorded from now on."""
        self._listeners.append(listener)

    def record(self, stage: str, seconds: float) -> None:
        """A stage took ``seconds``."""
        for listener in self._listeners:
            listener(stage, seconds)
