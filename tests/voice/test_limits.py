"""What a stranger on the Wyoming port can cost the worker: bounded, refused early, and never the
worker's API. Driven over loopback TCP against the real server with the real models."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
import time

import aiohttp
import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import async_read_event, async_write_event
from wyoming.info import Describe, Info
from wyoming.ping import Ping
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart
from wyoming.wake import Detect

from hydra_core.voice.options import VoiceOptions
from hydra_core.voice.part import VoicePart
from hydra_core.voice.service import VoiceService
from tests.worker.conftest import ServeWorker, http, serve_app, serve_worker

from .test_server import CHUNK, LOOPBACK, StartServer, _until, start_server

__all__ = ["http", "serve_app", "serve_worker", "start_server"]

pytestmark = pytest.mark.usefixtures("loopback_sockets")

SECOND = 16000 * 2
TOKEN = "voice-limits-token-0123456789"


async def _raw(service: VoiceService) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(LOOPBACK, service.port)


async def _header(writer: asyncio.StreamWriter, event_type: str, **fields: object) -> None:
    writer.write(json.dumps({"type": event_type, **fields}).encode() + b"\n")
    await writer.drain()


async def _error(reader: asyncio.StreamReader, within: float = 10) -> Error:
    event = await asyncio.wait_for(async_read_event(reader), within)
    assert event is not None, "the connection closed without an error event"
    assert Error.is_type(event.type), f"expected an error, got {event.type}"
    return Error.from_event(event)


async def _closed(reader: asyncio.StreamReader, within: float = 10) -> bool:
    """Whether the server ends the connection within ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


@pytest.mark.parametrize(
    ("fields", "mentions"),
    [
        ({"payload_length": 2**40}, "payload"),
        ({"data_length": 2**30}, "data"),
    ],
)
async def test_an_announced_huge_event_is_refused_before_it_is_read(
    start_server: StartServer, fields: dict[str, int], mentions: str
) -> None:
    service = await start_server()
    reader, writer = await _raw(service)

    await _header(writer, "audio-chunk", data={"rate": 16000, "width": 2, "channels": 1}, **fields)

    error = await _error(reader)
    assert error.code == "event_too_large"
    assert mentions in error.text
    assert await _closed(reader)
    writer.close()


async def test_a_client_streaming_a_huge_payload_is_cut_off(start_server: StartServer) -> None:
    service = await start_server()
    reader, writer = await _raw(service)
    await _header(writer, "audio-chunk", data={"rate": 16000, "width": 2}, payload_length=2**34)

    sent = 0
    block = bytes(1 << 20)
    try:
        async with asyncio.timeout(20):
            while sent < 256 << 20:
                writer.write(block)
                await writer.drain()
                sent += len(block)
    except (ConnectionError, TimeoutError):
        pass

    assert sent < 64 << 20, f"the server was still reading after {sent >> 20} MiB"
    assert await _closed(reader)
    writer.close()


async def test_an_endless_header_line_is_cut_off(start_server: StartServer) -> None:
    service = await start_server()
    reader, writer = await _raw(service)

    writer.write(b'{"type": "' + b"x" * (32 * 1024))
    await writer.drain()

    assert await _closed(reader, within=5), "the server kept reading a 32 KiB header"
    writer.close()


async def test_speech_past_60_s_is_refused_when_announced(start_server: StartServer) -> None:
    service = await start_server()
    reader, writer = await _raw(service)
    await async_write_event(Transcribe(language="en").event(), writer)
    await async_write_event(AudioStart(16000, 2, 1).event(), writer)
    for _ in range(50):
        await async_write_event(AudioChunk(16000, 2, 1, bytes(SECOND)).event(), writer)

    # Announce 20 s more and send none of it: the answer must not wait for the bytes.
    await _header(
        writer, "audio-chunk", data={"rate": 16000, "width": 2}, payload_length=20 * SECOND
    )

    error = await _error(reader)
    assert error.code == "audio_too_long"
    assert "60 s" in error.text
    writer.close()


async def test_wake_audio_far_ahead_of_real_time_is_refused(start_server: StartServer) -> None:
    service = await start_server()

    async with AsyncTcpClient(LOOPBACK, service.port) as client:
        await client.write_event(Detect(names=["hey_jarvis"]).event())
        await client.write_event(AudioStart(16000, 2, 1).event())
        silence = bytes(CHUNK)
        for _ in range(90 * SECOND // CHUNK):  # 90 s of audio, sent as fast as it goes
            await client.write_event(AudioChunk(16000, 2, 1, silence).event())
        await client.write_event(Ping().event())
        events = await _until(client, "pong")

    error = Error.from_event(events[-1])
    assert error.code == "audio_too_fast"
    assert "real time" in error.text


async def test_text_to_speech_text_over_the_limit_gets_an_error(
    start_server: StartServer,
) -> None:
    service = await start_server()

    async with AsyncTcpClient(LOOPBACK, service.port) as client:
        await client.write_event(Synthesize(text="The GPUs are cool. " * 400).event())
        events = await _until(client, "audio-start", within=30)

    error = Error.from_event(events[-1])
    assert error.code == "text_too_long"
    assert "5000 characters" in error.text


async def test_streamed_text_over_the_limit_gets_an_error(start_server: StartServer) -> None:
    service = await start_server()

    async with AsyncTcpClient(LOOPBACK, service.port) as client:
        await client.write_event(SynthesizeStart().event())
        for _ in range(6):  # nothing to speak, so the server only keeps the text
            await client.write_event(SynthesizeChunk(text=" " * 1000).event())
        await client.write_event(Ping().event())
        events = await _until(client, "pong")

    error = Error.from_event(events[-1])
    assert error.code == "text_too_long"


async def test_connections_over_the_limit_are_refused_and_the_rest_served(
    start_server: StartServer,
) -> None:
    service = await start_server()
    limit = VoiceOptions().voice_max_connections
    clients = [AsyncTcpClient(LOOPBACK, service.port) for _ in range(limit)]
    for client in clients:
        await client.connect()
        await client.write_event(Ping().event())
        await _until(client, "pong")

    reader, writer = await _raw(service)
    error = await _error(reader)
    assert error.code == "too_many_connections"
    assert str(limit) in error.text
    assert await _closed(reader)
    writer.close()

    await clients[0].write_event(Ping().event())
    await _until(clients[0], "pong")  # those already in are still served
    await clients.pop().disconnect()
    await asyncio.sleep(0.2)
    async with AsyncTcpClient(LOOPBACK, service.port) as late:
        await late.write_event(Ping().event())
        await _until(late, "pong")
    for client in clients:
        await client.disconnect()


async def test_a_slow_or_silent_client_is_closed_after_the_idle_timeout(
    start_server: StartServer,
) -> None:
    service = await start_server(voice_idle_timeout=1.0)
    silent_reader, silent = await _raw(service)
    slow_reader, slow = await _raw(service)

    started = time.monotonic()
    answer = None
    for byte in b'{"type": "ping"}':  # one byte every 0.2 s: never a whole event in time
        slow.write(bytes([byte]))
        await slow.drain()
        try:
            answer = await asyncio.wait_for(async_read_event(slow_reader), 0.2)
        except TimeoutError:
            continue
        break

    assert answer is not None, "the server waited for the whole header"
    assert Error.from_event(answer).code == "idle_timeout"
    assert time.monotonic() - started < 3
    assert (await _error(silent_reader, within=5)).code == "idle_timeout"
    for reader in (silent_reader, slow_reader):
        assert await _closed(reader, within=5)
    silent.close()
    slow.close()


async def test_describe_does_not_hold_up_other_clients(
    start_server: StartServer, tmp_path: Path
) -> None:
    """Describing reads the custom wake word folder; a slow folder must not stall the server."""
    folder = tmp_path / "wake_words"
    folder.mkdir()
    for index in range(8000):
        (folder / f"junk{index}.tflite").write_bytes(b"not a model")
    service = await start_server(wake_models_dir=folder)

    async with (
        AsyncTcpClient(LOOPBACK, service.port) as describing,
        AsyncTcpClient(LOOPBACK, service.port) as pinging,
    ):
        await describing.write_event(Describe().event())
        answer = asyncio.ensure_future(_until(describing, "info"))
        slowest = 0.0
        while not answer.done():
            sent = time.monotonic()
            await pinging.write_event(Ping().event())
            await _until(pinging, "pong")
            slowest = max(slowest, time.monotonic() - sent)
        info = Info.from_event((await answer)[-1])

    assert "hey_jarvis" in {model.name for model in info.wake[0].models}
    assert slowest < 1.5, f"a ping waited {slowest:.2f} s while another client described"


async def test_status_answers_while_every_voice_client_waits_for_speech(
    start_server: StartServer, serve_worker: ServeWorker, http: aiohttp.ClientSession
) -> None:
    """Busy voice clients (more than the default thread pool has threads) do not hold up
    ``/api/v1/status``, which Home Assistant polls to keep every entity available."""
    service = await start_server()
    url = await serve_worker(token=TOKEN, parts=[VoicePart(service)])
    headers = {"Authorization": f"Bearer {TOKEN}"}
    sentence = (
        "The first graphics card is running at fifty one degrees while the second one, which "
        "has been idle since the backup finished this morning, sits at thirty eight degrees"
    )
    clients = [AsyncTcpClient(LOOPBACK, service.port) for _ in range(12)]
    for client in clients:
        await client.connect()
        await client.write_event(Synthesize(text=sentence).event())
    speech = [asyncio.ensure_future(_until(c, "audio-start", within=120)) for c in clients]
    await asyncio.wait(speech, return_when=asyncio.FIRST_COMPLETED)  # so every request is in

    waits = []
    for _ in range(3):
        started = time.monotonic()
        async with http.get(f"{url}/api/v1/status", headers=headers) as response:
            assert response.status == 200
        waits.append(time.monotonic() - started)
    for task in speech:
        task.cancel()
    for client in clients:
        await client.disconnect()

    assert max(waits) < 1.0, f"/api/v1/status took {max(waits):.2f} s behind the voice clients"
