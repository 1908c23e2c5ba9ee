"""Loads scripts/dev/develop.py (not a package) as a module for the tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path
import sys
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEVELOP_PY = ROOT / "scripts" / "dev" / "develop.py"


def _load() -> ModuleType:
    name = "hydra_scripts_develop"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, DEVELOP_PY)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


@pytest.fixture(name="develop")
def develop_module() -> ModuleType:
    """scripts/dev/develop.py."""
    return _load()
