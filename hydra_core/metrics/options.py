"""The metrics options: whether ``/api/v1/metrics`` is served, and a token only for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..options import option

if TYPE_CHECKING:
    from ..worker.config import WorkerConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsOptions:
    """Prometheus metrics at /api/v1/metrics."""

    metrics: bool = option(
        True,
        help="serve Prometheus metrics at /api/v1/metrics (the worker's token, or metrics_token,"
        " as a bearer token)",
        addon=True,
    )
    metrics_token: str | None = option(
        None,
        help="a second bearer token (16+ characters) that reads /api/v1/metrics and nothing"
        " else, for Prometheus; the worker's token works there too",
        secret=True,
        addon=True,
    )

    def check(self, _config: WorkerConfig) -> None:
        """A short metrics token stops the worker, as a short worker token does."""
        from ..worker.config import MIN_TOKEN_LENGTH  # noqa: PLC0415 - config imports the parts

        if self.metrics_token is not None and len(self.metrics_token) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"The metrics token must be at least {MIN_TOKEN_LENGTH} characters long"
            )
