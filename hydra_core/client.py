"""Typed client for the worker's control API; the only way Home Assistant talks to a worker."""

from __future__ import annotations

from typing import Any, TypeVar

import aiohttp
from yarl import URL

from .models import API_VERSION, WorkerInfo, WorkerStatus

_ModelT = TypeVar("_ModelT", WorkerInfo, WorkerStatus)

DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=10)


class HydraError(Exception):
    """Base class of every client error."""


class HydraConnectionError(HydraError):
    """The worker could not be reached, or answered with something that is not its API."""


class HydraAuthError(HydraError):
    """The worker refused the token."""


class HydraApiError(HydraError):
    """The worker answered with an error of its API."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} ({code}, HTTP {status})")
        self.status = status
        self.code = code
        self.message = message


class HydraClient:
    """Talks to one worker. The session is the caller's (Home Assistant's shared one)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        token: str,
        *,
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
    ) -> None:
        self._session = session
        self._base = URL(url.rstrip("/")) / "api" / API_VERSION
        self._headers = {"Authorization": f"Bearer {token}"}
        self._timeout = timeout

    @property
    def url(self) -> str:
        """The worker's base URL."""
        return str(self._base.parent.parent)

    async def async_health(self) -> WorkerInfo:
        """Who the worker is (no token needed)."""
        return self._parse(WorkerInfo, await self._get("health", authenticated=False))

    async def async_status(self) -> WorkerStatus:
        """The worker's host and GPUs."""
        return self._parse(WorkerStatus, await self._get("status"))

    def _parse(self, model: type[_ModelT], body: dict[str, Any]) -> _ModelT:
        try:
            return model.from_dict(body)
        except (KeyError, TypeError, ValueError) as err:
            raise HydraConnectionError(
                f"{self.url} answered with data this client does not understand: {err!r}"
            ) from err

    async def _get(self, path: str, *, authenticated: bool = True) -> dict[str, Any]:
        try:
            async with self._session.get(
                self._base / path,
                headers=self._headers if authenticated else None,
                timeout=self._timeout,
            ) as response:
                if response.content_type != "application/json":
                    raise HydraConnectionError(
                        f"{self.url} answered HTTP {response.status} with "
                        f"{response.content_type or 'no content type'}; is it a Hydra worker?"
                    )
                body = await response.json()
        except TimeoutError as err:
            raise HydraConnectionError(
                f"{self.url} did not answer within {self._timeout.total:g} s"
            ) from err
        except (aiohttp.ClientError, ValueError) as err:
            raise HydraConnectionError(f"{self.url}: {err}") from err
        if not isinstance(body, dict):
            raise HydraConnectionError(f"{self.url} answered with unexpected JSON")
        if response.status == 401:
            raise HydraAuthError(body.get("message", "The worker refused the token"))
        if response.status >= 400:
            raise HydraApiError(
                response.status, body.get("code", "unknown"), body.get("message", "")
            )
        return body
