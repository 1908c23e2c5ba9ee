"""Typed client for the worker's control API; the only way Home Assistant talks to a worker."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar

import aiohttp
from yarl import URL

from .containers.models import ContainerReport, HealingSettings
from .models import (
    API_VERSION,
    EVENT_KEEPALIVE,
    KEEPALIVE_S,
    Actor,
    AuditEntry,
    WorkerEvent,
    WorkerInfo,
    WorkerStatus,
)
from .power.models import PowerStatus
from .quality.models import Asset, Character, ImageScore, QualityStatus
from .scheduler.models import NightReport, SchedulerState, Task
from .voice.models import VoiceStatus
from .wire import dump, load

_ModelT = TypeVar(
    "_ModelT",
    WorkerInfo,
    WorkerStatus,
    ContainerReport,
    AuditEntry,
    HealingSettings,
    WorkerEvent,
    Task,
    SchedulerState,
    VoiceStatus,
    PowerStatus,
    NightReport,
    QualityStatus,
    ImageScore,
    Character,
    Asset,
)

DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=10)
# Scoring may have to load (or download) the CLIP model first.
SCORING_TIMEOUT = aiohttp.ClientTimeout(total=300)
ACTION_TIMEOUT = aiohttp.ClientTimeout(total=60)
# Two and a half keepalive periods without a message: the stream is dead.
STALE_STREAM_S = 2.5 * KEEPALIVE_S


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
        self._ws_timeout = aiohttp.ClientWSTimeout(ws_close=timeout.total)

    @property
    def url(self) -> str:
        """The worker's base URL."""
        return str(self._base.parent.parent)

    async def async_health(self) -> WorkerInfo:
        """Who the worker is (no token needed)."""
        return self._parse(WorkerInfo, await self._request("GET", "health", authenticated=False))

    async def async_status(self) -> WorkerStatus:
        """The worker's host and GPUs."""
        return self._parse(WorkerStatus, await self._request("GET", "status"))

    async def async_containers(self) -> ContainerReport:
        """Every container of the worker's engine, and the self-healing settings."""
        return self._parse(ContainerReport, await self._request("GET", "containers"))

    async def async_container_action(
        self, name: str, action: str, actor: Actor, reason: str | None = None
    ) -> AuditEntry:
        """Start, stop or restart a container; the audit entry says what happened.

        Raises ``HydraApiError`` with code ``container_protected`` (the container is protected),
        ``container_not_found`` or ``engine_error``; the attempt is audited either way.
        """
        body = await self._request(
            "POST",
            f"containers/{name}/{action}",
            json={"actor": dump(actor), "reason": reason},
            # A stop waits up to the engine's grace period (10 s) before it kills.
            client_timeout=ACTION_TIMEOUT,
        )
        return self._parse(AuditEntry, body["audit"])

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
        body = await self._request(
            "GET", "audit", params={key: value for key, value in query.items() if value}
        )
        return [self._parse(AuditEntry, entry) for entry in body["entries"]]

    async def async_set_healing(self, *, enabled: bool) -> HealingSettings:
        """Switch self-healing on or off (kept across worker restarts)."""
        body = await self._request("PUT", "healing", json={"enabled": enabled})
        return self._parse(HealingSettings, body)

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
        return self._parse(Task, await self._request("POST", "tasks", json=body))

    async def async_tasks(
        self, *, state: str | None = None, kind: str | None = None, limit: int = 100
    ) -> list[Task]:
        """Tasks, newest first."""
        query = {"state": state, "kind": kind, "limit": str(limit)}
        body = await self._request(
            "GET", "tasks", params={key: value for key, value in query.items() if value}
        )
        return [self._parse(Task, task) for task in body["tasks"]]

    async def async_task(self, task_id: int) -> Task:
        """One task; HydraApiError ``task_not_found``."""
        return self._parse(Task, await self._request("GET", f"tasks/{task_id}"))

    async def async_cancel_task(self, task_id: int) -> Task:
        """Cancel a task; HydraApiError ``task_finished`` if it already ended."""
        return self._parse(Task, await self._request("POST", f"tasks/{task_id}/cancel"))

    async def async_retry_task(self, task_id: int) -> Task:
        """Queue a failed or cancelled task again; HydraApiError ``task_not_retryable``."""
        return self._parse(Task, await self._request("POST", f"tasks/{task_id}/retry"))

    async def async_scheduler(self) -> SchedulerState:
        """The scheduler's settings, today's task counts and the accepted kinds."""
        return self._parse(SchedulerState, await self._request("GET", "scheduler"))

    async def async_update_scheduler(self, **changes: Any) -> SchedulerState:
        """Change thresholds, max_concurrent or paused; HydraApiError invalid_setting."""
        return self._parse(SchedulerState, await self._request("PUT", "scheduler", json=changes))

    async def async_voice(self) -> VoiceStatus:
        """The voice services: the Wyoming port, what is offered (or why not), the settings."""
        return self._parse(VoiceStatus, await self._request("GET", "voice"))

    async def async_update_voice(self, **changes: Any) -> VoiceStatus:
        """Change wake_threshold, stt_model, tts_voice, ...; HydraApiError invalid_setting."""
        return self._parse(VoiceStatus, await self._request("PUT", "voice", json=changes))

    async def async_power(self) -> PowerStatus:
        """Every GPU's power profile, target and enforced limit, and what the profiles mean."""
        return self._parse(PowerStatus, await self._request("GET", "power"))

    async def async_set_power(
        self,
        *,
        actor: Actor,
        profile: str | None = None,
        limit_w: float | None = None,
        gpus: list[int] | None = None,
    ) -> PowerStatus:
        """Set a profile (eco, balanced, full) or a limit in watts on some GPUs (default: all).

        HydraApiError ``invalid_profile``, ``power_limit_out_of_range``, ``gpu_not_found``,
        ``power_not_permitted`` (the worker may not change limits: not root / no SYS_ADMIN),
        ``power_unavailable`` (no NVML or no GPU).
        """
        body: dict[str, Any] = {"actor": dump(actor)}
        if profile is not None:
            body["profile"] = profile
        if limit_w is not None:
            body["limit_w"] = limit_w
        if gpus is not None:
            body["gpus"] = gpus
        return self._parse(PowerStatus, await self._request("PUT", "power", json=body))

    async def async_report(self, since: float) -> NightReport:
        """What happened on the worker since ``since`` (Unix time): tasks, GPUs, containers."""
        body = await self._request("GET", "report", params={"since": f"{since:f}"})
        return self._parse(NightReport, body)

    async def async_quality(self) -> QualityStatus:
        """Whether scoring can run, the model, what waits for review, what was learnt."""
        return self._parse(QualityStatus, await self._request("GET", "quality"))

    async def async_score(
        self,
        images: Sequence[bytes],
        *,
        prompt: str | None = None,
        character: str | None = None,
        style_prompt: str | None = None,
        names: Sequence[str] | None = None,
    ) -> list[ImageScore]:
        """Score images (PNG, JPEG or WebP) without keeping them; ranked best first.

        HydraApiError ``invalid_image``, ``unsupported_format``, ``image_too_large``,
        ``character_not_found``, ``quality_unavailable``.
        """
        named: Sequence[str | None] = names or [None] * len(images)
        body: dict[str, Any] = {
            "images": [
                {"data": base64.b64encode(image).decode(), "name": name}
                for image, name in zip(images, named, strict=True)
            ]
        }
        for key, value in (
            ("prompt", prompt),
            ("character", character),
            ("style_prompt", style_prompt),
        ):
            if value is not None:
                body[key] = value
        answer = await self._request(
            "POST", "quality/score", json=body, client_timeout=SCORING_TIMEOUT
        )
        return [self._parse(ImageScore, score) for score in answer["scores"]]

    async def async_characters(self) -> list[Character]:
        """Every character of the registry."""
        body = await self._request("GET", "characters")
        return [self._parse(Character, item) for item in body["characters"]]

    async def async_submit_asset(
        self,
        image: bytes,
        *,
        prompt: str | None = None,
        character: str | None = None,
        name: str | None = None,
    ) -> Asset:
        """Keep and score a generated image: auto-accepted at or above its character's
        threshold, else pending review."""
        body: dict[str, Any] = {"data": base64.b64encode(image).decode()}
        for key, value in (("prompt", prompt), ("character", character), ("name", name)):
            if value is not None:
                body[key] = value
        answer = await self._request("POST", "assets", json=body, client_timeout=SCORING_TIMEOUT)
        return self._parse(Asset, answer)

    async def async_assets(self, *, state: str | None = None, limit: int = 100) -> list[Asset]:
        """Assets, oldest pending first for ``state=pending``, else newest first."""
        query = {"state": state, "limit": str(limit)}
        body = await self._request(
            "GET", "assets", params={key: value for key, value in query.items() if value}
        )
        return [self._parse(Asset, item) for item in body["assets"]]

    async def async_asset_image(self, asset_id: int) -> tuple[bytes, str]:
        """An asset's image bytes and content type."""
        return await self._request_bytes(f"assets/{asset_id}/image")

    async def async_review_asset(
        self, asset_id: int, decision: str, *, actor: Actor, reason: str | None = None
    ) -> Asset:
        """Accept or reject an asset; HydraApiError ``asset_not_found``, ``invalid_decision``."""
        body: dict[str, Any] = {"decision": decision, "actor": dump(actor)}
        if reason:
            body["reason"] = reason
        return self._parse(
            Asset, await self._request("POST", f"assets/{asset_id}/review", json=body)
        )

    async def async_events(self) -> AsyncIterator[WorkerEvent]:
        """Follow the worker's event stream until it closes (then HydraConnectionError).

        The worker sends a keepalive when idle; a stream silent for much longer is dead.
        """
        try:
            async with self._session.ws_connect(
                self._base / "events", headers=self._headers, timeout=self._ws_timeout
            ) as socket:
                while True:
                    message = await socket.receive(timeout=STALE_STREAM_S)
                    if message.type is not aiohttp.WSMsgType.TEXT:
                        break
                    event = self._parse(WorkerEvent, message.json())
                    if event.type != EVENT_KEEPALIVE:
                        yield event
        except aiohttp.WSServerHandshakeError as err:
            if err.status == 401:
                raise HydraAuthError("The worker refused the token") from err
            raise HydraConnectionError(f"{self.url}: {err}") from err
        except TimeoutError as err:
            raise HydraConnectionError(
                f"{self.url} sent nothing for {STALE_STREAM_S:g} s on its event stream"
            ) from err
        except (aiohttp.ClientError, ValueError) as err:
            raise HydraConnectionError(f"{self.url}: {err!r}") from err
        raise HydraConnectionError(f"{self.url} closed the event stream")

    async def _request_bytes(self, path: str) -> tuple[bytes, str]:
        """GET raw bytes (an image); errors are the API's JSON ones."""
        try:
            async with self._session.get(
                self._base / path, headers=self._headers, timeout=self._timeout
            ) as response:
                if response.status < 400:
                    return await response.read(), response.content_type
                try:
                    body = await response.json()
                except (aiohttp.ContentTypeError, ValueError):
                    body = {}
        except TimeoutError as err:
            raise HydraConnectionError(
                f"{self.url} did not answer within {self._timeout.total:g} s"
            ) from err
        except aiohttp.ClientError as err:
            raise HydraConnectionError(f"{self.url}: {err}") from err
        if response.status == 401:
            raise HydraAuthError(body.get("message", "The worker refused the token"))
        raise HydraApiError(response.status, body.get("code", "unknown"), body.get("message", ""))

    def _parse(self, model: type[_ModelT], body: dict[str, Any]) -> _ModelT:
        try:
            return load(model, body)
        except ValueError as err:  # pydantic's ValidationError is one
            raise HydraConnectionError(
                f"{self.url} answered with data this client does not understand: {err!r}"
            ) from err

    async def _request(
        self,
        method: str,
        path: str,
        *,
        authenticated: bool = True,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        client_timeout: aiohttp.ClientTimeout | None = None,
    ) -> dict[str, Any]:
        timeout = client_timeout or self._timeout
        try:
            async with self._session.request(
                method,
                self._base / path,
                headers=self._headers if authenticated else None,
                params=params,
                json=json,
                timeout=timeout,
            ) as response:
                if response.content_type != "application/json":
                    raise HydraConnectionError(
                        f"{self.url} answered HTTP {response.status} with "
                        f"{response.content_type or 'no content type'}; is it a Hydra worker?"
                    )
                body = await response.json()
        except TimeoutError as err:
            raise HydraConnectionError(
                f"{self.url} did not answer within {timeout.total:g} s"
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
