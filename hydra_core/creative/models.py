"""The creative pipeline's data: a chapter as written, the style book, and the plan of assets.

Frozen dataclasses serialized by ``hydra_core.wire``. The style book's are declared as request
models (strict types, no unknown field) with the ranges ``stylebook.parse_style_book`` checks;
the chapter and the plan are built by the worker, never read from a user.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from ..wire import request_model

# Where a scene is set, from its heading's INT. / EXT. / INT./EXT.; None for a forced heading.
Setting = Literal["interior", "exterior", "interior/exterior"]
# Character extensions that put the speaker out of the picture: heard, not seen.
OFF_SCREEN = frozenset({"V.O.", "O.S.", "O.C.", "OFF"})
NEUTRAL = "neutral"


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    """Scene direction: what happens, as the action paragraph says it."""

    kind: Literal["action"] = "action"
    line: int
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Line:
    """One spoken line: who (a character id), how (the parenthetical), what, and where."""

    kind: Literal["line"] = "line"
    line: int
    speaker: str
    expression: str = NEUTRAL
    text: str
    # The cue's extension without its parentheses: V.O., O.S., CONT'D...
    extension: str | None = None

    @property
    def off_screen(self) -> bool:
        """Whether the speaker is heard and not seen (voice-over, off screen)."""
        return self.extension is not None and self.extension.upper() in OFF_SCREEN


Beat = Annotated[Action | Line, Field(discriminator="kind")]


@dataclass(frozen=True, slots=True, kw_only=True)
class Scene:
    """A scene from its heading: ``INT. THRONE ROOM - NIGHT`` is interior, "throne room",
    "night"; its beats in the order written."""

    number: int
    line: int
    heading: str
    setting: Setting | None
    location: str
    time_of_day: str | None
    beats: tuple[Beat, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Chapter:
    """A chapter: its title (from the title page) and its scenes in order."""

    title: str | None
    scenes: tuple[Scene, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChapterProblem:
    """One thing wrong with a chapter, at a line of its text (1-based)."""

    line: int
    code: str
    message: str


# The style book.

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Prompt = Annotated[str, StringConstraints(max_length=4000)]
Seed = Annotated[int, Field(ge=0, lt=2**32)]
Pixels = Annotated[int, Field(ge=64, le=8192, multiple_of=8)]


@request_model
@dataclass(frozen=True, slots=True, kw_only=True)
class Size:
    """An image size in pixels (multiples of 8, as latent diffusion models need)."""

    width: Pixels
    height: Pixels


@request_model
@dataclass(frozen=True, slots=True, kw_only=True)
class Lora:
    """A LoRA applied to a character's images: its file name and strength."""

    name: Name
    strength: Annotated[float, Field(ge=-4.0, le=4.0)] = 1.0


@request_model
@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceProfile:
    """How a character sounds: a Kokoro voice (``af_heart``) or a blend of voices with weights
    (``af_heart:0.6,af_bella:0.4``), and the speaking rate."""

    voice: Name = "af_heart"
    speed: Annotated[float, Field(ge=0.5, le=2.0)] = 1.0


@request_model
@dataclass(frozen=True, slots=True, kw_only=True)
class CharacterStyle:
    """What the creative pipeline adds to a registry character (keyed by its id): the names a
    cue may use besides its own, how it looks, its seed, expressions (name -> prompt clause),
    extra negative terms, an optional LoRA and IP-Adapter weight, and its voice."""

    aliases: tuple[Name, ...] = ()
    appearance: Prompt = ""
    seed: Seed | None = None
    expressions: dict[Name, Prompt] = field(default_factory=dict)
    negative: tuple[Prompt, ...] = ()
    lora: Lora | None = None
    ip_adapter_weight: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    voice: VoiceProfile = field(default_factory=VoiceProfile)


DEFAULT_LIGHTING = {
    "dawn": "soft pink dawn light, long shadows",
    "morning": "fresh morning light",
    "day": "bright natural daylight",
    "afternoon": "warm afternoon sunlight",
    "dusk": "golden hour, warm orange light",
    "evening": "fading evening light, lamps lit",
    "night": "night, moonlight, deep blue shadows",
}
DEFAULT_NEGATIVE = ("lowres", "blurry", "watermark", "text", "signature", "jpeg artifacts")


@request_model
@dataclass(frozen=True, slots=True, kw_only=True)
class StyleBook:
    """A project's look: the overall style, a style prompt per location (lowercase, as scene
    headings give it), a lighting clause per time of day, negative terms, the checkpoint, image
    sizes, the seed and how seeds are chosen, and the characters' styles by character id.

    ``seed_policy``: ``derived`` gives every asset its own seed made from ``seed`` and what the
    asset is (the same asset always gets the same seed); ``fixed`` uses ``seed`` for every asset.
    A character with its own seed uses it for all its images either way.
    """

    style: Prompt = "detailed digital painting, visual novel art"
    background_style: Prompt = "background art, no people"
    character_style: Prompt = "character sprite, full body, plain background"
    locations: dict[Name, Prompt] = field(default_factory=dict)
    lighting: dict[Name, Prompt] = field(default_factory=lambda: dict(DEFAULT_LIGHTING))
    negative: tuple[Prompt, ...] = DEFAULT_NEGATIVE
    model: Name = "sd_xl_base_1.0.safetensors"
    background_size: Size = Size(width=1344, height=768)
    character_size: Size = Size(width=832, height=1216)
    seed: Seed = 0
    seed_policy: Literal["derived", "fixed"] = "derived"
    characters: dict[Name, CharacterStyle] = field(default_factory=dict)


# The plan.


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageAsset:
    """One image a chapter needs, with everything its graph is built from.

    ``address`` is the sha256 of the template and those values: the same image has the same
    address in every plan, so it is made once. Backgrounds name their ``setting``, ``location``
    and ``time_of_day``; character images their ``character`` and ``expression``. An expression
    variant's ``references`` hold the address of the character's neutral portrait.
    """

    address: str
    kind: Literal["background", "character"]
    template: str
    prompt: str
    negative: str
    seed: int
    model: str
    width: int
    height: int
    references: tuple[str, ...] = ()
    lora: Lora | None = None
    ip_adapter_weight: float | None = None
    setting: Setting | None = None
    location: str | None = None
    time_of_day: str | None = None
    character: str | None = None
    expression: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceAsset:
    """One voice line: the text in a voice (canonical blend) at a speed; ``address`` is the
    sha256 of those, so a line two characters with the same voice both say is spoken once.
    ``line`` is where the text first appears in the chapter."""

    address: str
    character: str
    text: str
    voice: str
    speed: float
    line: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ScenePlan:
    """What one scene shows and plays, by asset address, in script order."""

    number: int
    background: str
    images: tuple[str, ...] = ()
    voices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ChapterPlan:
    """Every asset a chapter needs, each once, and ``order``: the addresses in the order the
    script first needs them (a portrait before its expression variants)."""

    title: str | None
    backgrounds: tuple[ImageAsset, ...]
    character_images: tuple[ImageAsset, ...]
    voices: tuple[VoiceAsset, ...]
    scenes: tuple[ScenePlan, ...]
    order: tuple[str, ...]
