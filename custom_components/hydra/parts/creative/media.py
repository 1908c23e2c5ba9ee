"""A chapter file from Home Assistant's media folders (``media_dirs``: /media, or
<config>/media, and any the user added).

The file is named as the media browser names it (``media-source://media_source/local/
chapters/3.fountain``), as a path inside a media folder (``chapters/3.fountain``, tried in each
folder in turn), or as an absolute path that lies in one. Anything that resolves outside them,
through ``..`` or a symbolic link, is refused: the action is for chapters, not for reading
Home Assistant's own files.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError

from ...const import DOMAIN, MAX_CHAPTER_FILE_BYTES

MEDIA_SOURCE: Final = "media-source://media_source/"


def _refuse(key: str, file: str) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders={"file": file, "limit": f"{MAX_CHAPTER_FILE_BYTES:,}"},
    )


def _candidates(media_dirs: Mapping[str, str], file: str) -> list[tuple[Path, Path]]:
    """Each (media folder, path) the name may mean."""
    if file.startswith(MEDIA_SOURCE):
        folder, _, inside = file.removeprefix(MEDIA_SOURCE).partition("/")
        base = media_dirs.get(folder)
        return [] if base is None else [(Path(base), Path(base) / inside)]
    return [(Path(base), Path(base) / file) for base in media_dirs.values()]


def read_chapter_file(media_dirs: Mapping[str, str], file: str) -> str:
    """The chapter's text (blocking: run it in the executor)."""
    # Why nothing was read: nothing by that name in the folders, or what is there leads out.
    missing = escapes = False
    for base, path in _candidates(media_dirs, file.strip()):
        resolved = path.resolve()
        if not resolved.is_relative_to(base.resolve()):
            escapes |= resolved.exists()
        elif resolved.is_file():
            break
        else:
            missing = True
    else:
        outside = escapes or not missing
        raise _refuse("chapter_file_outside_media" if outside else "chapter_file_not_found", file)
    with resolved.open("rb") as chapter:
        data = chapter.read(MAX_CHAPTER_FILE_BYTES + 1)
    if len(data) > MAX_CHAPTER_FILE_BYTES:
        raise _refuse("chapter_file_too_large", file)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise _refuse("chapter_file_not_text", file) from err


async def async_read_chapter_file(hass: HomeAssistant, file: str) -> str:
    """The text of a chapter file in one of Home Assistant's media folders."""
    return await hass.async_add_executor_job(read_chapter_file, dict(hass.config.media_dirs), file)
