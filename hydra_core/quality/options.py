"""The quality part's options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..options import option
from .learning import DEFAULT_THRESHOLD


@dataclass(frozen=True, slots=True, kw_only=True)
class QualityOptions:
    """CLIP scoring, the character registry and the review loop."""

    quality: bool = option(
        True,
        help="score images with CLIP and keep them for review (scoring needs"
        " hydra-homelab[quality])",
    )
    quality_model: str = option("ViT-B-32", help="open_clip architecture that scores images")
    quality_pretrained: str = option(
        "laion2b_s34b_b79k",
        help="open_clip weights: a pretrained tag or a file; 'none' runs random weights (tests:"
        " the scores mean nothing)",
    )
    quality_device: str = option(
        "auto",
        help="where CLIP runs: auto is CUDA when PyTorch sees a GPU",
        pattern=r"auto|cpu|cuda(:\d+)?",
        pattern_text="auto, cpu, cuda or cuda:N",
    )
    quality_offline: bool = option(
        False, help="never download CLIP weights; use only what is in MODELS_DIR/clip"
    )
    quality_config_dir: Path | None = option(
        None,
        help="folder of extra open_clip architecture JSONs, usable as quality_model by file name",
    )
    quality_threshold: float = option(
        DEFAULT_THRESHOLD,
        help="overall score (0-100) at or above which an asset is accepted without review, until"
        " decisions calibrate it per character",
        low=0,
        high=100,
    )
    quality_idle_unload: float = option(
        600.0,
        help="seconds the CLIP model may sit unused before it is unloaded; 0 keeps it",
        low=0,
        high=86400,
    )
