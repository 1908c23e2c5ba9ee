"""CLIP image and text embeddings with open_clip, loaded on first use and unloaded when idle.

The model is an open_clip architecture name (``ViT-B-32``; a folder of extra architecture
JSONs can add more) with a pretrained tag (``laion2b_s34b_b79k``), a weights file path, or
``None`` / ``"none"`` for random weights from a fixed seed (the real code at the real speed,
but scores that mean nothing: ``reason`` says so). Tagged weights are downloaded on first use
into ``<models_dir>/clip`` (open_clip's cache: a Hugging Face cache folder, or the file itself
for weights published by URL); in offline mode a missing file is a clear reason instead.
``local-dir:`` and ``hf-hub:`` model names are handed to open_clip as they are (the latter
downloads, so offline mode refuses it).

torch and open_clip are imported when the model loads, never at import, so this module imports
without them (``reason`` then says what to install).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
import functools
import gc
import importlib.util
import logging
import os
from pathlib import Path
import threading
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ..voice.loader import LazyModel, ModelClosedError, ModelState
from .errors import QualityError, QualityUnavailableError

if TYPE_CHECKING:
    from PIL.Image import Image
    import torch

_LOGGER = logging.getLogger(__name__)
R = TypeVar("R")

DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"
#: pretrained values that mean random weights.
RANDOM_WEIGHTS = ("", "none", "random")
RANDOM_WEIGHTS_REASON = (
    "CLIP runs with random weights (pretrained none): the scores mean nothing; "
    "set a pretrained tag such as laion2b_s34b_b79k"
)
MISSING_PACKAGES_REASON = (
    "CLIP scoring needs torch and open-clip-torch: pip install 'hydra-homelab[quality]'"
)
# open_clip's file names for Hugging Face hosted weights (open_clip.constants).
_HF_WEIGHTS = "open_clip_pytorch_model.bin"
_HF_SAFE_WEIGHTS = "open_clip_model.safetensors"
# The model's "shortest side" resize scales the long side along with the short one, so a long
# thin image would grow huge before the centre crop. Beyond this aspect ratio the long side is
# first cut to it around the centre, which leaves the crop the model sees unchanged.
_MAX_ASPECT = 2

_added_configs: set[Path] = set()
_config_lock = threading.Lock()


@functools.cache
def missing_packages() -> tuple[str, ...]:
    """The packages CLIP scoring needs that are not installed (found without importing)."""
    return tuple(
        name for name in ("torch", "torchvision", "open_clip") if not importlib.util.find_spec(name)
    )


def add_model_configs(folder: Path) -> None:
    """Make the open_clip architecture JSONs in ``folder`` loadable by their file stem."""
    import open_clip  # noqa: PLC0415

    folder = folder.resolve()
    with _config_lock:
        if folder not in _added_configs:
            open_clip.add_model_config(folder)
            _added_configs.add(folder)


def cached_weights(tag_cfg: dict[str, Any], cache_dir: Path) -> str | None:
    """The weights file of an open_clip pretrained tag if it is in ``cache_dir`` already."""
    if hub := tag_cfg.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache  # noqa: PLC0415

        repo_id, filename = os.path.split(hub)
        filename = filename or _HF_WEIGHTS
        candidates = [filename]
        if filename == _HF_WEIGHTS:
            candidates.insert(0, _HF_SAFE_WEIGHTS)
        elif filename.endswith((".bin", ".pth")):
            candidates.insert(0, filename[:-4] + ".safetensors")
        for name in candidates:
            found = try_to_load_from_cache(repo_id, name, cache_dir=cache_dir)
            if isinstance(found, str):
                return found
    if url := tag_cfg.get("url"):
        candidate = cache_dir / os.path.basename(url)
        if candidate.is_file():
            return str(candidate)
    return None


def resolve_weights(
    model: str,
    pretrained: str,
    cache_dir: Path,
    *,
    offline: bool,
    on_download: Callable[[bool], None] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The weights file for ``pretrained`` (a tag or a file path) and the tag's settings
    (preprocessing, QuickGELU; empty for a file), downloading the file unless ``offline``.

    Raises QualityUnavailableError.
    """
    import open_clip  # noqa: PLC0415

    if (path := Path(pretrained).expanduser()).is_file():
        return str(path), {}
    tag_cfg = open_clip.get_pretrained_cfg(model.replace("/", "-"), pretrained)
    if not tag_cfg:
        tags = open_clip.list_pretrained_tags_by_model(model.replace("/", "-"))
        known = ", ".join(tags) if tags else "none"
        raise QualityUnavailableError(
            f"CLIP model {model!r} has no pretrained weights {pretrained!r} and no such file "
            f"exists (tags known for it: {known}; 'none' gives random weights)"
        )
    if found := cached_weights(tag_cfg, cache_dir):
        return found, tag_cfg
    if offline:
        raise QualityUnavailableError(
            f"The CLIP weights {model} / {pretrained} are not in {cache_dir} and offline mode is "
            "on: turn offline mode off to download them there, or copy them in"
        )
    _LOGGER.info("Downloading CLIP weights %s / %s into %s", model, pretrained, cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    if on_download is not None:
        on_download(True)
    try:
        found = open_clip.download_pretrained(tag_cfg, cache_dir=str(cache_dir))
    except Exception as err:
        raise QualityUnavailableError(
            f"Could not download the CLIP weights {model} / {pretrained} into {cache_dir}: {err}"
        ) from err
    finally:
        if on_download is not None:
            on_download(False)
    if not found:
        raise QualityUnavailableError(f"open_clip has no download for {model} / {pretrained}")
    return found, tag_cfg


def pick_device(option: str) -> str:
    """``auto``: cuda when torch sees a GPU, else cpu; anything else as given."""
    if option != "auto":
        return option
    import torch  # noqa: PLC0415

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(slots=True)
class LoadedClip:
    """A loaded open_clip model with its own preprocessing and tokenizer."""

    model: Any
    preprocess: Callable[[Image], torch.Tensor]
    tokenizer: Callable[[list[str]], torch.Tensor]
    device: str
    embed_dim: int
    crops_shortest_side: bool

    def prepare(self, image: Image) -> torch.Tensor:
        """The model's preprocessing, after cutting an extreme aspect ratio (see above)."""
        width, height = image.size
        short = min(width, height)
        if self.crops_shortest_side and max(width, height) > _MAX_ASPECT * short:
            keep = _MAX_ASPECT * short
            if width > height:
                left = (width - keep) // 2
                image = image.crop((left, 0, left + keep, height))
            else:
                top = (height - keep) // 2
                image = image.crop((0, top, width, top + keep))
        return self.preprocess(image)


class ClipEngine:
    """open_clip embeddings of images and texts (float32, L2-normalised rows)."""

    def __init__(
        self,
        models_dir: Path,
        *,
        model: str = DEFAULT_MODEL,
        pretrained: str | None = DEFAULT_PRETRAINED,
        device: str = "auto",
        offline: bool = False,
        idle_unload_s: float = 300.0,
        config_dir: Path | None = None,
        seed: int = 0,
    ) -> None:
        """``models_dir``: the worker's models folder (weights go to its ``clip`` folder);
        ``pretrained``: a tag, a weights file, or None / "none" for random weights from
        ``seed``; ``device``: auto, cpu, cuda, cuda:1...; ``config_dir``: extra open_clip
        architecture JSONs; ``idle_unload_s``: 0 keeps the model loaded."""
        self.models_dir = Path(models_dir)
        self.model = model
        self.pretrained = None if (pretrained or "").lower() in RANDOM_WEIGHTS else pretrained
        self.device_option = device
        self.offline = offline
        self.config_dir = config_dir
        self.seed = seed
        self._device: str | None = None if device == "auto" else device
        self._embed_dim: int | None = None
        self._downloading = False
        self._closed = False
        self._lazy: LazyModel[LoadedClip] = LazyModel(
            f"CLIP {self.name}",
            self._load,
            unload=_unload,
            idle_unload_s=idle_unload_s,
        )

    @property
    def name(self) -> str:
        """The model and its weights, for logs and status."""
        return f"{self.model} ({self.pretrained or 'random weights'})"

    @property
    def cache_dir(self) -> Path:
        """Where downloaded weights are kept."""
        return self.models_dir / "clip"

    @property
    def random_weights(self) -> bool:
        """Whether the model runs with random weights (its scores mean nothing)."""
        return self.pretrained is None and ":" not in self.model

    @property
    def lazy(self) -> LazyModel[LoadedClip]:
        """The model's loader (load count, load time, last use)."""
        return self._lazy

    @property
    def state(self) -> str:
        """not_loaded, downloading, loading, loaded or error."""
        if self._downloading:
            return "downloading"
        return self._lazy.state.value

    @property
    def available(self) -> bool:
        """Whether scoring can run: the packages are there and the last load did not fail.

        A failed load is tried again on the next use (a download may work by then).
        """
        return not missing_packages() and self._lazy.state is not ModelState.ERROR

    @property
    def reason(self) -> str | None:
        """Why scoring cannot run, or that its scores mean nothing (random weights); else None."""
        if missing_packages():
            return MISSING_PACKAGES_REASON
        if self._lazy.state is ModelState.ERROR:
            return self._lazy.error
        if self.random_weights:
            return RANDOM_WEIGHTS_REASON
        return None

    @property
    def device(self) -> str | None:
        """The device the model runs on (``auto`` is resolved at the first load)."""
        return self._device

    @property
    def embed_dim(self) -> int | None:
        """The embedding size, known once the model has loaded."""
        return self._embed_dim

    async def async_load(self) -> None:
        """Load (downloading first if needed) the model now."""
        await self._run(lambda _: None)

    async def async_embed_images(
        self, images: Sequence[Image], *, batch_size: int = 8
    ) -> np.ndarray:
        """The (n, d) float32 unit-length embeddings of RGB images, ``batch_size`` at a time."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        items = list(images)
        return await self._run(lambda clip: _embed_images(clip, items, batch_size))

    async def async_embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """The (n, d) float32 unit-length embeddings of texts (cut to the model's context)."""
        items = list(texts)
        return await self._run(lambda clip: _embed_texts(clip, items))

    async def async_unload(self) -> bool:
        """Unload now (once no inference holds the model); True if it was loaded."""
        return await self._lazy.unload()

    async def async_close(self) -> None:
        """Refuse new work, wait for running inferences, and free the model."""
        self._closed = True
        await self._lazy.close()

    async def _run(self, func: Callable[[LoadedClip], R]) -> R:
        if self._closed:
            raise QualityUnavailableError("The CLIP engine is closed")
        if missing_packages():
            raise QualityUnavailableError(MISSING_PACKAGES_REASON)
        try:
            return await self._lazy.run(func)
        except QualityError:
            raise
        except ModelClosedError as err:
            raise QualityUnavailableError("The CLIP engine is closed") from err
        except Exception as err:
            if self._lazy.state is ModelState.ERROR:
                raise QualityUnavailableError(f"Could not load CLIP {self.name}: {err}") from err
            if type(err).__name__ == "OutOfMemoryError":
                raise QualityUnavailableError(
                    f"Not enough memory on {self._device} to run CLIP: {err}"
                ) from err
            raise

    def _set_downloading(self, downloading: bool) -> None:
        self._downloading = downloading

    def _load(self) -> LoadedClip:
        """Build the model (blocking; runs in a worker thread)."""
        import open_clip  # noqa: PLC0415
        import torch  # noqa: PLC0415

        if self.config_dir is not None:
            add_model_configs(self.config_dir)
        weights: str | None = None
        tag_cfg: dict[str, Any] = {}
        if ":" in self.model:  # local-dir: or hf-hub:, where open_clip finds the weights
            if self.offline and self.model.startswith("hf-hub:"):
                raise QualityUnavailableError(
                    f"{self.model} is fetched from the Hugging Face Hub, and offline mode is on"
                )
        elif self.pretrained is not None:
            weights, tag_cfg = resolve_weights(
                self.model,
                self.pretrained,
                self.cache_dir,
                offline=self.offline,
                on_download=self._set_downloading,
            )
        device = pick_device(self.device_option)
        # Random weights come from this seed without disturbing the process's random state;
        # open_clip builds the model on the CPU before moving it, so the device does not matter.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model, _, preprocess = open_clip.create_model_and_transforms(
                self.model,
                pretrained=weights,
                device=device,
                cache_dir=str(self.cache_dir),
                force_quick_gelu=bool(tag_cfg.get("quick_gelu", False)),
                image_mean=tag_cfg.get("mean"),
                image_std=tag_cfg.get("std"),
                image_interpolation=tag_cfg.get("interpolation"),
                image_resize_mode=tag_cfg.get("resize_mode"),
            )
        model.eval()
        tokenizer = open_clip.get_tokenizer(self.model, cache_dir=str(self.cache_dir))
        preprocess_cfg = open_clip.get_model_preprocess_cfg(model)
        with torch.inference_mode():
            embed_dim = int(model.encode_text(tokenizer([""]).to(device)).shape[-1])
        self._device, self._embed_dim = device, embed_dim
        return LoadedClip(
            model=model,
            preprocess=preprocess,
            tokenizer=tokenizer,
            device=device,
            embed_dim=embed_dim,
            crops_shortest_side=preprocess_cfg.get("resize_mode", "shortest") == "shortest",
        )


def _embed_images(clip: LoadedClip, images: list[Image], batch_size: int) -> np.ndarray:
    import torch  # noqa: PLC0415

    if not images:
        return np.zeros((0, clip.embed_dim), dtype=np.float32)
    parts = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = torch.stack(
                [clip.prepare(image) for image in images[start : start + batch_size]]
            )
            features = clip.model.encode_image(batch.to(clip.device), normalize=True)
            parts.append(features.float().cpu().numpy())
    embeddings: np.ndarray = np.concatenate(parts).astype(np.float32, copy=False)
    return embeddings


def _embed_texts(clip: LoadedClip, texts: list[str]) -> np.ndarray:
    import torch  # noqa: PLC0415

    if not texts:
        return np.zeros((0, clip.embed_dim), dtype=np.float32)
    with torch.inference_mode():
        tokens = clip.tokenizer(texts).to(clip.device)
        features = clip.model.encode_text(tokens, normalize=True)
        embeddings: np.ndarray = features.float().cpu().numpy().astype(np.float32, copy=False)
        return embeddings


def _unload(clip: LoadedClip) -> None:
    """Free the model's memory now; on a GPU, give the cached blocks back to the driver."""
    clip.model = None
    gc.collect()
    if clip.device.startswith("cuda"):
        import torch  # noqa: PLC0415

        torch.cuda.empty_cache()
