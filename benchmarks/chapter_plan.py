"""How long a 30-scene chapter takes to parse from Fountain and to plan.

Run: .venv-worker/bin/python -m benchmarks.chapter_plan   (or .venv/bin/python)

The chapter is made up: 30 scenes over 12 places at 4 times of day, 8 characters, 10 lines per
scene with an expression on every other line (300 lines). The figures are the median and the
slowest of ``--repeat`` runs, wall time on this machine.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import statistics
import time

from hydra_core.creative.chapter import parse_chapter
from hydra_core.creative.models import StyleBook
from hydra_core.creative.plan import cast, plan_chapter
from hydra_core.quality.models import Character

SCENES = 30
LINES = 10
PLACES = [f"place {number}" for number in range(12)]
TIMES = ["DAY", "NIGHT", "DUSK", "DAWN"]
EXPRESSIONS = ["furious", "sad", "calm", "afraid", "smiling"]
CHARACTERS = tuple(
    Character(id=f"queen-{number}", name=f"Queen {number}", references=(f"{number:016x}.png",))
    for number in range(8)
)
PLAN_GOAL_MS = 50.0


def chapter_text(scenes: int = SCENES, lines: int = LINES) -> str:
    """A Fountain chapter of ``scenes`` scenes of ``lines`` lines each."""
    parts = ["Title: Benchmark\n"]
    for scene in range(scenes):
        place, time_of_day = PLACES[scene % len(PLACES)], TIMES[scene % len(TIMES)]
        parts.append(f"INT. {place.upper()} - {time_of_day}\n\nThe queens gather.\n")
        for line in range(lines):
            speaker = CHARACTERS[(scene + line) % len(CHARACTERS)].name.upper()
            mood = f"({EXPRESSIONS[line % len(EXPRESSIONS)]})\n" if line % 2 else ""
            parts.append(f"{speaker}\n{mood}Line {line} of scene {scene}.\n")
    return "\n".join(parts)


def _times(run: Callable[[], object], repeat: int) -> list[float]:
    found = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        found.append((time.perf_counter() - started) * 1000)
    return found


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    text, book = chapter_text(), StyleBook()
    names = cast(CHARACTERS, book)
    chapter = parse_chapter(text, names)
    plan = plan_chapter(chapter, book, CHARACTERS)
    parse = _times(lambda: parse_chapter(text, names), args.repeat)
    planned = _times(lambda: plan_chapter(chapter, book, CHARACTERS), args.repeat)
    lines = sum(len(scene.voices) for scene in plan.scenes)
    print(
        f"{len(chapter.scenes)} scenes, {lines} lines: {len(plan.backgrounds)} backgrounds, "
        f"{len(plan.character_images)} character images, {len(plan.voices)} voice lines"
    )
    print(
        f"plan:  median {statistics.median(planned):.2f} ms, slowest {max(planned):.2f} ms"
        f"  (goal < {PLAN_GOAL_MS:.0f} ms)"
    )
    print(
        f"parse: median {statistics.median(parse):.2f} ms, slowest {max(parse):.2f} ms"
        "  (no goal: once per upload)"
    )


if __name__ == "__main__":
    main()
