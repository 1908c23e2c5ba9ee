"""Write the worker options table in docs/configuration.md from the options dataclasses, and
check the add-on's config.yaml schema against them.

Every option is declared once, in its part's options dataclass (hydra_core/*/options.py and
hydra_core/worker/config.py); this script keeps what repeats them true. Run with --check to fail
when the docs table is out of date or the add-on disagrees (scripts/test does).
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hydra_core.options import Option  # noqa: E402 - after the path above
from hydra_core.worker.config import all_options  # noqa: E402

DOCS = ROOT / "docs" / "configuration.md"
ADDON = ROOT / "addon" / "config.yaml"
BEGIN = "<!-- worker-options:begin -->"
END = "<!-- worker-options:end -->"


def table() -> str:
    """The docs table, one row per option, in the order of the parts."""
    rows = [
        "| option | flag / variable | default | values | meaning |",
        "|---|---|---|---|---|",
    ]
    for item in all_options():
        default = item.default_shown
        shown = default if item.spec.default_text or default == "not set" else f"`{default}`"
        addon = " (add-on option)" if item.spec.addon else ""
        rows.append(
            f"| {item.name} | `{item.flag}` / `{item.env}` | {shown} | {item.range_text}"
            f" | {item.spec.help}{addon} |"
        )
    return "\n".join(rows)


def with_table(text: str) -> str:
    """The docs page with its table replaced."""
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return f"{text[:start]}\n{table()}\n{text[end:]}"


def addon_schema(item: Option) -> Any:
    """The Supervisor schema entry that accepts exactly what the worker does."""
    spec = item.spec
    if item.kind is bool:
        return "bool"
    if item.kind is tuple:
        return ["str"]
    if spec.choices:
        return f"list({'|'.join(spec.choices)})"
    if item.kind in (int, float) and spec.low is not None and spec.high is not None:
        return f"{item.kind.__name__}({spec.low:g},{spec.high:g})"
    if item.kind in (str, Path):
        # The Supervisor's password type: the add-on's form masks it.
        return "password?" if spec.secret else "str?"
    raise ValueError(f"{item.name}: no add-on schema for {item.kind.__name__}")


def addon_problems() -> list[str]:
    """Where config.yaml disagrees with the options the worker declares for the add-on."""
    config = yaml.safe_load(ADDON.read_text())
    declared = {item.name: item for item in all_options() if item.spec.addon}
    problems = [
        f"{name}: in config.yaml but not an add-on option of the worker (addon=True)"
        for name in sorted(set(config["options"]) - set(declared))
    ]
    problems += [
        f"{name}: an add-on option of the worker, missing from config.yaml options"
        for name in sorted(set(declared) - set(config["options"]))
    ]
    for name, item in declared.items():
        if name not in config["options"]:
            continue
        want = addon_schema(item)
        if config["schema"].get(name) != want:
            problems.append(f"{name}: schema {config['schema'].get(name)!r}, the worker's {want!r}")
        # A list's default is the add-on's own choice (it protects Home Assistant's containers).
        if item.kind is tuple or item.spec.default_text is not None:
            continue
        value = config["options"][name]
        default = "" if item.default is None else item.default
        if value != default:
            problems.append(f"{name}: default {value!r} in config.yaml, the worker's {default!r}")
    return problems


def main() -> int:
    """Write (or with --check, compare) the docs table; check the add-on."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail instead of writing")
    args = parser.parse_args()
    current = DOCS.read_text()
    wanted = with_table(current)
    status = 0
    if current != wanted:
        if args.check:
            print(f"{DOCS.relative_to(ROOT)} is out of date: run scripts/options.py")
            status = 1
        else:
            DOCS.write_text(wanted)
    for problem in addon_problems():
        print(f"addon/config.yaml: {problem}")
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
