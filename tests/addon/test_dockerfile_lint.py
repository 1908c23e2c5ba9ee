"""The add-on's Dockerfile passes hadolint.

Run with the development venv (``.venv``), which installs hadolint; the worker's venv has none,
and a missing hadolint fails this test rather than skipping it.
"""

from __future__ import annotations

from pathlib import Path
import shutil
import subprocess
import sys

ADDON = Path(__file__).resolve().parents[2] / "addon"


def _hadolint() -> str:
    beside_python = Path(sys.executable).parent / "hadolint"
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    assert found, "hadolint is not installed: run this test with the development venv (.venv)"
    return found


def test_dockerfile_passes_hadolint() -> None:
    # Run from the add-on's folder so hadolint picks up an addon/.hadolint.yaml if one is added.
    result = subprocess.run(
        [_hadolint(), "--no-color", "Dockerfile"],
        cwd=ADDON,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
