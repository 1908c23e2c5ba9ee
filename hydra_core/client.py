"""Typed client for the worker's control API; the only way Home Assistant talks to a worker.

``HydraClient`` holds the session, the token and what every worker answers (health, status,
the audit log, the event stream); each part's calls are in its folder (``containers/client.py``,
``power/client.py``, ...) and go through ``request`` and ``parse`` here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
import hashlib
from http import HTTPStatus
import ssl
from typing import Any, TypeVar

import aiohttp
from yarl import URL

from .models import (
    API_VERSION,
    EVENT_KEEPALIVE,
    KEEPALIVE_S,
    AuditEntry,
    WorkerEvent,
    WorkerInfo,
    WorkerStatus,
)
from .wire import load

_T = TypeVar("_T")

DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=10)
# Two and a half keepalive periods without a message: the stream is dead.
STALE_STREAM_S = 2.5 * KEEPALIVE_S


class HydraError(Exception):
    """Base class of every client error."""


class HydraConnectionError(HydraError):
    """The worker could not be reached, or answered with something that is not its API."""


class HydraCertificateError(HydraConnectionError):
    """The worker's certificate is not one to trust: no trusted CA signed it, or it is not the
    one pinned. ``fingerprint``: the SHA-256 of the one it presented, where known."""

    def __init__(self, message: str, fingerprint: str | None = None) -> None:
        super().__init__(message)
        self.fingerprint = fingerprint


class HydraAuthError(HydraError):
    """The worker refused the token."""


class HydraApiError(HydraError):
    """The worker answered with an error of its API."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} ({code}, HTTP {status})")
        self.status = status
        self.code = code
        self.message = message


def certificate_fingerprint(der: bytes) -> str:
    """A certificate's SHA-256 as ``openssl x509 -fingerprint -sha256`` prints it (AB:CD:...)."""
    return _digest_text(hashlib.sha256(der).digest())


def pem_certificate_fingerprint(pem: str) -> str:
    """The fingerprint of the first certificate in a PEM file: the one a server presents, its
    chain after it. ValueError if there is none."""
    footer = "-----END CERTIFICATE-----"
    first, found, _chain = pem.partition(footer)
    if not found:
        raise ValueError("no PEM certificate")
    return certificate_fingerprint(ssl.PEM_cert_to_DER_cert(first.strip() + "\n" + footer))


def _digest_text(digest: bytes) -> str:
    return ":".join(f"{byte:02X}" for byte in digest)


class HydraClient:
    """Talks to one worker. The session is the caller's (Home Assistant's shared one).

    An https:// worker's certificate is verified against the session's trusted CAs, unless
    ``fingerprint`` pins it: then that certificate (SHA-256, as ``certificate_fingerprint``
    writes it) is accepted and no other, whoever signed it. Every call, the event stream's
    WebSocket included, checks it the same way.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        token: str,
        *,
        fingerprint: str | None = None,
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
    ) -> None:
        self._session = session
        self._base = URL(url.rstrip("/")) / "api" / API_VERSION
        self._headers = {"Authorization": f"Bearer {token}"}
        self._ssl: aiohttp.Fingerprint | bool = (
            aiohttp.Fingerprint(bytes.fromhex(fingerprint.replace(":", "")))
            if fingerprint
            else True
        )
        self._timeout = timeout
        self._ws_timeout = aiohttp.ClientWSTimeout(ws_close=timeout.total)

    @property
    def url(self) -> str:
        """The worker's base URL."""
        return str(self._base.parent.parent)

    async def async_certificate_fingerprint(self) -> str:
        """The fingerprint of the certificate the worker presents, read without verifying it,
        for a person to compare before pinning it. Nothing is sent over that connection."""
        if self._base.scheme != "https":
            raise HydraConnectionError(f"{self.url} is not an https:// address")
        unverified = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE
        try:
            async with asyncio.timeout(self._timeout.total):
                _reader, writer = await asyncio.open_connection(
                    self._base.host, self._base.port, ssl=unverified
                )
        except (TimeoutError, OSError) as err:
            raise self._unreachable(err, self._timeout) from err
        try:
            der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        return certificate_fingerprint(der)

    async def async_health(self) -> WorkerInfo:
        """Who the worker is (no token needed)."""
        return self.parse(WorkerInfo, await self.request("GET", "health", authenticated=False))

    async def async_status(self) -> WorkerStatus:
        """The worker's host and GPUs."""
        return await self.call(WorkerStatus, "GET", "status")

    async def async_audit(
        self,
        *,
        container: str | None = None,
        action: str | None = None,
        actor_type: str | None = None,
        result: str | None = None,
        since: float | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """The audit log, newest first, filtered."""
        query = {
            "container": container,
            "action": action,
            "actor": actor_type,
            "result": result,
            "since": None if since is None else f"{since:f}",
            "limit": str(limit),
        }
        body = await self.request(
            "GET", "audit", params={key: value for key, value in query.items() if value}
        )
        return [self.parse(AuditEntry, entry) for entry in body["entries"]]

    async def async_events(self) -> AsyncIterator[WorkerEvent]:
        """Follow the worker's event stream until it closes (then HydraConnectionError).

        The worker sends a keepalive when idle; a stream silent for much longer is dead.
        """
        try:
            async with self._session.ws_connect(
                self._base / "events",
                headers=self._headers,
                timeout=self._ws_timeout,
                ssl=self._ssl,
            ) as socket:
                while True:
                    message = await socket.receive(timeout=STALE_STREAM_S)
                    if message.type is not aiohttp.WSMsgType.TEXT:
                        break
                    event = self.parse(WorkerEvent, message.json())
                    if event.type != EVENT_KEEPALIVE:
                        yield event
        except aiohttp.WSServerHandshakeError as err:
            if err.status == 401:
                raise HydraAuthError("The worker refused the token") from err
            raise self._unreachable(err) from err
        except TimeoutError as err:
            raise HydraConnectionError(
                f"{self.url} sent nothing for {STALE_STREAM_S:g} s on its event stream"
            ) from err
        except (aiohttp.ClientError, ValueError) as err:
            raise self._unreachable(err) from err
        raise HydraConnectionError(f"{self.url} closed the event stream")

    async def request_bytes(self, path: str) -> tuple[bytes, str]:
        """GET raw bytes (an image); errors are the API's JSON ones."""
        try:
            async with self._session.get(
                self._base / path, headers=self._headers, timeout=self._timeout, ssl=self._ssl
            ) as response:
                if response.status < 400:
                    return await response.read(), response.content_type
                try:
                    body = await response.json()
                except (aiohttp.ContentTypeError, ValueError):
                    body = {}
        except (TimeoutError, aiohttp.ClientError) as err:
            raise self._unreachable(err, self._timeout) from err
        raise _refused(response.status, body)

    async def call(
        self,
        model: type[_T],
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        client_timeout: aiohttp.ClientTimeout | None = None,
    ) -> _T:
        """One call of the API whose answer is one ``model``."""
        body = await self.request(
            method, path, params=params, json=json, client_timeout=client_timeout
        )
        return self.parse(model, body)

    def parse(self, model: type[_T], body: object) -> _T:
        """The worker's JSON as ``model``; data this client cannot read is a connection error."""
        try:
            return load(model, body)
        except ValueError as err:  # pydantic's ValidationError is one
            raise HydraConnectionError(
                f"{self.url} answered with data this client does not understand: {err!r}"
            ) from err

    async def request(
        self,
        method: str,
        path: str,
        *,
        authenticated: bool = True,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        client_timeout: aiohttp.ClientTimeout | None = None,
    ) -> dict[str, Any]:
        """One call of the API: its JSON object, or the API's error as an exception."""
        timeout = client_timeout or self._timeout
        try:
            async with self._session.request(
                method,
                self._base / path,
                headers=self._headers if authenticated else None,
                params=params,
                json=json,
                timeout=timeout,
                ssl=self._ssl,
            ) as response:
                if response.status == HTTPStatus.NO_CONTENT:
                    # Done, with nothing to tell (a DELETE).
                    return {}
                if response.content_type != "application/json":
                    raise HydraConnectionError(
                        f"{self.url} answered HTTP {response.status} with "
                        f"{response.content_type or 'no content type'}; is it a Hydra worker?"
                    )
                body = await response.json()
        except (TimeoutError, aiohttp.ClientError, ValueError) as err:
            raise self._unreachable(err, timeout) from err
        if not isinstance(body, dict):
            raise HydraConnectionError(f"{self.url} answered with unexpected JSON")
        if response.status >= 400:
            raise _refused(response.status, body)
        return body

    def _unreachable(
        self, err: Exception, timeout: aiohttp.ClientTimeout | None = None
    ) -> HydraConnectionError:
        """A failure to reach the worker, in words that name it but never carry the request
        (whose headers hold the token)."""
        if isinstance(err, TimeoutError) and timeout is not None:
            return HydraConnectionError(f"{self.url} did not answer within {timeout.total:g} s")
        if isinstance(err, aiohttp.ServerFingerprintMismatch):
            presented = _digest_text(err.got)
            return HydraCertificateError(
                f"{self.url} presented a certificate that changed: SHA-256 {presented}, not the"
                f" pinned {_digest_text(err.expected)}",
                presented,
            )
        if isinstance(err, aiohttp.ClientConnectorCertificateError):
            reason = getattr(err.certificate_error, "verify_message", None) or str(
                err.certificate_error
            )
            return HydraCertificateError(
                f"{self.url} presented a certificate that is not trusted: {reason}"
            )
        return HydraConnectionError(f"{self.url}: {type(err).__name__}: {err}")


def _refused(status: int, body: dict[str, Any]) -> HydraError:
    """The API's error answer as an exception."""
    if status == 401:
        return HydraAuthError(body.get("message", "The worker refused the token"))
    return HydraApiError(status, body.get("code", "unknown"), body.get("message", ""))


class PartClient:
    """Base of a part's calls (``hydra_core/<part>/client.py``): they go through a
    ``HydraClient``, whose errors they raise, so one session and token serve every part."""

    def __init__(self, client: HydraClient) -> None:
        self._client = client
