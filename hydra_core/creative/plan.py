"""The plan: every asset a chapter needs, each once, with the address that makes it resumable.

From a ``Chapter``, the ``StyleBook`` and the registry's characters, ``plan_chapter`` lists:

- one background per (setting, location, time of day): a throne room at night is painted once
  however many scenes are set there (interior and exterior of one place are different images);
- one image per (character, expression) a scene shows: a neutral portrait made from the
  character's reference images (template ``character_portrait``), and each other expression as
  a variant of that portrait (``expression_variant``, whose references start with the
  portrait's address). A line spoken off screen (V.O., O.S.) shows nobody;
- one voice line per (text, voice, speed): a line two characters with the same voice both say
  is spoken once.

Each asset's ``address`` is the sha256 of its template name and the values its graph is built
from (prompt, negative, seed, model, size, reference ids, LoRA, IP-Adapter weight; for a voice
the text, canonical voice and speed), never of where it appears, so an asset already made is
found by its address and never made twice, and a run that stopped resumes with what is left.
``order`` lists the addresses in the order the script first needs them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
import hashlib
import json

from ..quality.errors import CharacterNotFoundError
from ..quality.models import Character
from ..wire import dump
from .chapter import fold
from .models import (
    NEUTRAL,
    Chapter,
    ChapterPlan,
    CharacterStyle,
    ImageAsset,
    Line,
    Scene,
    ScenePlan,
    StyleBook,
    VoiceAsset,
    VoiceProfile,
)
from .stylebook import canonical_voice

BACKGROUND = "background"
PORTRAIT = "character_portrait"
EXPRESSION = "expression_variant"
VOICE = "voice"
_SETTING_WORDS = {"interior": "interior", "exterior": "exterior", "interior/exterior": ""}


def content_address(template: str, values: Mapping[str, object]) -> str:
    """The sha256 (hex) of a template name and the values its output depends on."""
    canonical = json.dumps(
        {"template": template, **values}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def cast(characters: Iterable[Character], book: StyleBook) -> dict[str, tuple[str, ...]]:
    """The names each registry character's cues may use: its name and its style's aliases."""
    return {
        character.id: (character.name, *_style(book, character.id).aliases)
        for character in characters
    }


def _style(book: StyleBook, character_id: str) -> CharacterStyle:
    return book.characters.get(character_id) or CharacterStyle()


def _join(*clauses: str) -> str:
    return ", ".join(dict.fromkeys(clause.strip() for clause in clauses if clause.strip()))


def _derived_seed(book: StyleBook, *what: str | None) -> int:
    key = "\0".join([str(book.seed), *(part or "" for part in what)])
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big")


# What an image's graph is built from; nothing else goes into its address.
_GRAPH_FIELDS = (
    "prompt",
    "negative",
    "seed",
    "model",
    "width",
    "height",
    "references",
    "lora",
    "ip_adapter_weight",
)


def _addressed(image: ImageAsset) -> ImageAsset:
    values = dump(image)
    graph = {key: values[key] for key in _GRAPH_FIELDS}
    return replace(image, address=content_address(image.template, graph))


class _Planner:
    def __init__(self, book: StyleBook, characters: Iterable[Character]) -> None:
        self.book = book
        self.registry = {character.id: character for character in characters}
        self.locations = {fold(name): prompt for name, prompt in book.locations.items()}
        self.lighting = {fold(name): clause for name, clause in book.lighting.items()}
        self.backgrounds: dict[tuple[str | None, ...], ImageAsset] = {}
        self.images: dict[tuple[str, str], ImageAsset] = {}
        self.voices: dict[str, VoiceAsset] = {}
        self.order: dict[str, None] = {}

    def need(self, address: str) -> str:
        self.order.setdefault(address)
        return address

    def seed(self, own: int | None, *what: str | None) -> int:
        """An asset's own seed if it has one, else as the book's seed policy says."""
        if own is not None:
            return own
        if self.book.seed_policy == "fixed":
            return self.book.seed
        return _derived_seed(self.book, *what)

    def background(self, scene: Scene) -> str:
        key = (scene.setting, scene.location, scene.time_of_day)
        found = self.backgrounds.get(key)
        if found is None:
            book, size = self.book, self.book.background_size
            time_of_day = scene.time_of_day or ""
            found = self.backgrounds[key] = _addressed(
                ImageAsset(
                    address="",
                    template=BACKGROUND,
                    prompt=_join(
                        self.locations.get(scene.location, scene.location),
                        _SETTING_WORDS.get(scene.setting or "", ""),
                        self.lighting.get(time_of_day, time_of_day),
                        book.background_style,
                        book.style,
                    ),
                    negative=_join(*book.negative),
                    seed=self.seed(None, BACKGROUND, *key),
                    model=book.model,
                    width=size.width,
                    height=size.height,
                    kind="background",
                    setting=scene.setting,
                    location=scene.location,
                    time_of_day=scene.time_of_day,
                )
            )
        return self.need(found.address)

    def character_image(self, character_id: str, expression: str) -> str:
        found = self.images.get((character_id, expression))
        if found is not None:
            return self.need(found.address)
        character = self.registry.get(character_id)
        if character is None:
            raise CharacterNotFoundError(f"No character {character_id!r}")
        book, style, size = self.book, _style(self.book, character_id), self.book.character_size
        references = character.references
        if expression != NEUTRAL:
            references = (self.character_image(character_id, NEUTRAL), *references)
        expressions = {fold(name): clause for name, clause in style.expressions.items()}
        found = self.images[(character_id, expression)] = _addressed(
            ImageAsset(
                address="",
                template=PORTRAIT if expression == NEUTRAL else EXPRESSION,
                prompt=_join(
                    style.appearance or character.name,
                    expressions.get(expression, f"{expression} expression"),
                    book.character_style,
                    book.style,
                ),
                negative=_join(*book.negative, *style.negative),
                # One seed for all of a character's images keeps them alike.
                seed=self.seed(style.seed, "character", character_id),
                model=book.model,
                width=size.width,
                height=size.height,
                references=references,
                lora=style.lora,
                ip_adapter_weight=style.ip_adapter_weight,
                kind="character",
                character=character_id,
                expression=expression,
            )
        )
        return self.need(found.address)

    def voice(self, line: Line) -> str:
        profile = self.profile(line.speaker)
        voice = canonical_voice(profile.voice)
        address = content_address(
            VOICE, {"text": line.text, "voice": voice, "speed": profile.speed}
        )
        if address not in self.voices:
            self.voices[address] = VoiceAsset(
                address=address,
                character=line.speaker,
                text=line.text,
                voice=voice,
                speed=profile.speed,
                line=line.line,
            )
        return self.need(address)

    def profile(self, character_id: str) -> VoiceProfile:
        """The character's voice: its style's in the style book, else the voice the registry
        gives it (``{"voice": ..., "speed": ...}``, as Home Assistant sets it), else the
        default."""
        style = self.book.characters.get(character_id)
        if style is not None:
            return style.voice
        character = self.registry.get(character_id)
        voice = {} if character is None else character.voice
        name, speed = voice.get("voice"), voice.get("speed", 1.0)
        if isinstance(name, str) and name.strip():
            if isinstance(speed, int | float) and not isinstance(speed, bool):
                return VoiceProfile(voice=name.strip(), speed=min(max(float(speed), 0.5), 2.0))
            return VoiceProfile(voice=name.strip())
        return VoiceProfile()

    def scene(self, scene: Scene) -> ScenePlan:
        background = self.background(scene)
        images: dict[str, None] = {}
        voices: list[str] = []
        for beat in scene.beats:
            if not isinstance(beat, Line):
                continue
            if not beat.off_screen:
                images.setdefault(self.character_image(beat.speaker, beat.expression))
            voices.append(self.voice(beat))
        return ScenePlan(
            number=scene.number, background=background, images=tuple(images), voices=tuple(voices)
        )


def plan_chapter(chapter: Chapter, book: StyleBook, characters: Iterable[Character]) -> ChapterPlan:
    """Every asset ``chapter`` needs, made the way ``book`` says, for the registry's
    ``characters``; ``CharacterNotFoundError`` when a speaker is not among them."""
    planner = _Planner(book, characters)
    scenes = tuple(planner.scene(scene) for scene in chapter.scenes)
    return ChapterPlan(
        title=chapter.title,
        backgrounds=tuple(planner.backgrounds.values()),
        character_images=tuple(planner.images.values()),
        voices=tuple(planner.voices.values()),
        scenes=scenes,
        order=tuple(planner.order),
    )
