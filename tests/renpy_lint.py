"""Ren'Py's own lint, run on a project folder, for the tests of the creative packages.

scripts/setup installs Debian's renpy 8.0.3 and patches it for Python 3.11 (renpy issue
5461). ``SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy renpy <project> lint --error-code`` exits
1 when the lint report lists a problem (a missing image, a voice file that cannot be loaded, a
jump to no label, a bad text tag). Ren'Py's lint checks that a voice file can be *loaded*, not
that it decodes: ``playable_voice_files`` decodes them as Ren'Py's player (FFmpeg) would.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path
import re
import shutil
import subprocess

import pytest

from hydra_core.creative.voicelines import VoiceLineError, decoded_seconds

#: Debian installs renpy into /usr/games, which is not on every PATH.
RENPY_DIRS = ("/usr/games",)
TIMEOUT_S = 120


@dataclass(frozen=True)
class LintResult:
    """Lint's exit status and its report (stdout and stderr together)."""

    returncode: int
    report: str

    @property
    def problems(self) -> list[str]:
        """The report's problem lines: ``game/script.rpy:12 'aria furious' is not an image.``"""
        return re.findall(r"^game/\S+:\d+ .*$", self.report, flags=re.MULTILINE)


def renpy_command() -> str:
    """The renpy launcher; fails the test (not skips it) when setup has not installed it."""
    found = shutil.which("renpy") or shutil.which(
        "renpy", path=os.pathsep.join((os.environ.get("PATH", ""), *RENPY_DIRS))
    )
    if found is None:
        pytest.fail("Ren'Py is not installed: run scripts/setup (it installs and patches renpy)")
    return found


def _renpy(project: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "SDL_VIDEODRIVER": "dummy",
        "SDL_AUDIODRIVER": "dummy",
        # Ren'Py keeps saves and persistent data under $HOME/.renpy.
        "HOME": str(project),
    }
    return subprocess.run(
        [renpy_command(), str(project), *arguments],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=environment,
        check=False,
    )


def lint(project: Path) -> LintResult:
    """Run Ren'Py's lint on ``project`` (a folder holding ``game/``), headless."""
    completed = _renpy(project, "lint", "--error-code")
    return LintResult(completed.returncode, completed.stdout + completed.stderr)


def dialogue(project: Path) -> list[str]:
    """The dialogue as Ren'Py shows it, in script order (Ren'Py's ``dialogue`` command).

    The command writes what each say statement holds after Ren'Py parsed it; ``[[``, ``{{``
    and ``%%`` are how that text keeps a literal ``[``, ``{`` and ``%``.
    """
    completed = _renpy(project, "dialogue", "None", "--text")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    text = (project / "dialogue.txt").read_text(encoding="utf-8-sig")
    return [
        line.replace("[[", "[").replace("{{", "{").replace("%%", "%") for line in text.splitlines()
    ]


def unplayable_voice_files(project: Path) -> dict[str, str]:
    """Every voice file the script names that does not decode, with why."""
    script = (project / "game" / "script.rpy").read_text()
    broken: dict[str, str] = {}
    for name in re.findall(r'^\s*voice "([^"]+)"$', script, flags=re.MULTILINE):
        try:
            decoded_seconds(project / "game" / name)
        except VoiceLineError as err:
            broken[name] = err.message
    return broken
