"""A small client for the Docker Engine API (Docker, or podman's Docker-compatible service).

Plain aiohttp over a unix socket or TCP, the address from the option or ``DOCKER_HOST``. Only
what Hydra needs: list (never with ``size=1``: that costs seconds), inspect, one-shot stats,
start, stop, restart, the event stream, and for disk management the engine's disk use, its
images, removing one image and pruning the build cache.

TLS reads the environment as the Docker CLI does: ``DOCKER_TLS_VERIFY`` or ``DOCKER_TLS`` set
to anything (``0`` included) turns it on, ``DOCKER_CERT_PATH`` (default ``~/.docker``) holds
``ca.pem`` and the client's ``cert.pem`` and ``key.pem``, each used when present. An
``https://`` address means TLS too. The engine's certificate is always verified, against
``ca.pem`` when there is one and the system's CAs otherwise: unlike the CLI's ``--tls``, Hydra
has no unverified TLS, since whoever can answer in the engine's place can tell Hydra that a
protected container is not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
import json
import os
from pathlib import Path
import ssl
from typing import Any, cast
from urllib.parse import quote

import aiohttp

API_VERSION = "v1.41"
PODMAN_API = "v4.0.0/libpod"
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
_TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=5)
_STREAM_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=None)


class EngineError(Exception):
    """The engine could not be reached or refused a request; the message says which."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class EngineNotFoundError(EngineError):
    """No such container (HTTP 404 from the engine)."""


def resolve_docker_host(option: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """The engine address: the option, else ``DOCKER_HOST``, else the local socket."""
    return option or environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST


def _tls_context(docker_host: str, environ: Mapping[str, str]) -> ssl.SSLContext | None:
    """A verifying TLS context, or None for plain HTTP (see the module's docstring)."""
    if not (
        docker_host.startswith("https://")
        or environ.get("DOCKER_TLS_VERIFY")
        or environ.get("DOCKER_TLS")
    ):
        return None
    cert_dir = Path(environ.get("DOCKER_CERT_PATH") or Path.home() / ".docker")
    ca, cert, key = (cert_dir / name for name in ("ca.pem", "cert.pem", "key.pem"))
    try:
        context = ssl.create_default_context(cafile=ca if ca.is_file() else None)
        if cert.is_file() and key.is_file():
            context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as err:
        raise ValueError(f"Cannot use the TLS files in {cert_dir}: {err}") from err
    return context


class EngineClient:
    """Talks to one engine; owns its aiohttp session."""

    def __init__(self, docker_host: str, environ: Mapping[str, str] = os.environ) -> None:
        self.docker_host = docker_host
        if docker_host.startswith("unix://"):
            connector: aiohttp.BaseConnector = aiohttp.UnixConnector(
                path=docker_host.removeprefix("unix://")
            )
            self._root = "http://engine"
        elif docker_host.startswith(("tcp://", "http://", "https://")):
            tls = _tls_context(docker_host, environ)
            address = docker_host.split("://", 1)[1].rstrip("/")
            # Without a context the root is http://, so no TLS is skipped by ssl=False.
            connector = aiohttp.TCPConnector(ssl=tls or False)
            self._root = f"{'https' if tls else 'http'}://{address}"
        else:
            raise ValueError(
                f"Unsupported engine address {docker_host!r}: use unix:///path or tcp://host:port"
            )
        self._session = aiohttp.ClientSession(connector=connector, timeout=_TIMEOUT)

    async def close(self) -> None:
        """Close the connections."""
        await self._session.close()

    async def version(self) -> dict[str, Any]:
        """The engine's version facts (also a cheap reachability check)."""
        return cast(dict[str, Any], await self._json("GET", "/version"))

    async def list_containers(self) -> list[dict[str, Any]]:
        """Every container, running or not (one request, no sizes)."""
        return cast(
            list[dict[str, Any]], await self._json("GET", "/containers/json", params={"all": "1"})
        )

    async def inspect(self, container_id: str) -> dict[str, Any]:
        """One container's full state (health, restart policy, exit code...)."""
        return cast(
            dict[str, Any], await self._json("GET", f"/containers/{quote(container_id)}/json")
        )

    async def stats(self, container_id: str) -> dict[str, Any]:
        """One stats sample, without waiting for a second one (CPU % needs two: see caller)."""
        stats: dict[str, Any] = await self._json(
            "GET",
            f"/containers/{quote(container_id)}/stats",
            params={"stream": "false", "one-shot": "true"},
        )
        return stats

    async def podman_stats(self) -> list[dict[str, Any]]:
        """Every container's stats in one request: podman's own API (Docker has no such call)."""
        body = await self._json(
            "GET", "/containers/stats", params={"stream": "false"}, api=PODMAN_API
        )
        if body.get("Error"):
            raise EngineError(f"podman stats failed: {body['Error']}")
        return body.get("Stats") or []

    async def start(self, container_id: str) -> None:
        """Start a container (already running is fine)."""
        await self._json("POST", f"/containers/{quote(container_id)}/start", expect_body=False)

    async def stop(self, container_id: str, timeout_s: int = 10) -> None:
        """Stop a container, killing it after ``timeout_s``."""
        await self._json(
            "POST",
            f"/containers/{quote(container_id)}/stop",
            params={"t": str(timeout_s)},
            expect_body=False,
        )

    async def restart(self, container_id: str, timeout_s: int = 10) -> None:
        """Restart a container."""
        await self._json(
            "POST",
            f"/containers/{quote(container_id)}/restart",
            params={"t": str(timeout_s)},
            expect_body=False,
        )

    async def system_df(self) -> dict[str, Any]:
        """What the engine keeps on disk: images, containers, volumes, build cache."""
        return cast(dict[str, Any], await self._json("GET", "/system/df"))

    async def list_images(self) -> list[dict[str, Any]]:
        """Every image (tagged or not; intermediate layers left out)."""
        return cast(list[dict[str, Any]], await self._json("GET", "/images/json"))

    async def remove_image(self, image: str) -> list[dict[str, Any]]:
        """Remove one image (never forced: the engine refuses one a container uses)."""
        return cast(
            list[dict[str, Any]],
            await self._json("DELETE", f"/images/{quote(image)}", params={"noprune": "false"}),
        )

    async def prune_build_cache(self, keep_bytes: int) -> dict[str, Any]:
        """Remove build cache until at most ``keep_bytes`` of it is left; EngineNotFoundError
        where the engine has no build cache endpoint (podman 4)."""
        return cast(
            dict[str, Any],
            await self._json("POST", "/build/prune", params={"keep-storage": str(keep_bytes)}),
        )

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Container events as the engine emits them, until the stream ends."""
        filters = json.dumps({"type": ["container"]})
        try:
            async with self._session.get(
                f"{self._root}/{API_VERSION}/events",
                params={"filters": filters},
                timeout=_STREAM_TIMEOUT,
            ) as response:
                await self._check(response)
                # One JSON object per line.
                async for line in response.content:
                    if line.strip():
                        try:
                            yield json.loads(line)
                        except ValueError:
                            continue
        except aiohttp.ClientError as err:
            raise EngineError(f"Lost the engine's event stream: {err}") from err

    async def _json(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        expect_body: bool = True,
        api: str = API_VERSION,
    ) -> Any:
        try:
            async with self._session.request(
                method, f"{self._root}/{api}{path}", params=params
            ) as response:
                await self._check(response)
                if not expect_body:
                    return None
                return await response.json(content_type=None)
        except aiohttp.ClientConnectorCertificateError as err:
            raise EngineError(
                f"The container engine at {self.docker_host} presented a certificate that is not"
                f" trusted ({err.certificate_error}); put the CA that signed it in"
                " DOCKER_CERT_PATH/ca.pem"
            ) from err
        except (aiohttp.ClientError, TimeoutError) as err:
            raise EngineError(
                f"Cannot reach the container engine at {self.docker_host}: {err!r}"
            ) from err
        except ValueError as err:
            raise EngineError(f"The engine answered {path} with invalid JSON") from err

    @staticmethod
    async def _check(response: aiohttp.ClientResponse) -> None:
        # 304: start on a running container / stop on a stopped one; nothing to do.
        if response.status < 400:
            return
        try:
            message = (await response.json(content_type=None)).get("message", "")
        except (ValueError, AttributeError, aiohttp.ClientError):
            message = (await response.text())[:200]
        error = EngineNotFoundError if response.status == 404 else EngineError
        raise error(f"Engine error {response.status}: {message}", status=response.status)
