"""The creative part's options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..options import option


@dataclass(frozen=True, slots=True, kw_only=True)
class CreativeOptions:
    """Chapters through ComfyUI and Kokoro into Ren'Py packages."""

    creative: bool = option(
        True, help="take chapters (Fountain) and make their images, voices and Ren'Py package"
    )
    comfyui_urls: tuple[str, ...] = option(
        (),
        help="comma-separated ComfyUI addresses (http://host:8188); each image goes to the one"
        " with the shortest queue. A user and password in an address never reach the logs",
        secret=True,
        addon=True,
    )
    comfyui_timeout: float = option(
        3600.0,
        help="seconds one image may take in ComfyUI before it is interrupted",
        low=10,
        high=86400,
    )
    comfyui_steps: int = option(30, help="sampler steps of every image", low=1, high=200)
    creative_tries: int = option(
        3,
        help="images drawn at most for one asset while none scores above the threshold; the"
        " best then waits for review",
        low=1,
        high=10,
    )
    creative_dir: Path | None = option(
        None,
        help="where projects' style books (PROJECT/style.yaml), graph template overrides"
        " (templates/NAME.json), images and voice lines are kept",
        default_text="DATA_DIR/creative",
    )
    chapter_watch_dir: Path | None = option(
        None,
        help="a folder watched for chapters: NAME.fountain there (or in PROJECT/) is queued"
        " and moved to queued/, or to refused/ beside NAME.error.txt saying why",
    )
