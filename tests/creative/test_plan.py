"""The style book and the plan: every asset a chapter needs, once, with a stable address."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
import json
from pathlib import Path

import pytest

from hydra_core.creative.chapter import parse_chapter
from hydra_core.creative.models import ChapterPlan, CharacterStyle, StyleBook, VoiceProfile
from hydra_core.creative.plan import cast, plan_chapter
from hydra_core.creative.stylebook import StyleBookError, load_style_book, parse_style_book
from hydra_core.quality.errors import CharacterNotFoundError
from hydra_core.quality.models import Character
from hydra_core.wire import dump, load

CHAPTER = Path(__file__).parent / "chapters" / "the_glass_crown.fountain"
REGISTRY = (
    Character(id="mira", name="Queen Mira", references=("0123456789abcdef.png",)),
    Character(id="sera", name="Sera"),
    Character(id="odo", name="Captain Odo"),
)
BOOK_JSON = {
    "style": "oil painting, muted palette",
    "locations": {"Throne Room": "vast hall of black marble, a throne of glass"},
    "lighting": {"night": "candlelight, deep shadows"},
    "negative": ["blurry", "extra fingers"],
    "model": "juggernautXL_v9.safetensors",
    "background_size": {"width": 1280, "height": 720},
    "seed": 1234,
    "characters": {
        "mira": {
            "aliases": ["Mira"],
            "appearance": "young queen, silver hair, black gown",
            "seed": 77,
            "expressions": {"furious": "furious, clenched jaw"},
            "lora": {"name": "mira_v2.safetensors", "strength": 0.8},
            "ip_adapter_weight": 0.7,
            "voice": {"voice": "af_heart:0.6,af_bella:0.4", "speed": 0.95},
        },
        "sera": {"appearance": "maid, short brown hair", "voice": {"voice": "bf_emma"}},
        "odo": {
            "aliases": ["Odo"],
            "appearance": "grizzled captain",
            "voice": {"voice": "am_adam"},
        },
    },
}


def _book(**changes: object) -> StyleBook:
    return parse_style_book(json.dumps({**BOOK_JSON, **changes}))


def _plan(book: StyleBook, registry: tuple[Character, ...] = REGISTRY) -> ChapterPlan:
    chapter = parse_chapter(CHAPTER.read_text(), cast(registry, book))
    return plan_chapter(chapter, book, registry)


def _addresses(plan: ChapterPlan) -> dict[tuple[str | None, ...], str]:
    """Each asset's address by what it is."""
    found: dict[tuple[str | None, ...], str] = {}
    for image in (*plan.backgrounds, *plan.character_images):
        key = (image.location, image.time_of_day, image.character, image.expression)
        found[key] = image.address
    for voice in plan.voices:
        found[(voice.character, voice.text)] = voice.address
    return found


def _changed(before: ChapterPlan, after: ChapterPlan) -> set[tuple[str | None, ...]]:
    old, new = _addresses(before), _addresses(after)
    assert old.keys() == new.keys()
    return {key for key in old if old[key] != new[key]}


def test_the_test_chapter_needs_each_asset_once() -> None:
    plan = _plan(_book())

    # Four places at their times (the throne room at night twice), 3 + 4 + 4 character
    # images (a neutral portrait each, and each other expression a character shows), and a
    # voice line per dialogue line.
    assert sorted((image.location, image.time_of_day) for image in plan.backgrounds) == [
        ("castle walls", "night"),
        ("dungeon", "day"),
        ("royal garden", "day"),
        ("throne room", "night"),
    ]
    assert sorted((image.character, image.expression) for image in plan.character_images) == [
        ("mira", "cold"),
        ("mira", "furious"),
        ("mira", "neutral"),
        ("mira", "sad"),
        ("odo", "calm"),
        ("odo", "grim"),
        ("odo", "neutral"),
        ("sera", "afraid"),
        ("sera", "gentle"),
        ("sera", "neutral"),
        ("sera", "whispering"),
    ]
    assert len(plan.voices) == 21
    every = [asset.address for asset in (*plan.backgrounds, *plan.character_images, *plan.voices)]
    assert len(set(every)) == 4 + 11 + 21
    assert sorted(plan.order) == sorted(every)


def test_prompts_carry_the_style_book() -> None:
    plan = _plan(_book())
    throne = next(image for image in plan.backgrounds if image.location == "throne room")
    assert "vast hall of black marble, a throne of glass" in throne.prompt
    assert "candlelight, deep shadows" in throne.prompt
    assert "oil painting, muted palette" in throne.prompt
    assert "interior" in throne.prompt
    assert throne.negative == "blurry, extra fingers"
    assert (throne.model, throne.width, throne.height) == ("juggernautXL_v9.safetensors", 1280, 720)
    # A place or time the book does not describe is named as the heading says it.
    garden = next(image for image in plan.backgrounds if image.location == "royal garden")
    assert "royal garden" in garden.prompt
    assert "bright natural daylight" in garden.prompt  # the default lighting for "day"

    mira = {image.expression: image for image in plan.character_images if image.character == "mira"}
    assert "young queen, silver hair, black gown" in mira["furious"].prompt
    assert "furious, clenched jaw" in mira["furious"].prompt
    assert "sad expression" in mira["sad"].prompt
    assert {image.seed for image in mira.values()} == {77}
    assert mira["furious"].lora is not None
    assert (mira["furious"].lora.name, mira["furious"].ip_adapter_weight) == (
        "mira_v2.safetensors",
        0.7,
    )
    # The portrait is made from the registry's reference images; its variants from it.
    assert mira["neutral"].references == ("0123456789abcdef.png",)
    assert mira["furious"].references[0] == mira["neutral"].address

    voices = {voice.text: voice for voice in plan.voices}
    assert (voices["Mother planted these."].voice, voices["Mother planted these."].speed) == (
        "af_bella:0.4,af_heart:0.6",
        0.95,
    )
    assert voices["Mother planted these."].line == 76


def test_the_order_is_the_order_the_script_needs_them() -> None:
    plan = _plan(_book())
    kinds = {
        **{image.address: ("bg", image.location) for image in plan.backgrounds},
        **{image.address: (image.character, image.expression) for image in plan.character_images},
        **{voice.address: ("voice", voice.text) for voice in plan.voices},
    }
    assert [kinds[address] for address in plan.order[:6]] == [
        ("bg", "throne room"),
        ("mira", "neutral"),
        ("mira", "furious"),
        ("voice", "Who opened the eastern gate?"),
        ("sera", "neutral"),
        ("sera", "afraid"),
    ]
    # Scene 2 opens on Odo's voice-over: heard, not seen, so no picture of him there.
    walls = plan.scenes[1]
    assert kinds[walls.background] == ("bg", "castle walls")
    assert [kinds[address] for address in walls.images] == [
        ("sera", "afraid"),
        ("odo", "calm"),
        ("odo", "neutral"),
    ]
    assert kinds[walls.voices[0]] == ("voice", "I knew this night would come.")
    assert plan.scenes[2].background == plan.scenes[0].background


def test_the_same_input_gives_the_same_addresses() -> None:
    assert _plan(_book()) == _plan(_book())
    assert _changed(_plan(_book()), _plan(_book())) == set()


def test_a_change_readdresses_only_the_assets_it_touches() -> None:
    before = _plan(_book())
    characters = BOOK_JSON["characters"]
    assert isinstance(characters, dict)

    reseeded = {**characters, "sera": {**characters["sera"], "seed": 5}}
    assert _changed(before, _plan(_book(characters=reseeded))) == {
        (None, None, "sera", "neutral"),
        (None, None, "sera", "afraid"),
        (None, None, "sera", "whispering"),
        (None, None, "sera", "gentle"),
    }

    retitled = {"Throne Room": "a small wooden hall"}
    assert _changed(before, _plan(_book(locations=retitled))) == {
        ("throne room", "night", None, None)
    }

    mira = characters["mira"]
    angrier = {**characters, "mira": {**mira, "expressions": {"furious": "screaming"}}}
    assert _changed(before, _plan(_book(characters=angrier))) == {(None, None, "mira", "furious")}

    faster = {
        **characters,
        "odo": {**characters["odo"], "voice": {"voice": "am_adam", "speed": 1.2}},
    }
    changed = _changed(before, _plan(_book(characters=faster)))
    assert changed == {key for key in _addresses(before) if key[0] == "odo" and len(key) == 2}
    assert len(changed) == 7

    # A new reference image changes Mira's portrait, and so each variant made from it.
    registry = (replace(REGISTRY[0], references=("0123456789abcdef.png", "fedcba9876543210.png")),)
    changed = _changed(before, _plan(_book(), (*registry, *REGISTRY[1:])))
    assert changed == {key for key in _addresses(before) if len(key) == 4 and key[2] == "mira"}


def test_a_line_said_twice_in_one_voice_is_one_voice_asset() -> None:
    text = "INT. HALL - DAY\n\nMIRA\nWhy?\n\nSERA\nWhy?\n\nODO\nWhy?\n\nMIRA\n(sad)\nWhy?\n"
    same_voice = {
        "characters": {
            "mira": {"aliases": ["Mira"]},
            "sera": {"voice": {"voice": "af_heart"}},
            "odo": {"aliases": ["Odo"], "voice": {"voice": "af_heart", "speed": 1.1}},
        }
    }
    book = parse_style_book(json.dumps(same_voice))
    plan = plan_chapter(parse_chapter(text, cast(REGISTRY, book)), book, REGISTRY)
    # Mira and Sera both speak with the default voice; Odo faster.
    assert Counter((voice.voice, voice.speed) for voice in plan.voices) == {
        ("af_heart", 1.0): 1,
        ("af_heart", 1.1): 1,
    }
    assert len(plan.scenes[0].voices) == 4
    assert len(set(plan.scenes[0].voices)) == 2


def test_seed_policies() -> None:
    derived = _plan(_book())
    assert len({image.seed for image in derived.backgrounds}) == 4
    assert {image.seed for image in derived.character_images if image.character == "sera"} == {
        next(image.seed for image in derived.character_images if image.character == "sera")
    }
    fixed = _plan(_book(seed_policy="fixed"))
    assert {image.seed for image in fixed.backgrounds} == {1234}
    assert {image.seed for image in fixed.character_images if image.character != "mira"} == {1234}


def test_a_character_missing_from_the_registry_is_named() -> None:
    book = _book()
    chapter = parse_chapter(CHAPTER.read_text(), cast(REGISTRY, book))
    with pytest.raises(CharacterNotFoundError, match="odo"):
        plan_chapter(chapter, book, REGISTRY[:2])


def test_the_style_book_has_sensible_defaults() -> None:
    book = parse_style_book("{}")
    assert book == StyleBook()
    assert book.lighting["night"]
    assert book.characters == {}
    assert CharacterStyle().voice == VoiceProfile(voice="af_heart", speed=1.0)


def test_the_style_book_reads_json_and_yaml_files(tmp_path: Path) -> None:
    (tmp_path / "book.json").write_text(json.dumps(BOOK_JSON))
    (tmp_path / "book.yaml").write_text(
        "style: oil painting, muted palette\n"
        "locations:\n  Throne Room: vast hall of black marble, a throne of glass\n"
        "characters:\n  mira:\n    seed: 77\n    voice: {voice: 'af_heart:0.6,af_bella:0.4'}\n"
    )
    from_json = load_style_book(tmp_path / "book.json")
    from_yaml = load_style_book(tmp_path / "book.yaml")
    assert from_json == _book()
    assert from_yaml.locations == from_json.locations
    assert from_yaml.characters["mira"].seed == 77


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"seed": "7"}', "seed: Input should be a valid integer"),
        ('{"lightning": {}}', "Unknown field lightning"),
        ('{"background_size": {"width": 1001, "height": 768}}', "background_size.width"),
        ('{"characters": {"mira": {"seed": -1}}}', "characters.mira.seed"),
        ('{"characters": {"mira": {"voice": {"speed": 3}}}}', "characters.mira.voice.speed"),
        (
            '{"characters": {"mira": {"voice": {"voice": "af_heart:0.6,bella"}}}}',
            "characters.mira.voice.voice: 'bella' is not a Kokoro voice",
        ),
        (
            '{"characters": {"mira": {"voice": {"voice": "af_heart:0"}}}}',
            "characters.mira.voice.voice: a weight must be a positive number",
        ),
        ("[1, 2]", "must be an object"),
        ("{not json", "not valid JSON"),
    ],
)
def test_a_bad_style_book_is_refused_naming_the_field(text: str, message: str) -> None:
    with pytest.raises(StyleBookError) as caught:
        parse_style_book(text)
    assert message in caught.value.message
    assert (caught.value.code, caught.value.status) == ("invalid_style_book", 400)


def test_a_bad_yaml_style_book_is_refused(tmp_path: Path) -> None:
    (tmp_path / "book.yml").write_text("style: [unclosed\n")
    with pytest.raises(StyleBookError, match="not valid YAML"):
        load_style_book(tmp_path / "book.yml")
    (tmp_path / "book.yaml").write_text("seed: 2026-01-01\n")
    with pytest.raises(StyleBookError, match="seed"):
        load_style_book(tmp_path / "book.yaml")


def test_a_plan_survives_the_wire_as_the_queue_will_store_it() -> None:
    plan = _plan(_book())
    assert load(ChapterPlan, json.loads(json.dumps(dump(plan)))) == plan


def test_a_character_without_a_style_speaks_with_the_registry_voice() -> None:
    # Home Assistant sets a character's voice in the registry; the style book, when it gives
    # the character a style, wins.
    registry = (
        Character(id="mira", name="Mira", voice={"voice": "bf_emma", "speed": 0.9}),
        Character(id="sera", name="Sera", voice={"voice": "bf_emma", "speed": 5}),
        Character(id="odo", name="Odo", voice={"voice": "bf_emma"}),
    )
    book = parse_style_book(json.dumps({"characters": {"odo": {"voice": {"voice": "am_adam"}}}}))
    text = "INT. HALL - DAY\n\nMIRA\nOne.\n\nSERA\nTwo.\n\nODO\nThree.\n"
    plan = plan_chapter(parse_chapter(text, cast(registry, book)), book, registry)
    assert {(voice.character, voice.voice, voice.speed) for voice in plan.voices} == {
        ("mira", "bf_emma", 0.9),
        ("sera", "bf_emma", 2.0),
        ("odo", "am_adam", 1.0),
    }
