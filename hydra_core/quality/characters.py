"""The character registry: ``DATA_DIR/characters.json`` and reference images beside it.

Each character has an id made from its name (``"Lady Mira"`` gives ``lady-mira``; a clash gets
``-2``, ``-3``...), reference images kept as files under ``DATA_DIR/characters/<id>/`` (named by
their content, so adding the same image twice keeps one), style notes, and a voice profile for
text-to-speech. The registry file is written through a temporary file renamed over it; a
reference image is checked and on disk before the registry names it, and is deleted only after
the registry no longer does, so a crash never leaves a character pointing at a missing file.
Methods block on the disk; the service calls them off the event loop.
"""

from __future__ import annotations

from collections.abc import Mapping
import json
import logging
from pathlib import Path
import re
import shutil
import threading
from typing import Any
import unicodedata

from ..settings_file import save_settings
from ..state_files import set_aside, write_atomic
from ..wire import dump, load
from .errors import CharacterNotFoundError, QualityError, ReferenceNotFoundError
from .files import StoredImage
from .models import Character

_LOGGER = logging.getLogger(__name__)

REGISTRY_FILE = "characters.json"
REFERENCES_DIR = "characters"
MAX_NAME = 100
MAX_STYLE_NOTES = 4000
MAX_REFERENCES = 64
_EDITABLE = frozenset({"name", "style_notes", "voice"})
_SLUG_JUNK = re.compile(r"[^a-z0-9]+")
_REFERENCE_NAME = re.compile(r"^[0-9a-f]{16}\.(png|jpg|webp)$")


def slugify(name: str) -> str:
    """An id made from a name: lowercase ASCII letters, digits and dashes."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return _SLUG_JUNK.sub("-", ascii_name.lower()).strip("-")[:48].strip("-") or "character"


class CharacterRegistry:
    """Characters kept in the data dir; every change is on disk before the method returns."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / REGISTRY_FILE
        self._folder = data_dir / REFERENCES_DIR
        self._characters: dict[str, Character] = {}
        self._lock = threading.Lock()

    def load(self) -> None:
        """Read the registry; an unreadable file is moved aside (kept, never overwritten)."""
        with self._lock:
            self._characters = self._read()

    def _read(self) -> dict[str, Character]:
        try:
            data = json.loads(self._path.read_text())
            characters = [load(Character, item) for item in data["characters"]]
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError) as err:
            set_aside(self._path, f"not a character registry: {err}")
            return {}
        return {character.id: character for character in characters}

    def list(self) -> list[Character]:
        """Every character, in the order they were added."""
        return list(self._characters.values())

    def get(self, character_id: str) -> Character:
        """One character, or CharacterNotFoundError."""
        character = self._characters.get(character_id)
        if character is None:
            raise CharacterNotFoundError(f"No character {character_id!r}")
        return character

    def create(self, fields: Mapping[str, Any]) -> Character:
        """Add a character from ``name`` (required), ``style_notes`` and ``voice``."""
        values = _checked(fields)
        if "name" not in values:
            raise QualityError("name is required")
        with self._lock:
            base = slugify(values["name"])
            character_id, number = base, 1
            while character_id in self._characters:
                number += 1
                character_id = f"{base}-{number}"
            character = Character(id=character_id, **values)
            self._save({**self._characters, character_id: character})
        return character

    def update(self, character_id: str, fields: Mapping[str, Any]) -> Character:
        """Change any of ``name``, ``style_notes``, ``voice``; the id stays."""
        values = _checked(fields)
        with self._lock:
            character = load(Character, {**dump(self.get(character_id)), **values})
            self._save({**self._characters, character_id: character})
        return character

    def delete(self, character_id: str) -> None:
        """Forget a character and its reference images (its assets stay)."""
        with self._lock:
            self.get(character_id)
            remaining = dict(self._characters)
            del remaining[character_id]
            self._save(remaining)
            shutil.rmtree(self._folder / character_id, ignore_errors=True)

    def add_reference(self, character_id: str, image: StoredImage) -> Character:
        """Keep a checked image as one of the character's references."""
        with self._lock:
            character = self.get(character_id)
            name = f"{image.digest[:16]}.{image.extension}"
            if name in character.references:
                return character
            if len(character.references) >= MAX_REFERENCES:
                raise QualityError(
                    f"{character.name} already has {MAX_REFERENCES} reference images; remove one"
                )
            path = self._folder / character_id / name
            write_atomic(path, image.data)
            changed = load(
                Character, {**dump(character), "references": [*character.references, name]}
            )
            try:
                self._save({**self._characters, character_id: changed})
            except OSError:
                path.unlink(missing_ok=True)
                raise
        return changed

    def remove_reference(self, character_id: str, name: str) -> Character:
        """Stop using one reference image and delete its file."""
        with self._lock:
            character = self.get(character_id)
            if name not in character.references:
                raise ReferenceNotFoundError(f"{character.name} has no reference image {name!r}")
            changed = load(
                Character,
                {
                    **dump(character),
                    "references": [item for item in character.references if item != name],
                },
            )
            self._save({**self._characters, character_id: changed})
            (self._folder / character_id / name).unlink(missing_ok=True)
        return changed

    def reference_path(self, character_id: str, name: str) -> Path:
        """Where a reference image of a character is kept."""
        if not _REFERENCE_NAME.match(name):
            raise ReferenceNotFoundError(f"No reference image {name!r}")
        return self._folder / character_id / name

    def _save(self, characters: dict[str, Character]) -> None:
        save_settings(
            self._path, {"characters": [dump(character) for character in characters.values()]}
        )
        self._characters = characters


def _checked(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The editable fields, checked; QualityError says what is wrong."""
    unknown = sorted(set(fields) - _EDITABLE)
    if unknown:
        raise QualityError(
            f"Unknown field(s): {', '.join(unknown)}; a character has name, style_notes and voice"
            " (reference images have their own route)"
        )
    values: dict[str, Any] = {}
    if "name" in fields:
        name = fields["name"]
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME:
            raise QualityError(f"name must be text of 1 to {MAX_NAME} characters")
        values["name"] = name.strip()
    if "style_notes" in fields:
        notes = fields["style_notes"]
        if notes is None:
            notes = ""
        if not isinstance(notes, str) or len(notes) > MAX_STYLE_NOTES:
            raise QualityError(f"style_notes must be text of at most {MAX_STYLE_NOTES} characters")
        values["style_notes"] = notes.strip()
    if "voice" in fields:
        voice = fields["voice"]
        if voice is None:
            voice = {}
        if not isinstance(voice, dict) or not all(isinstance(key, str) for key in voice):
            raise QualityError('voice must be an object, e.g. {"voice": "af_heart", "speed": 1.0}')
        values["voice"] = voice
    return values
