"""The JSON files the worker keeps settings in: checked when read, written whole or not at all.

A file that is not JSON, not an object, or (``load_typed_settings``) whose values do not fit
the settings' types and ranges is set aside (``state_files.set_aside``: renamed with the time,
logged, listed in ``/api/v1/status``) and the defaults apply; the next change is saved in a
fresh file. Keys the worker does not know are ignored, so an older worker reads a newer one's
file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from .state_files import set_aside, write_atomic
from .wire import adapter, describe, dump

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_LOGGER = logging.getLogger(__name__)
_S = TypeVar("_S", bound="DataclassInstance")


def load_settings(path: Path, fields: Iterable[str]) -> dict[str, Any]:
    """The saved values of ``fields``; nothing when the file is missing or could not be read,
    or when it is not a JSON object (then it is set aside)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as err:
        _LOGGER.warning("Cannot read the settings in %s (the defaults apply): %s", path, err)
        return {}
    try:
        saved = json.loads(text)
    except ValueError as err:
        set_aside(path, f"not JSON: {err}")
        return {}
    if not isinstance(saved, dict):
        set_aside(path, "not a JSON object")
        return {}
    return {key: saved[key] for key in fields if key in saved}


def load_typed_settings(
    path: Path, defaults: _S, problem: Callable[[Mapping[str, Any]], str | None] | None = None
) -> _S:
    """``defaults`` (a settings dataclass) with the values saved in ``path`` over them.

    Each value must have its field's exact JSON type and pass ``problem`` (which names what is
    wrong with the values, or returns None); otherwise the file is set aside and ``defaults``
    apply.
    """
    kind = type(defaults)
    saved = load_settings(path, (field.name for field in fields(kind)))
    if not saved:
        return defaults
    try:
        settings: _S = adapter(kind).validate_json(
            json.dumps({**dump(defaults), **saved}), strict=True
        )
    except ValidationError as err:
        set_aside(path, describe(err.errors(include_url=False)))
        return defaults
    if problem is not None and (found := problem(saved)) is not None:
        set_aside(path, found)
        return defaults
    return settings


def save_settings(path: Path, values: Mapping[str, Any]) -> None:
    """Write the file whole and synced (``state_files.write_atomic``)."""
    write_atomic(path, json.dumps(dict(values)).encode())
