"""Fetching pages safely, from a real web server on 127.0.0.1.

The test site is on loopback, which ``fetch`` refuses unless told otherwise: tests that fetch
from it allow private addresses (or only 127.0.0.1/32); the tests of refusals do not, and
prove nothing was sent. Names other than the site's come from a fake DNS (``fake_dns``), since
no other network exists here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from pathlib import Path
import ssl
import time

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
import pytest

from hydra_core.knowledge.fetch import (
    FEED_TYPES,
    AddressRefused,
    BadContentType,
    BadUrl,
    FetchFailed,
    FetchTimeout,
    TooLarge,
    TooManyRedirects,
    fetch,
    refused_because,
)
from tests.certificates import make_certificate

from .site import MB, Site, closed_port, fake_dns

pytestmark = pytest.mark.usefixtures("loopback_sockets")

LOOPBACK_ONLY = (ipaddress.ip_network("127.0.0.1/32"),)
ARTICLE = "<html><head><title>Tides</title></head><body><p>The tide turns.</p></body></html>"


async def test_a_page_comes_with_its_type_charset_and_validators(
    site: Site, session: aiohttp.ClientSession
) -> None:
    url = site.add(
        "/tides",
        ARTICLE.encode("iso-8859-1"),
        content_type="text/html; charset=ISO-8859-1",
        etag='"v1"',
        last_modified="Wed, 01 Jul 2026 08:00:00 GMT",
    )
    before = time.time()

    page = await fetch(session, url, allow_private=True)

    assert page.url == url
    assert page.status == 200
    assert page.content_type == "text/html"
    assert page.charset == "iso-8859-1"
    assert page.body == ARTICLE.encode("iso-8859-1")
    assert page.text() == ARTICLE
    assert page.etag == '"v1"'
    assert page.last_modified == "Wed, 01 Jul 2026 08:00:00 GMT"
    assert before <= page.fetched_at <= time.time()
    assert not page.not_modified
    request = site.requests[-1]
    assert request.headers["Accept"] == "text/html, application/xhtml+xml, text/plain"
    assert request.headers["User-Agent"].startswith("Hydra/")


async def test_plain_text_is_a_page_too(site: Site, session: aiohttp.ClientSession) -> None:
    url = site.add("/notes.txt", "Low tide at 06:12.", content_type="text/plain")
    page = await fetch(session, url, allow_private=True)
    assert page.content_type == "text/plain"
    assert page.text() == "Low tide at 06:12."


async def test_an_unchanged_page_is_not_modified_by_etag_or_date(
    site: Site, session: aiohttp.ClientSession
) -> None:
    url = site.add("/tides", ARTICLE, etag='"v1"')
    first = await fetch(session, url, allow_private=True)

    again = await fetch(session, url, allow_private=True, etag=first.etag)

    assert again.not_modified
    assert again.status == 304
    assert again.body == b""
    assert again.etag == '"v1"'
    assert site.requests[-1].headers["If-None-Match"] == '"v1"'

    dated = site.add("/dated", ARTICLE, last_modified="Wed, 01 Jul 2026 08:00:00 GMT")
    first = await fetch(session, dated, allow_private=True)
    again = await fetch(session, dated, allow_private=True, last_modified=first.last_modified)
    assert again.not_modified
    assert again.last_modified == "Wed, 01 Jul 2026 08:00:00 GMT"

    # Once the page changes, the same conditional fetch gets it whole.
    site.add("/tides", ARTICLE + "<p>Spring tide.</p>", etag='"v2"')
    changed = await fetch(session, url, allow_private=True, etag='"v1"')
    assert not changed.not_modified
    assert changed.etag == '"v2"'
    assert b"Spring tide." in changed.body


async def test_redirects_are_followed_to_the_final_url(
    site: Site, session: aiohttp.ClientSession
) -> None:
    final = site.add("/articles/tides", ARTICLE)
    site.redirect("/old/tides", "../articles/tides", status=301)
    start = site.redirect("/t", f"{site.url}/old/tides", status=307)

    page = await fetch(session, start, allow_private=True)

    assert page.url == final
    assert page.body == ARTICLE.encode()
    assert site.paths() == ["/t", "/old/tides", "/articles/tides"]


async def test_too_many_redirects_stop(site: Site, session: aiohttp.ClientSession) -> None:
    loop = site.redirect("/loop", "/loop")

    with pytest.raises(TooManyRedirects) as raised:
        await fetch(session, loop, allow_private=True, max_redirects=3)

    assert raised.value.code == "fetch_too_many_redirects"
    assert "after 3 redirects" in raised.value.message
    assert site.paths() == ["/loop"] * 4


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.0.0.2",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 (a URL that must be refused, not a bind)
        "224.0.0.251",
        "[::1]",
        "[fc00::1]",
        "[fd12:3456::1]",
        "[fe80::1]",
        "[ff02::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:10.0.0.1]",
        "[64:ff9b::c0a8:101]",  # NAT64 of 192.168.1.1
        "[2002:c0a8:101::]",  # 6to4 of 192.168.1.1
    ],
)
async def test_private_addresses_are_refused(
    site: Site, session: aiohttp.ClientSession, host: str
) -> None:
    port = site.url.rsplit(":", 1)[1]

    with pytest.raises(AddressRefused) as raised:
        await fetch(session, f"http://{host}:{port}/tides")

    assert raised.value.code == "fetch_refused_address"
    assert raised.value.status == 403
    assert "only public addresses" in raised.value.message
    assert site.requests == []  # 127.0.0.1 is the site itself: nothing reached it


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("192.168.1.1", "a private address"),
        ("fc00::1", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("224.0.0.1", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("100.64.0.1", "not a public address"),
    ],
)
def test_what_each_address_is(address: str, reason: str | None) -> None:
    assert refused_because(ipaddress.ip_address(address)) == reason


async def test_names_are_judged_by_every_address_they_resolve_to(
    site: Site, session: aiohttp.ClientSession
) -> None:
    dns = fake_dns(
        {
            "router.home": "192.168.1.1",
            "metadata.cloud": "169.254.169.254",
            "both.example": ["93.184.215.14", "10.0.0.7"],
        }
    )
    for url in ("http://router.home/", "https://metadata.cloud/latest", "http://both.example/"):
        with pytest.raises(AddressRefused):
            await fetch(session, url, resolver=dns)
    # The system's resolver knows localhost.
    with pytest.raises(AddressRefused, match="loopback"):
        await fetch(session, "http://localhost/")


async def test_the_connection_goes_to_the_address_that_was_checked(
    site: Site, session: aiohttp.ClientSession
) -> None:
    """A name is resolved once per hop, and the request goes to that address: no second lookup
    (which a rebinding DNS would answer differently) decides where it connects."""
    port = site.url.rsplit(":", 1)[1]
    site.add("/tides", ARTICLE)
    lookups: list[str] = []
    answers = iter(["127.0.0.1", "10.0.0.1"])  # a rebinding DNS: public first, then private

    async def rebinding(host: str, port: int) -> list[str]:
        lookups.append(host)
        return [next(answers)]

    page = await fetch(
        session,
        f"http://news.example:{port}/tides",
        allow_networks=LOOPBACK_ONLY,
        resolver=rebinding,
    )

    assert page.body == ARTICLE.encode()
    assert lookups == ["news.example"]
    assert site.requests[0].headers["Host"] == f"news.example:{port}"


async def test_https_checks_the_certificate_against_the_name_not_the_address(
    tmp_path: Path,
) -> None:
    """The request goes to the checked address, yet TLS still names the host (SNI) and checks
    that the certificate is the host's."""
    cert = make_certificate(tmp_path, "news", host="news.example")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert.cert, cert.key)
    site = Site()
    site.add("/tides", ARTICLE)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", site.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=server_tls)
    port = server.port
    dns = fake_dns({"news.example": "127.0.0.1", "impostor.example": "127.0.0.1"})
    connector = aiohttp.TCPConnector(ssl=cert.trusting_context())
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            page = await fetch(
                session,
                f"https://news.example:{port}/tides",
                allow_networks=LOOPBACK_ONLY,
                resolver=dns,
            )
            with pytest.raises(FetchFailed, match="certificate"):
                await fetch(
                    session,
                    f"https://impostor.example:{port}/tides",
                    allow_networks=LOOPBACK_ONLY,
                    resolver=dns,
                )
    finally:
        await server.close()

    assert page.url == f"https://news.example:{port}/tides"
    assert page.body == ARTICLE.encode()
    assert site.requests[0].headers["Host"] == f"news.example:{port}"
    assert len(site.requests) == 1  # the impostor never got as far as a request


async def test_a_redirect_to_a_private_address_is_refused(
    site: Site, session: aiohttp.ClientSession
) -> None:
    """127.0.0.1 stands for a public host here; the redirect leads inside the home network."""
    port = site.url.rsplit(":", 1)[1]
    dns = fake_dns({"news.example": "127.0.0.1", "nas.home": "192.168.1.20"})
    site.redirect("/to-nas", "http://nas.home/admin")
    site.redirect("/to-loopback", f"http://[::1]:{port}/tides")
    site.redirect("/to-file", "file:///etc/passwd")

    with pytest.raises(AddressRefused, match=r"http://nas.home/admin leads to 192.168.1.20"):
        await fetch(
            session,
            f"http://news.example:{port}/to-nas",
            allow_networks=LOOPBACK_ONLY,
            resolver=dns,
        )
    with pytest.raises(AddressRefused, match="loopback"):
        await fetch(
            session,
            f"http://news.example:{port}/to-loopback",
            allow_networks=LOOPBACK_ONLY,
            resolver=dns,
        )
    with pytest.raises(BadUrl, match="not an http or https URL"):
        await fetch(session, f"{site.url}/to-file", allow_private=True)
    assert site.paths() == ["/to-nas", "/to-loopback", "/to-file"]


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/x",
        "javascript:alert(1)",
        "gopher://x",
        "/tides",
        "http:///tides",
        "http://user:hunter2@[::1/tides",
    ],
)
async def test_only_web_urls_are_fetched(session: aiohttp.ClientSession, url: str) -> None:
    with pytest.raises(BadUrl) as raised:
        await fetch(session, url, allow_private=True)
    assert raised.value.code == "fetch_bad_url"
    assert raised.value.status == 400
    assert "hunter2" not in raised.value.message


async def test_a_huge_body_is_cut_off_early(site: Site, session: aiohttp.ClientSession) -> None:
    huge = site.add_huge("/huge", 50 * MB, declare=False)

    with pytest.raises(TooLarge) as raised:
        await fetch(session, f"{site.url}/huge", allow_private=True, max_bytes=2 * MB)

    assert raised.value.code == "fetch_too_large"
    assert "larger than the limit of 2000000 bytes" in raised.value.message
    await asyncio.wait_for(huge.done.wait(), 10)
    # Reading stopped past 2 MB and the connection closed: the server could hand over only
    # what the sockets' buffers held, far from the 50 MB.
    assert huge.sent < 10 * MB


async def test_a_declared_length_over_the_limit_is_refused_unread(
    site: Site, session: aiohttp.ClientSession
) -> None:
    huge = site.add_huge("/huge", 50 * MB, declare=True)

    with pytest.raises(TooLarge, match="is 50000000 bytes, more than the limit of 5000000"):
        await fetch(session, f"{site.url}/huge", allow_private=True)

    await asyncio.wait_for(huge.done.wait(), 10)
    assert huge.sent < 10 * MB


async def test_a_stalled_server_times_out(site: Site, session: aiohttp.ClientSession) -> None:
    site.stalled.add("/stalled")
    started = time.monotonic()

    with pytest.raises(FetchTimeout) as raised:
        await fetch(session, f"{site.url}/stalled", allow_private=True, read_timeout_s=0.3)

    assert raised.value.code == "fetch_timeout"
    assert raised.value.status == 504
    assert time.monotonic() - started < 3


async def test_a_trickling_server_runs_out_of_total_time(
    site: Site, session: aiohttp.ClientSession
) -> None:
    """A byte every 50 ms keeps every read within its timeout; the whole fetch still ends."""
    site.dripping.add("/drip")
    started = time.monotonic()

    with pytest.raises(FetchTimeout, match=r"did not answer within 0.5 s"):
        await fetch(session, f"{site.url}/drip", allow_private=True, timeout_s=0.5)

    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("image/png", b"\x89PNG\r\n\x1a\n"),
        ("application/json", b'{"tide": "high"}'),
        ("application/pdf", b"%PDF-1.7"),
        (None, b"\x00\x01\x02"),
    ],
)
async def test_a_body_of_another_type_is_refused(
    site: Site, session: aiohttp.ClientSession, content_type: str | None, body: bytes
) -> None:
    url = site.add("/thing", body, content_type=content_type)

    with pytest.raises(BadContentType) as raised:
        await fetch(session, url, allow_private=True)

    assert raised.value.code == "fetch_bad_type"
    assert "not one of text/html, application/xhtml+xml, text/plain" in raised.value.message


async def test_feeds_are_fetched_with_their_own_types(
    site: Site, session: aiohttp.ClientSession
) -> None:
    url = site.add("/feed", "<rss version='2.0'/>", content_type="application/rss+xml")
    with pytest.raises(BadContentType):
        await fetch(session, url, allow_private=True)
    feed = await fetch(session, url, allow_private=True, accept=FEED_TYPES)
    assert feed.content_type == "application/rss+xml"
    assert "application/rss+xml" in site.requests[-1].headers["Accept"]


async def test_an_error_status_or_no_server_fails_clearly(
    site: Site, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(FetchFailed, match="answered HTTP 404") as raised:
        await fetch(session, f"{site.url}/missing", allow_private=True)
    assert raised.value.code == "fetch_failed"

    with pytest.raises(FetchFailed, match=r"could not connect to 127\.0\.0\.1") as raised:
        await fetch(session, f"http://127.0.0.1:{closed_port()}/", allow_private=True)
    assert raised.value.code == "fetch_failed"

    with pytest.raises(FetchFailed, match=r"could not resolve nowhere\.invalid"):
        await fetch(session, "http://nowhere.invalid/", resolver=fake_dns({}))


async def test_credentials_in_a_url_are_used_but_never_shown(
    site: Site, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hydra_core.knowledge.fetch")
    host = site.url.removeprefix("http://")
    site.add("/private-feed", ARTICLE)
    site.redirect("/moved", "/private-feed?token=s3cret-token")

    page = await fetch(session, f"http://reader:hunter2@{host}/moved", allow_private=True)
    with pytest.raises(FetchFailed) as raised:
        await fetch(session, f"http://reader:hunter2@{host}/gone?token=s3cret", allow_private=True)

    assert site.requests[0].headers["Authorization"].startswith("Basic ")
    assert page.url == f"{site.url}/private-feed?token=s3cret-token"
    assert "hunter2" not in raised.value.message
    assert "s3cret" not in raised.value.message
    assert raised.value.url == f"{site.url}/gone"
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("hydra_core")]
    assert logged
    assert not [line for line in logged if "hunter2" in line or "s3cret" in line]
