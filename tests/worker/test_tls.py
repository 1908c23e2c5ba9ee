"""The worker's API over TLS: its certificate options, HTTPS and wss on one port, and the client
that verifies the certificate (or pins it) on every call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import http.client
from pathlib import Path
import signal
import ssl
import subprocess
import time

import aiohttp
from aiohttp import web
import pytest

from hydra_core.audit import AuditLog
from hydra_core.client import HydraCertificateError, HydraClient
from hydra_core.events import EventBus
from hydra_core.gpu import NoGpuProbe
from hydra_core.models import EVENT_HELLO
from hydra_core.worker.__main__ import main, start_site
from hydra_core.worker.app import create_app
from hydra_core.worker.config import ConfigError, CoreOptions, load_config
from tests.certificates import LOOPBACK, Certificate, make_certificate
from tests.worker_identity import INFO, TOKEN

from .test_cli import START_TIMEOUT_S, STOP_TIMEOUT_S, _launch, free_port


@pytest.fixture
def certificate(tmp_path: Path) -> Certificate:
    return make_certificate(tmp_path / "tls")


@pytest.fixture
async def tls_url(certificate: Certificate, loopback_sockets: None) -> AsyncIterator[str]:
    """The worker application served the way ``hydra-worker --tls-cert --tls-key`` serves it."""
    core = CoreOptions(host=LOOPBACK, port=0, tls_cert=certificate.cert, tls_key=certificate.key)
    app = create_app(
        info=INFO, token=TOKEN, probe=NoGpuProbe(), audit=AuditLog(None), bus=EventBus()
    )
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    await start_site(runner, core)
    try:
        yield f"https://{LOOPBACK}:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def _https_health(port: int, context: ssl.SSLContext) -> int:
    connection = http.client.HTTPSConnection(LOOPBACK, port, timeout=5, context=context)
    try:
        connection.request("GET", "/api/v1/health")
        return connection.getresponse().status
    finally:
        connection.close()


def _wait_for_https(
    process: subprocess.Popen[bytes], port: int, log: Path, context: ssl.SSLContext
) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"worker exited with {process.returncode}:\n{log.read_text()}")
        try:
            assert _https_health(port, context) == 200
        except (OSError, http.client.HTTPException):
            time.sleep(0.05)
            continue
        return
    pytest.fail(f"worker did not answer within {START_TIMEOUT_S} s:\n{log.read_text()}")


@pytest.mark.usefixtures("loopback_sockets")
async def test_worker_process_serves_https_and_wss_with_its_certificate(
    tmp_path: Path, certificate: Certificate
) -> None:
    port = free_port()
    process = _launch(tmp_path, port, "--gpu-backend", "simulated", *certificate.worker_options())
    log = tmp_path / "worker.log"
    try:
        await asyncio.to_thread(_wait_for_https, process, port, log, certificate.trusting_context())
        token = (tmp_path / "data" / "token").read_text().strip()
        async with aiohttp.ClientSession() as session:
            client = HydraClient(
                session, f"https://{LOOPBACK}:{port}", token, fingerprint=certificate.fingerprint
            )
            assert len((await client.async_status()).gpu.gpus) == 2
            hello = await asyncio.wait_for(anext(client.async_events()), 5)
            assert hello.type == EVENT_HELLO
            # The same port speaks nothing but TLS: plain HTTP gets no answer of the API.
            with pytest.raises(aiohttp.ClientError):
                async with session.get(f"http://{LOOPBACK}:{port}/api/v1/health") as response:
                    await response.json()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=STOP_TIMEOUT_S) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)
    output = log.read_text()
    assert f"listening on https://{LOOPBACK}:{port}" in output
    assert "Traceback" not in output


async def test_the_client_refuses_an_untrusted_certificate(
    tls_url: str, certificate: Certificate
) -> None:
    """Verified against the trusted CAs by default: a self-signed certificate is refused, with an
    error that says so (and carries no token)."""
    async with aiohttp.ClientSession() as session:
        client = HydraClient(session, tls_url, TOKEN)
        for call in (client.async_health(), client.async_status(), anext(client.async_events())):
            with pytest.raises(HydraCertificateError) as caught:
                await call
            assert "certificate" in str(caught.value)
            assert tls_url in str(caught.value)
            assert TOKEN not in str(caught.value)
        # What the user is shown to decide whether to pin it: the certificate's own fingerprint.
        assert await client.async_certificate_fingerprint() == certificate.fingerprint


async def test_the_client_trusts_a_certificate_its_cas_sign(
    tls_url: str, certificate: Certificate
) -> None:
    connector = aiohttp.TCPConnector(ssl=certificate.trusting_context())
    async with aiohttp.ClientSession(connector=connector) as session:
        client = HydraClient(session, tls_url, TOKEN)
        assert (await client.async_health()).worker_id == INFO.worker_id


async def test_a_pinned_certificate_is_accepted_and_a_different_one_refused(
    tls_url: str, certificate: Certificate, tmp_path: Path
) -> None:
    other = make_certificate(tmp_path / "other", "other")
    async with aiohttp.ClientSession() as session:
        pinned = HydraClient(session, tls_url, TOKEN, fingerprint=certificate.fingerprint)
        assert (await pinned.async_status()).worker.worker_id == INFO.worker_id
        assert (await asyncio.wait_for(anext(pinned.async_events()), 5)).type == EVENT_HELLO

        wrong = HydraClient(session, tls_url, TOKEN, fingerprint=other.fingerprint)
        for call in (wrong.async_health(), wrong.async_status(), anext(wrong.async_events())):
            with pytest.raises(HydraCertificateError) as caught:
                await call
            assert caught.value.fingerprint == certificate.fingerprint
            assert "changed" in str(caught.value)


def test_certificate_options_are_checked_before_the_worker_starts(
    tmp_path: Path, certificate: Certificate, capsys: pytest.CaptureFixture[str]
) -> None:
    other = make_certificate(tmp_path / "other", "other")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    cases = [
        (("--tls-cert", str(certificate.cert)), "tls_key"),
        (("--tls-key", str(certificate.key)), "tls_cert"),
        (
            ("--tls-cert", str(tmp_path / "missing.crt"), "--tls-key", str(certificate.key)),
            "missing.crt",
        ),
        (("--tls-cert", str(certificate.cert), "--tls-key", str(other.key)), "do not match"),
        (("--tls-cert", str(garbage), "--tls-key", str(certificate.key)), "garbage.pem"),
    ]
    for options, mention in cases:
        argv = ["--data-dir", str(tmp_path / "data"), *options]
        with pytest.raises(ConfigError) as caught:
            load_config(argv, environ={})
        assert mention in str(caught.value)
        assert main(argv) == 2
        assert mention in capsys.readouterr().err
    assert not (tmp_path / "data").exists()  # nothing was started
    # Both, matching: HTTPS; neither: plain HTTP as before.
    assert load_config([*certificate.worker_options()], environ={}).core.tls_context()
    assert load_config([], environ={}).core.tls_context() is None
