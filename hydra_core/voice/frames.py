"""Reading Wyoming events from a stranger, within limits.

A Wyoming event is a JSON header line, then ``data_length`` bytes of JSON and ``payload_length``
bytes of payload. ``wyoming.event.async_read_event`` reads whatever lengths the header announces,
so one client announcing a payload of a terabyte makes the reader wait for it and hold all of it.
This reader checks each announced length against a cap (and, for the payload, against what the
caller still accepts, such as the rest of a 60 s utterance) before it reads a byte of it, and
raises :class:`ClientError` instead: the connection then ends, with nothing of the refused part
read. The header line itself is bounded by the stream reader's ``limit``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
import json
from typing import Any

from wyoming.event import Event

#: A header is a type and two lengths, some 100 bytes; far more is not a Wyoming client.
MAX_HEADER_BYTES = 16 * 1024
#: Event data is a few fields; text-to-speech text is the largest (see the server's text cap).
MAX_DATA_BYTES = 64 * 1024
#: One payload: an audio chunk is usually 2,560 bytes (80 ms); this is 60 s of 16 kHz speech.
MAX_PAYLOAD_BYTES = 60 * 16000 * 2


class ClientError(Exception):
    """The client sent something the server cannot use; ``code`` goes into the error event."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


#: Called with the event type and the payload length a header announces, before the payload is
#: read; raises (any exception) to refuse it.
PayloadCheck = Callable[[str, int], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class FrameLimits:
    """The largest header line, event data and payload a reader accepts."""

    header_bytes: int = MAX_HEADER_BYTES
    data_bytes: int = MAX_DATA_BYTES
    payload_bytes: int = MAX_PAYLOAD_BYTES


async def read_frame(
    reader: asyncio.StreamReader,
    limits: FrameLimits = FrameLimits(),
    check_payload: PayloadCheck | None = None,
) -> Event | None:
    """The next event, or None when the client closed the connection between events.

    Raises :class:`ClientError` for anything malformed or over a limit, and
    ``asyncio.IncompleteReadError`` when the client leaves in the middle of an event.
    """
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as err:
        if not err.partial.strip():
            return None
        raise
    except asyncio.LimitOverrunError as err:
        raise ClientError(
            "event_too_large",
            f"An event header is at most {limits.header_bytes} bytes; this one is longer",
        ) from err
    if len(line) > limits.header_bytes:
        raise ClientError(
            "event_too_large",
            f"An event header is at most {limits.header_bytes} bytes, not {len(line)}",
        )
    header = _json_object(line, "The event header")
    event_type = header.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise ClientError("invalid_event", "The event header has no type")
    data = header.get("data") or {}
    if not isinstance(data, dict):
        raise ClientError("invalid_event", "The event's data is not a JSON object")
    data_length = _length(header, "data_length", limits.data_bytes, "event data")
    if data_length:
        data = {**data, **_json_object(await reader.readexactly(data_length), "The event data")}
    payload_length = _length(header, "payload_length", limits.payload_bytes, "payload")
    if payload_length and check_payload is not None:
        check_payload(event_type, payload_length)
    payload = await reader.readexactly(payload_length) if payload_length else None
    return Event(type=event_type, data=data, payload=payload)


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as err:
        raise ClientError("invalid_event", f"{what} is not JSON: {err}") from err
    if not isinstance(value, dict):
        raise ClientError("invalid_event", f"{what} is not a JSON object")
    return value


def _length(header: dict[str, Any], key: str, cap: int, what: str) -> int:
    value = header.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ClientError("invalid_event", f"{key} must be a whole number of bytes, not {value!r}")
    if value > cap:
        raise ClientError(
            "event_too_large", f"The {what} of one event is at most {cap} bytes, not {value}"
        )
    return value
