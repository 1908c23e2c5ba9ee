"""The quality part's wire models: scores, characters, assets, learning, and the requests.

Images travel base64-encoded in JSON (a ``data`` text field); the routes decode them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import Field, StringConstraints
from typing_extensions import TypedDict

from ..models import Actor, CallerActor
from ..wire import request_model

REVIEW_DECISIONS = ("accept", "reject")
# Where an asset stands: waiting for a person, or decided (by a person or by its score).
ASSET_STATES = ("pending", "accepted", "rejected", "auto_accepted")
# The longest prompt, name or character a request may send, and the longest review reason.
MAX_TEXT = 4000
MAX_REASON = 500

# The types of messages on /api/v1/events this part sends.
EVENT_ASSET = "asset"  # Asset: submitted (pending or auto-accepted) or decided
EVENT_QUALITY = "quality"  # QualityStatus: the model's state, the pending count or learning changed


# The images the worker keeps, by Pillow's format name: (file extension, content type).
IMAGE_TYPES = {
    "PNG": ("png", "image/png"),
    "JPEG": ("jpg", "image/jpeg"),
    "WEBP": ("webp", "image/webp"),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageScore:
    """How well one image does, from CLIP embeddings.

    ``prompt_clip_score`` is CLIPScore (2.5 * max(cos(image, prompt), 0), so 0 to 2.5);
    ``character_best`` / ``character_mean`` are the cosine similarities to the character's
    closest / average reference image; each component is also given on 0-100 (``prompt``,
    ``character``, ``style``) and ``overall`` is their weighted mean with ``weights`` (the
    weights of the components that could be scored, summing to 1). ``rank`` is 1 for the best
    image of a batch.
    """

    index: int
    name: str | None = None
    overall: float
    rank: int = 1
    prompt_clip_score: float | None = None
    prompt: float | None = None
    character_best: float | None = None
    character_mean: float | None = None
    character: float | None = None
    style: float | None = None
    weights: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Character:
    """One character of the story: reference images (file names the worker keeps), style
    notes, and the voice profile text-to-speech will use (e.g. ``{"voice": "af_heart",
    "speed": 1.0}``)."""

    id: str
    name: str
    references: tuple[str, ...] = ()
    style_notes: str = ""
    voice: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Asset:
    """A generated image the worker keeps with its score and, once decided, the decision."""

    id: int
    state: str
    character: str | None = None
    prompt: str | None = None
    name: str | None = None
    content_type: str = "image/png"
    width: int = 0
    height: int = 0
    score: ImageScore | None = None
    # The auto-accept threshold the asset was judged against (0-100).
    threshold: float | None = None
    reason: str | None = None
    created_at: float = 0.0
    decided_at: float | None = None
    decided_by: Actor | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CharacterLearning:
    """What the decisions taught about one character (``character`` None: assets of none).

    ``threshold`` is the auto-accept threshold now in use (0-100): ``calibrated`` when enough
    decisions of both kinds placed it where it best separates accepted from rejected assets,
    else the default. ``reasons`` counts rejection reasons; ``negative_terms`` and
    ``emphasis_terms`` are the prompt adjustments the generation pipeline applies.
    """

    character: str | None
    decisions: int = 0
    accepted: int = 0
    rejected: int = 0
    acceptance_rate: float | None = None
    threshold: float = 0.0
    calibrated: bool = False
    reasons: dict[str, int] = field(default_factory=dict)
    negative_terms: tuple[str, ...] = ()
    emphasis_terms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class QualityStatus:
    """What ``/api/v1/quality`` answers: whether scoring can run (and why not), the model, how
    many assets wait for review, and what was learnt per character."""

    available: bool
    reason: str | None = None
    model: str = ""
    pretrained: str | None = None
    device: str | None = None
    # not_loaded, loading, loaded, downloading or error (the model's state).
    state: str = "not_loaded"
    default_threshold: float = 60.0
    pending: int = 0
    learning: tuple[CharacterLearning, ...] = ()


# Requests

Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
Base64 = Annotated[str, StringConstraints(min_length=1)]


@request_model
@dataclass(frozen=True, slots=True, kw_only=True)
class ImageRequest:
    """One image to score: its bytes in base64 and an optional name."""

    data: Base64
    name: Text | None = None


@request_model
@dataclass(frozen=True, slots=True, kw_only=True)
class ScoreRequest:
    """``POST /quality/score``: images ranked, best first; nothing is kept."""

    images: Annotated[list[ImageRequest], Field(min_length=1)]
    prompt: Text | None = None
    character: Text | None = None
    style_prompt: Text | None = None


@request_model
@dataclass(frozen=True, slots=True, kw_only=True)
class ReferenceRequest:
    """``POST /characters/{id}/references``: an image in base64."""

    data: Base64


@request_model
@dataclass(frozen=True, slots=True, kw_only=True)
class AssetRequest:
    """``POST /assets``: an image in base64 to score and keep, with what made it."""

    data: Base64
    prompt: Text | None = None
    character: Text | None = None
    name: Text | None = None


@request_model
@dataclass(frozen=True, slots=True, kw_only=True)
class ReviewRequest:
    """``POST /assets/{id}/review``: a person's decision (the service checks accept/reject)."""

    decision: str
    reason: Annotated[str, StringConstraints(max_length=MAX_REASON)] | None = None
    actor: CallerActor | None = None


@request_model
class CharacterChanges(TypedDict, total=False):
    """``POST /characters`` and ``PUT /characters/{id}``: the registry checks the values."""

    name: str
    style_notes: str | None
    voice: dict[str, Any] | None
