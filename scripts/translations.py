"""Write custom_components/hydra/translations/en.json from strings.json.

Home Assistant resolves ``[%key:common::...]`` references only for its own integrations; a
custom integration's translations/en.json must hold the resolved text. Run with --check to fail
when en.json is out of date (scripts/test does).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import re
import sys
from typing import Any

import homeassistant

ROOT = Path(__file__).resolve().parent.parent
STRINGS = ROOT / "custom_components" / "hydra" / "strings.json"
EN = ROOT / "custom_components" / "hydra" / "translations" / "en.json"
REFERENCE = re.compile(r"\[%key:([a-z0-9_:]+)%\]")


def _lookup(tree: dict[str, Any], path: str) -> str:
    node: Any = tree
    for part in path.split("::"):
        node = node[part]
    if not isinstance(node, str):
        raise KeyError(path)
    return node


def _resolve(node: Any, own: dict[str, Any], common: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        return {key: _resolve(value, own, common) for key, value in node.items()}
    if isinstance(node, str):

        def replace(match: re.Match[str]) -> str:
            path = match.group(1)
            source = common if path.startswith("common::") else own
            return _resolve(_lookup(source, path), own, common)

        return REFERENCE.sub(replace, node)
    return node


def render() -> str:
    """The en.json text that strings.json calls for."""
    own = json.loads(STRINGS.read_text())
    common = json.loads((Path(homeassistant.__file__).parent / "strings.json").read_text())
    return json.dumps(_resolve(own, own, common), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    """Write or check en.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if en.json is out of date")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not EN.exists() or EN.read_text() != text:
            print(f"{EN} is out of date: run scripts/translations.py", file=sys.stderr)
            return 1
        return 0
    EN.parent.mkdir(exist_ok=True)
    EN.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
