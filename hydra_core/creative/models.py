"""The creative pipeline's data: a chapter as written, the style book, and the plan of assets.

Frozen dataclasses serialized by ``hydra_core.wire``. The style book's are declared as request
models (strict types, no unknown field) with the ranges ``stylebook.parse_style_book`` checks;
the chapter and the plan are built by the worker, never read from a user.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from ..models import CallerActor
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


# Chapters in the queue: what the API answers and accepts.

# The task kinds of a chapter: the chapter itself, and the tasks it queues for its assets.
CHAPTER_KIND = "chapter_generation"
ASSET_KIND = "asset_generation"
VOICE_KIND = "voice_line"
PACKAGE_KIND = "chapter_package"
CHAPTER_TASK_KINDS = (CHAPTER_KIND, ASSET_KIND, VOICE_KIND, PACKAGE_KIND)

# The types of messages on /api/v1/events the creative part sends.
EVENT_CHAPTER = "chapter"  # {"event", "chapter"}: queued, started, progress, finished, failed...

# Where a chapter stands. ``waiting``: held for the overnight pipeline; the rest follow its
# chapter_generation task.
CHAPTER_STATES = ("waiting", "queued", "running", "succeeded", "failed", "cancelled")
FINISHED_CHAPTER_STATES = frozenset({"succeeded", "failed", "cancelled"})
# What a running chapter is doing: drawing images, speaking lines, writing the package.
CHAPTER_STAGES = ("images", "voices", "package", "done")
START_CHOICES = ("now", "overnight")
MAX_CHAPTER_CHARS = 1_000_000
ProjectName = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """How many of a chapter's assets of one kind are made, out of how many."""

    done: int = 0
    total: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ChapterStatus:
    """One chapter in the pipeline: where it stands, how far it is, what it made.

    ``images`` counts backgrounds and character images, ``voices`` voice lines; ``percent``
    weighs every asset and the package alike. ``auto_accepted`` images passed their score,
    ``pending_review`` are the best of their tries and wait for a person (the package uses
    them meanwhile). ``package`` is the zip's path, ``failed_assets`` what could not be made.
    """

    id: int
    title: str | None
    project: str
    name: str | None = None
    state: str
    stage: str | None = None
    percent: float = 0.0
    scenes: int = 0
    lines: int = 0
    images: Progress = field(default_factory=Progress)
    voices: Progress = field(default_factory=Progress)
    auto_accepted: int = 0
    pending_review: int = 0
    retried: int = 0
    failed_assets: tuple[str, ...] = ()
    task_id: int | None = None
    package: str | None = None
    error: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def finished(self) -> bool:
        """Succeeded, failed or cancelled."""
        return self.state in FINISHED_CHAPTER_STATES


@request_model
@dataclass(frozen=True, slots=True, kw_only=True)
class ChapterRequest:
    """``POST /chapters``: a chapter's Fountain text, the project whose style book it uses,
    a name for people, when to start (``now``, or ``overnight``: when the overnight pipeline
    starts) and whether finished assets are made again."""

    text: Annotated[str, StringConstraints(max_length=MAX_CHAPTER_CHARS)]
    project: ProjectName = "default"
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    start: Literal["now", "overnight"] = "now"
    regenerate: bool = False
    actor: CallerActor | None = None
