"""Get a web page or a feed from a URL that a stranger may have chosen, within limits.

Research follows URLs from feeds, pages and redirects, from a worker that sits inside the home
network, so a URL must not reach the router, the NAS or a cloud metadata service. Every hop of
a redirect chain is resolved here and each of its addresses checked (loopback, private,
link-local, shared, reserved, multicast and the IPv4 inside IPv4-mapped, 6to4 and NAT64 IPv6
addresses are refused unless allowed). The request then goes to the checked address itself: the
URL's host is replaced by the address, the name travels in the Host header and, for https, as
``server_hostname`` (SNI and the certificate check), so a second DNS answer (rebinding) never
decides where a connection goes. This works with any aiohttp session, keeps the policy per call,
and aiohttp's own DNS cache is never consulted.

The body is read in blocks and reading stops at ``max_bytes`` (a ``Content-Length`` over it is
refused before reading anything); the whole fetch has a deadline and every read its own.
Messages and logs name URLs without their credentials and query (``safe_url``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
import ipaddress
import logging
import socket
import time
from typing import TypeAlias

import aiohttp
from yarl import URL

from .. import __version__
from ..errors import Refusal

_LOGGER = logging.getLogger(__name__)

#: What a page may be.
PAGE_TYPES = ("text/html", "application/xhtml+xml", "text/plain")
#: What a feed is declared as.
FEED_TYPES = (
    "application/rss+xml",
    "application/atom+xml",
    "application/rdf+xml",
    "application/xml",
    "text/xml",
)

USER_AGENT = f"Hydra/{__version__} (home lab research and feeds)"

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_BLOCK = 1 << 16
# A name with more addresses than this is tried at its first few only.
_MAX_ADDRESSES = 4
_CONNECT_TIMEOUT_S = 10.0
# The well-known NAT64 prefix: its addresses reach the IPv4 address in their last 32 bits.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
#: Resolves a host name (and port) to its addresses, as text.
Resolver: TypeAlias = Callable[[str, int], Awaitable[Sequence[str]]]


class FetchFailed(Refusal, code="fetch_failed", status=502):
    """A URL could not be fetched: the server failed, answered an error, or was unreachable.

    Each kind of failure is a subclass with its own ``code``; ``url`` is the URL without
    credentials or query.
    """

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class BadUrl(FetchFailed, code="fetch_bad_url", status=400):
    """The URL is not an http or https URL with a host."""


class AddressRefused(FetchFailed, code="fetch_refused_address", status=403):
    """The URL, or a redirect on the way, leads to an address that is not public."""


class TooLarge(FetchFailed, code="fetch_too_large"):
    """The body is larger than the limit; reading stopped there."""


class BadContentType(FetchFailed, code="fetch_bad_type"):
    """The body is of a type that was not asked for (an image, a PDF, a binary)."""


class FetchTimeout(FetchFailed, code="fetch_timeout", status=504):
    """The server was too slow: the whole fetch, or one read, ran out of time."""


class TooManyRedirects(FetchFailed, code="fetch_too_many_redirects"):
    """The redirects went on past the limit."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Fetched:
    """What a fetch got: the final URL (after redirects, without credentials), the status, the
    media type and charset the server declared, the body, and the validators to send next time.

    ``not_modified`` is a 304 to a conditional fetch: the body is empty and the validators are
    the server's new ones, or else those sent.
    """

    url: str
    status: int
    content_type: str | None
    charset: str | None
    body: bytes
    etag: str | None
    last_modified: str | None
    fetched_at: float
    not_modified: bool = False

    def text(self) -> str:
        """The body as text, in its declared charset (UTF-8 if none or unknown)."""
        try:
            return self.body.decode(self.charset or "utf-8", errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")


def safe_url(url: str | URL) -> str:
    """``url`` fit for a log or a message: no user, password, query or fragment."""
    try:
        parsed = url if isinstance(url, URL) else URL(url)
        return str(parsed.with_user(None).with_query(None).with_fragment(None))
    except (ValueError, TypeError):
        return "(an invalid URL)"


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses of ``host`` from the system's resolver."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def refused_because(
    address: IPAddress, *, allow_private: bool = False, allow_networks: Collection[IPNetwork] = ()
) -> str | None:
    """Why a connection to ``address`` is refused ("a private address"), or None if allowed.

    An IPv6 address that carries an IPv4 address (IPv4-mapped, 6to4, NAT64) is judged by it.
    """
    embedded = _embedded_ipv4(address)
    judged = embedded or address
    if allow_private or any(judged in network or address in network for network in allow_networks):
        return None
    checks = (
        (judged.is_unspecified, "an unspecified address"),
        (judged.is_loopback, "a loopback address"),
        (judged.is_link_local, "a link-local address"),
        (judged.is_multicast, "a multicast address"),
        (judged.is_reserved, "a reserved address"),
        (judged.is_private, "a private address"),
        (not judged.is_global, "not a public address"),
    )
    return next((reason for refused, reason in checks if refused), None)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


async def fetch(
    session: aiohttp.ClientSession,
    url: str,
    *,
    max_bytes: int = 5_000_000,
    timeout_s: float = 20.0,
    read_timeout_s: float = 10.0,
    max_redirects: int = 5,
    allow_private: bool = False,
    allow_networks: Collection[IPNetwork] = (),
    accept: Sequence[str] = PAGE_TYPES,
    etag: str | None = None,
    last_modified: str | None = None,
    resolver: Resolver | None = None,
) -> Fetched:
    """GET ``url`` following up to ``max_redirects`` redirects, each hop's addresses checked.

    ``accept`` lists the media types the body may have; ``etag`` and ``last_modified`` make the
    fetch conditional (a 304 gives ``Fetched.not_modified``). ``allow_private`` lets every
    address through; ``allow_networks`` only those in the networks given. ``resolver`` replaces
    the system's (tests give names the addresses they choose).

    Raises a ``FetchFailed`` subclass for each way it can fail (``BadUrl``, ``AddressRefused``,
    ``TooLarge``, ``BadContentType``, ``FetchTimeout``, ``TooManyRedirects``).
    """
    target = _parse(url)
    request = _Request(
        session=session,
        max_bytes=max_bytes,
        timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=min(timeout_s, _CONNECT_TIMEOUT_S), sock_read=read_timeout_s
        ),
        max_redirects=max_redirects,
        allow_private=allow_private,
        allow_networks=tuple(allow_networks),
        accept=tuple(accept),
        etag=etag,
        last_modified=last_modified,
        resolver=resolver or system_resolver,
    )
    try:
        async with asyncio.timeout(timeout_s):
            fetched = await request.run(target)
    except TimeoutError:
        raise FetchTimeout(
            f"{safe_url(target)} did not answer within {timeout_s:g} s "
            f"(or sent nothing for {read_timeout_s:g} s)",
            url=safe_url(target),
        ) from None
    _LOGGER.debug(
        "Fetched %s: HTTP %d, %s, %d bytes",
        safe_url(fetched.url),
        fetched.status,
        fetched.content_type,
        len(fetched.body),
    )
    return fetched


def _parse(url: str) -> URL:
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as err:
        # Not quoted: a URL that does not parse may still hold a password.
        raise BadUrl("the URL cannot be parsed", url=safe_url(url)) from err
    _check_url(parsed)
    return parsed.with_fragment(None)


def _check_url(url: URL) -> None:
    if url.scheme not in ("http", "https"):
        raise BadUrl(
            f"{safe_url(url)} is not an http or https URL (only web pages can be fetched)",
            url=safe_url(url),
        )
    if not url.raw_host:
        raise BadUrl(f"{safe_url(url)} names no host", url=safe_url(url))


@dataclass(frozen=True, slots=True, kw_only=True)
class _Request:
    session: aiohttp.ClientSession
    max_bytes: int
    timeout: aiohttp.ClientTimeout
    max_redirects: int
    allow_private: bool
    allow_networks: tuple[IPNetwork, ...]
    accept: tuple[str, ...]
    etag: str | None
    last_modified: str | None
    resolver: Resolver

    async def run(self, url: URL) -> Fetched:
        headers = {"Accept": ", ".join(self.accept), "User-Agent": USER_AGENT}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        for _hop in range(self.max_redirects + 1):
            addresses = await self._addresses(url)
            async with await self._open(url, addresses, headers) as response:
                if response.status in _REDIRECTS:
                    url = self._redirect(url, response)
                    continue
                return await self._finish(url, response)
        raise TooManyRedirects(
            f"{safe_url(url)} is still redirecting after {self.max_redirects} redirects",
            url=safe_url(url),
        )

    async def _addresses(self, url: URL) -> list[IPAddress]:
        host = url.raw_host or ""
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            addresses = await self._resolve(url, host)
        for address in addresses:
            reason = refused_because(
                address, allow_private=self.allow_private, allow_networks=self.allow_networks
            )
            if reason is not None:
                raise AddressRefused(
                    f"{safe_url(url)} leads to {address}, {reason}: only public addresses are "
                    "fetched unless private ones are allowed",
                    url=safe_url(url),
                )
        return addresses

    async def _resolve(self, url: URL, host: str) -> list[IPAddress]:
        try:
            found = await self.resolver(host, url.port or 0)
            addresses = list(dict.fromkeys(ipaddress.ip_address(a) for a in found))
        except (OSError, ValueError) as err:
            raise FetchFailed(
                f"{safe_url(url)}: could not resolve {host} ({err})", url=safe_url(url)
            ) from err
        if not addresses:
            raise FetchFailed(f"{safe_url(url)}: {host} has no address", url=safe_url(url))
        return addresses

    async def _open(
        self, url: URL, addresses: Sequence[IPAddress], headers: dict[str, str]
    ) -> aiohttp.ClientResponse:
        """Connect to the first of ``addresses`` that answers and send the request."""
        name = url.raw_host or ""
        tls_name = name if url.scheme == "https" and not _is_literal(name) else None
        failure: aiohttp.ClientConnectorError | None = None
        for address in addresses[:_MAX_ADDRESSES]:
            try:
                return await self.session.get(
                    url.with_host(str(address)),
                    headers={**headers, "Host": url.host_port_subcomponent or name},
                    server_hostname=tls_name,
                    allow_redirects=False,
                    raise_for_status=False,
                    timeout=self.timeout,
                )
            except aiohttp.ClientConnectorError as err:
                failure = err
            except TimeoutError:
                raise
            except aiohttp.ClientError as err:
                raise FetchFailed(f"{safe_url(url)}: {_describe(err)}", url=safe_url(url)) from err
        raise FetchFailed(
            f"{safe_url(url)}: could not connect to {name} ({_describe(failure)})",
            url=safe_url(url),
        ) from failure

    def _redirect(self, url: URL, response: aiohttp.ClientResponse) -> URL:
        location = response.headers.get("Location")
        if not location:
            raise FetchFailed(
                f"{safe_url(url)} answered HTTP {response.status} without a Location",
                url=safe_url(url),
            )
        try:
            target = url.join(URL(location)).with_fragment(None)
        except (ValueError, TypeError) as err:
            raise FetchFailed(
                f"{safe_url(url)} redirects to an invalid URL", url=safe_url(url)
            ) from err
        _check_url(target)
        _LOGGER.debug("%s redirects to %s", safe_url(url), safe_url(target))
        return target

    async def _finish(self, url: URL, response: aiohttp.ClientResponse) -> Fetched:
        final = str(url.with_user(None))
        etag = response.headers.get("ETag")
        last_modified = response.headers.get("Last-Modified")
        if response.status == 304 and (self.etag or self.last_modified):
            return Fetched(
                url=final,
                status=304,
                content_type=None,
                charset=None,
                body=b"",
                etag=etag or self.etag,
                last_modified=last_modified or self.last_modified,
                fetched_at=time.time(),
                not_modified=True,
            )
        if not 200 <= response.status < 300:
            raise FetchFailed(f"{safe_url(url)} answered HTTP {response.status}", url=safe_url(url))
        content_type = response.content_type
        if content_type not in self.accept:
            raise BadContentType(
                f"{safe_url(url)} is {content_type}, not one of {', '.join(self.accept)}",
                url=safe_url(url),
            )
        body = await self._read(url, response)
        return Fetched(
            url=final,
            status=response.status,
            content_type=content_type,
            charset=response.charset.lower() if response.charset else None,
            body=body,
            etag=etag,
            last_modified=last_modified,
            fetched_at=time.time(),
        )

    async def _read(self, url: URL, response: aiohttp.ClientResponse) -> bytes:
        declared = response.content_length
        if declared is not None and declared > self.max_bytes:
            response.close()
            raise TooLarge(
                f"{safe_url(url)} is {declared} bytes, more than the limit of {self.max_bytes}",
                url=safe_url(url),
            )
        body = bytearray()
        try:
            async for block in response.content.iter_chunked(_BLOCK):
                body += block
                if len(body) > self.max_bytes:
                    response.close()
                    raise TooLarge(
                        f"{safe_url(url)} is larger than the limit of {self.max_bytes} bytes",
                        url=safe_url(url),
                    )
        except aiohttp.ClientError as err:
            if isinstance(err, TimeoutError):
                raise
            raise FetchFailed(f"{safe_url(url)}: {_describe(err)}", url=safe_url(url)) from err
        return bytes(body)


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _describe(err: BaseException | None) -> str:
    """What went wrong, without the URL (which may carry credentials) that some errors quote."""
    if isinstance(err, aiohttp.ClientConnectorError):
        return str(err.os_error.strerror or err.os_error)
    if isinstance(err, aiohttp.InvalidURL) or err is None:
        return "invalid URL"
    return str(err) or type(err).__name__
