"""Which files ``hydra.process_chapter`` may read: chapters in Home Assistant's media folders,
named as the media browser names them or as paths; nothing outside them, however named."""

from __future__ import annotations

from pathlib import Path

from homeassistant.exceptions import ServiceValidationError
import pytest

from custom_components.hydra.const import MAX_CHAPTER_FILE_BYTES
from custom_components.hydra.parts.creative.media import read_chapter_file

CHAPTER = "Title: The Glass Crown\n\nINT. THRONE ROOM - NIGHT\n\nCandles gutter.\n"


@pytest.fixture
def media(tmp_path: Path) -> dict[str, str]:
    """Two media folders, as ``media_dirs`` holds them, and a secret next to them."""
    (tmp_path / "media" / "chapters").mkdir(parents=True)
    (tmp_path / "media" / "chapters" / "3.fountain").write_text(CHAPTER)
    (tmp_path / "recordings").mkdir()
    (tmp_path / "recordings" / "4.fountain").write_bytes(b"\xef\xbb\xbf" + CHAPTER.encode())
    (tmp_path / "secrets.yaml").write_text("token: hunter2\n")
    return {"local": str(tmp_path / "media"), "recordings": str(tmp_path / "recordings")}


def _refusal(media: dict[str, str], file: str) -> str | None:
    with pytest.raises(ServiceValidationError) as caught:
        read_chapter_file(media, file)
    return caught.value.translation_key


def test_a_chapter_is_found_however_it_is_named(media: dict[str, str]) -> None:
    """A path in any media folder, an absolute path inside one, or the media browser's id; a
    byte-order mark is not part of the text."""
    assert read_chapter_file(media, "chapters/3.fountain") == CHAPTER
    assert read_chapter_file(media, "4.fountain") == CHAPTER
    assert read_chapter_file(media, f"{media['local']}/chapters/3.fountain") == CHAPTER
    assert read_chapter_file(media, "media-source://media_source/recordings/4.fountain") == CHAPTER


def test_nothing_outside_the_media_folders_is_read(media: dict[str, str], tmp_path: Path) -> None:
    """Not through .., an absolute path, the media browser's id or a symbolic link."""
    (Path(media["local"]) / "link.fountain").symlink_to(tmp_path / "secrets.yaml")
    for file in (
        "../secrets.yaml",
        "chapters/../../secrets.yaml",
        str(tmp_path / "secrets.yaml"),
        "media-source://media_source/local/../secrets.yaml",
        "media-source://media_source/elsewhere/secrets.yaml",
        "link.fountain",
    ):
        assert _refusal(media, file) == "chapter_file_outside_media", file
    assert _refusal({}, "chapters/3.fountain") == "chapter_file_outside_media"


def test_missing_large_and_binary_files_are_refused(media: dict[str, str]) -> None:
    """A name in a media folder that is no file, a file over the limit, one not in UTF-8."""
    local = Path(media["local"])
    assert _refusal(media, "chapters/9.fountain") == "chapter_file_not_found"
    assert _refusal(media, "chapters") == "chapter_file_not_found"
    (local / "big.fountain").write_text("x" * (MAX_CHAPTER_FILE_BYTES + 1))
    assert _refusal(media, "big.fountain") == "chapter_file_too_large"
    (local / "limit.fountain").write_text("x" * MAX_CHAPTER_FILE_BYTES)
    assert len(read_chapter_file(media, "limit.fountain")) == MAX_CHAPTER_FILE_BYTES
    (local / "cover.png").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    assert _refusal(media, "cover.png") == "chapter_file_not_text"
