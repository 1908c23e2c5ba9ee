"""A wake phrase at the start of a transcript, removed.

A satellite that hears "Hey Jarvis what's the GPU temperature" said in one breath sends the whole
utterance, wake phrase included (see ``hydra_core.satellite.preroll``: no cut inside it can be
found reliably), and Home Assistant's Assist pipeline passes the transcript on as it is.
Speech-to-text therefore removes a leading wake phrase as Whisper writes it ("Hey Jarvis,",
"Hey, Jarvis.", "Jarvis", or a name within a letter of it: "Jarovis"), and nothing else: a
transcript that mentions Jarvis later on is left alone.
"""

from __future__ import annotations

from difflib import SequenceMatcher
import re

_SEPARATORS = r"[\s,.!?;:\-\u2014\u2026]*"


# How close a heard name must be to the wake phrase's: one letter changed or added ("Darvis"
# 0.83, "Jarovis" 0.92 for "Jarvis"), not another name ("Travis" 0.67, "Jeremy" 0.5).
NAME_SIMILARITY = 0.8


def _match_end(text: str, phrase: str) -> int | None:
    """Where a leading ``phrase`` ends in ``text``, or None."""
    *greeting, name = re.findall(r"[a-z0-9']+", phrase.lower()) or [""]
    head = "".join(f"(?:{re.escape(word)}{_SEPARATORS})?" for word in greeting)
    match = re.match(rf"{_SEPARATORS}{head}([a-z0-9']+){_SEPARATORS}", text, re.IGNORECASE)
    if match is None:
        return None
    heard = match.group(1).lower()
    if heard != name and SequenceMatcher(None, heard, name).ratio() < NAME_SIMILARITY:
        return None
    return match.end()


def strip_wake_phrase(text: str, phrase: str = "Hey Jarvis") -> str:
    """``text`` without a leading ``phrase``; the next word gets a capital, as a sentence's would.

    >>> strip_wake_phrase("Hey Jarvis, what's the GPU temperature?")
    "What's the GPU temperature?"
    >>> strip_wake_phrase("Ask Jarvis to pause")
    'Ask Jarvis to pause'
    """
    end = _match_end(text, phrase) if phrase.strip() else None
    if end is None:
        return text
    rest = text[end:]
    if not rest:
        return text  # nothing but the wake phrase: keep what was heard
    return rest[0].upper() + rest[1:]
