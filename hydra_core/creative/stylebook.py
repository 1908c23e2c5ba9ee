"""The style book: a project's look and its characters' styles, read from JSON or YAML.

The file's values are checked through the wire layer as strictly as a request body (exact JSON
types, no unknown field, the ranges the models declare), so a typo such as ``lightning`` or a
seed written as ``"7"`` is refused with the field's path instead of being ignored. YAML is read
with ``yaml.safe_load`` and then checked as the JSON it is equivalent to, so both formats mean
the same; a YAML value JSON has no form for (a date) is refused by its field's type. Voices are
checked for their form (``af_heart`` or ``af_heart:0.6,af_bella:0.4``); whether Kokoro has
them is for the voice step, which knows the voices installed.
"""

from __future__ import annotations

from dataclasses import replace
import json
from pathlib import Path
import re

from pydantic import ValidationError
import yaml

from ..errors import Refusal
from ..wire import adapter, describe
from .models import DEFAULT_LIGHTING, StyleBook

_VOICE_NAME = re.compile(r"^[a-z]{2}_[a-z0-9]+$")
YAML_SUFFIXES = (".yaml", ".yml")


class StyleBookError(Refusal, code="invalid_style_book", status=400):
    """A style book refused: what is wrong, and where."""


def voice_blend(voice: str) -> tuple[tuple[str, float], ...]:
    """A voice or blend as (Kokoro voice, weight) pairs, weights summing to 1, by name.

    ``"af_heart:0.6,af_bella:0.4"`` gives ``(("af_bella", 0.4), ("af_heart", 0.6))``; a weight
    left out is 1. Raises ``ValueError`` naming what is wrong.
    """
    parts: dict[str, float] = {}
    for part in voice.split(","):
        name, _, weight_text = part.strip().partition(":")
        if not _VOICE_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a Kokoro voice (such as af_heart)")
        try:
            weight = float(weight_text) if weight_text else 1.0
        except ValueError:
            weight = 0.0
        if not 0 < weight < float("inf"):
            raise ValueError(f"a weight must be a positive number, not {weight_text!r}")
        parts[name] = parts.get(name, 0.0) + weight
    total = sum(parts.values())
    return tuple((name, parts[name] / total) for name in sorted(parts))


def canonical_voice(voice: str) -> str:
    """One spelling per blend: ``af_heart:0.6,af_bella:0.4`` and ``af_bella:2,af_heart:3`` are
    both ``af_bella:0.4,af_heart:0.6``; a single voice is its name."""
    blend = voice_blend(voice)
    if len(blend) == 1:
        return blend[0][0]
    return ",".join(f"{name}:{round(weight, 4):g}" for name, weight in blend)


def parse_style_book(text: str | bytes) -> StyleBook:
    """A style book from its JSON text; ``StyleBookError`` names what is wrong."""
    try:
        book: StyleBook = adapter(StyleBook).validate_json(text, strict=True)
    except ValidationError as err:
        errors = err.errors(include_url=False)
        if any(error["type"] == "json_invalid" for error in errors):
            raise StyleBookError(f"The style book is not valid JSON: {errors[0]['msg']}") from None
        if any(not error["loc"] for error in errors):
            raise StyleBookError("The style book must be an object") from None
        raise StyleBookError(f"The style book is wrong: {describe(errors)}") from None
    characters = {}
    for character_id, style in book.characters.items():
        try:
            voice = canonical_voice(style.voice.voice)
        except ValueError as err:
            raise StyleBookError(
                f"The style book is wrong: characters.{character_id}.voice.voice: {err}"
            ) from None
        characters[character_id] = replace(style, voice=replace(style.voice, voice=voice))
    # The book's lighting adds to the defaults and overrides them time by time.
    return replace(book, lighting={**DEFAULT_LIGHTING, **book.lighting}, characters=characters)


def load_style_book(path: Path) -> StyleBook:
    """A style book from a ``.json``, ``.yaml`` or ``.yml`` file."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() not in YAML_SUFFIXES:
        return parse_style_book(text)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise StyleBookError(f"The style book is not valid YAML: {err}") from None
    # A value JSON has no form for (a date) becomes text, which the field's type then refuses.
    return parse_style_book(json.dumps({} if data is None else data, default=str))
