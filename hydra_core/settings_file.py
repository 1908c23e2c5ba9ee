"""The JSON files the worker keeps settings in: read leniently, written whole or not at all."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
import json
import logging
from pathlib import Path
from typing import Any

_LOGGER = logging.getLogger(__name__)


def load_settings(path: Path, fields: Iterable[str]) -> dict[str, Any]:
    """The saved values of ``fields``; nothing when the file is missing, unreadable or not an
    object (the last two are logged: the defaults apply)."""
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        _LOGGER.warning("Ignoring unreadable settings in %s: %s", path, err)
        return {}
    if not isinstance(saved, dict):
        _LOGGER.warning("Ignoring settings in %s: not a JSON object", path)
        return {}
    return {key: saved[key] for key in fields if key in saved}


def save_settings(path: Path, values: Mapping[str, Any]) -> None:
    """Write the file through a temporary one renamed over it, so a crash leaves old or new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(dict(values)))
    temporary.replace(path)
