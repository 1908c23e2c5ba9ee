"""Hostile Wyoming clients against the real voice server (real wake word, Whisper and Kokoro
models): random and malformed events, headers that lie about their lengths, garbage lines. The
server answers with Wyoming events or closes the connection, never logs an unexpected error,
and keeps serving others.

``HYDRA_FUZZ_EXAMPLES`` sets the number of hostile connections (default 200: the models make each
slower than an API request; the closing figures of issue 13 were run with more)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from tests.fuzzing import json_values

from .test_server import LOOPBACK, StartServer, start_server  # noqa: F401

pytestmark = pytest.mark.usefixtures("loopback_sockets")

EXAMPLES = int(os.environ.get("HYDRA_FUZZ_EXAMPLES", "200"))
TYPES = [
    *("describe", "ping", "transcribe", "audio-start", "audio-chunk", "audio-stop", "detect"),
    *("synthesize", "synthesize-start", "synthesize-chunk", "synthesize-stop", "run-satellite"),
]
FIELDS = ["rate", "width", "channels", "timestamp", "text", "name", "names", "language", "voice"]

JSON = json_values(max_leaves=8)


@st.composite
def _event(draw: st.DrawFn) -> bytes:
    """One event as bytes: a header (with data and payload lengths that may lie), or garbage."""
    kind = draw(st.sampled_from(["event", "event", "event", "garbage"]))
    if kind == "garbage":
        return draw(st.binary(max_size=200)) + b"\n"
    header: dict[str, Any] = {"type": draw(st.sampled_from(TYPES) | st.text(max_size=12))}
    data = draw(st.none() | st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=4))
    inline = draw(st.booleans())
    if data is not None and inline:
        header["data"] = data
    data_bytes = b"" if data is None or inline else json.dumps(data).encode()
    payload = draw(st.binary(max_size=3200))
    if data_bytes:
        header["data_length"] = len(data_bytes) + draw(st.sampled_from([0, 0, -1, 7]))
    if payload:
        header["payload_length"] = len(payload) + draw(st.sampled_from([0, 0, 0, -3, 11]))
    if draw(st.booleans()):
        header["version"] = draw(st.text(max_size=8))
    return json.dumps(header).encode() + b"\n" + data_bytes + payload


def _exchange(port: int, events: list[bytes]) -> bytes:
    """Send the events, end our side, and read what the server says until it closes (a plain
    blocking socket: the server runs on the test's event loop meanwhile)."""
    with socket.create_connection((LOOPBACK, port), timeout=30) as sock:
        try:
            for raw in events:
                sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may close first, as it should on a lie
        answer = bytearray()
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass  # closed with our bytes still unread: a reset, as refusing garbage should be
    return bytes(answer)


def _still_serves(port: int) -> None:
    """A new client asks for the server's info and gets it."""
    with socket.create_connection((LOOPBACK, port), timeout=30) as sock:
        sock.sendall(b'{"type": "describe"}\n')
        line = bytearray()
        while not line.endswith(b"\n"):
            chunk = sock.recv(1)
            assert chunk, "the server closed instead of describing itself"
            line += chunk
    assert json.loads(line)["type"] == "info"


async def test_hostile_wyoming_clients(
    start_server: StartServer,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = await start_server()
    counted: list[int] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(events=st.lists(_event(), min_size=1, max_size=5))
    def fuzz(events: list[bytes]) -> None:
        counted.append(len(events))
        answer = _exchange(service.port, events)
        # Whatever it said is Wyoming: JSON header lines (with their data and payloads).
        assert not answer or answer.lstrip().startswith(b"{"), answer[:200]
        _still_serves(service.port)

    with caplog.at_level(logging.WARNING):
        # The server runs on this event loop; the hostile clients block a thread of their own.
        await asyncio.to_thread(fuzz)
    unexpected = [
        record
        for record in caplog.records
        if record.exc_info is not None and record.name.startswith("hydra_core")
    ]
    assert not unexpected, [record.getMessage() for record in unexpected]
    print(f"\nwyoming fuzz: {len(counted)} connections, {sum(counted)} events")
