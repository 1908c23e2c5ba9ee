"""ComfyUI graph templates: API-format JSON with ``{{placeholders}}``, overridable from a folder.

A template is what ComfyUI's "Save (API)" writes: ``{node_id: {"class_type", "inputs"}}``, with
links as ``[node_id, output_index]``. A string value that is exactly ``"{{name}}"`` is replaced
by the value itself (so ``"{{seed}}"`` becomes a number); a placeholder inside a longer string is
replaced by the value's text. Three templates ship in ``templates/``: ``background`` (text to
image), ``character`` (a portrait drawn over a reference image) and ``expression`` (a variant of
a character's portrait, closer to it). A file of the same name in the override folder replaces
the shipped one, so a user can swap in their own graph (a LoRA, an IP-Adapter) without code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import hashlib
from importlib import resources
import json
from pathlib import Path
import re
from typing import Any

from ..errors import Refusal

TEMPLATE_NAMES = ("background", "character", "expression")
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


class TemplateError(Refusal, code="graph_template_invalid"):
    """A template that is missing, not an API-format graph, or not given all its values."""


@dataclass(frozen=True)
class GraphTemplate:
    """One graph template and the placeholders it needs."""

    name: str
    source: str
    graph: Mapping[str, Any]
    placeholders: frozenset[str]

    def fill(self, **values: Any) -> dict[str, Any]:
        """The graph with every placeholder replaced; values it does not use are ignored."""
        missing = sorted(self.placeholders - values.keys())
        if missing:
            raise TemplateError(
                f"Graph template {self.name} ({self.source}) needs a value for {', '.join(missing)}"
            )
        filled: dict[str, Any] = _substitute(self.graph, values)
        return filled


def reference_name(data: bytes) -> str:
    """The upload name of a reference image: its content, so a re-upload replaces nothing else."""
    return f"hydra_{hashlib.sha256(data).hexdigest()[:24]}.png"


def load_template(name: str, override_dir: Path | None = None) -> GraphTemplate:
    """The template ``name``: ``<name>.json`` in the override folder if there, else shipped."""
    if override_dir is not None:
        path = override_dir / f"{name}.json"
        if path.is_file():
            return parse_template(name, path.read_text(encoding="utf-8"), str(path))
    if name not in TEMPLATE_NAMES:
        raise TemplateError(
            f"No graph template {name!r}; the shipped ones are {', '.join(TEMPLATE_NAMES)}",
            status=404,
        )
    shipped = resources.files(__package__).joinpath("templates", f"{name}.json")
    return parse_template(name, shipped.read_text(encoding="utf-8"), f"shipped {name}.json")


def parse_template(name: str, text: str, source: str) -> GraphTemplate:
    """Check that ``text`` is an API-format graph and find its placeholders."""
    try:
        graph = json.loads(text)
    except json.JSONDecodeError as err:
        raise TemplateError(
            f"Graph template {name} ({source}) is not JSON: {err.msg} at line {err.lineno}"
        ) from None
    if isinstance(graph, dict) and "nodes" in graph and "links" in graph:
        raise TemplateError(
            f"Graph template {name} ({source}) is a ComfyUI workflow, not an API-format graph: "
            "export it with ComfyUI's 'Save (API)'"
        )
    if not isinstance(graph, dict) or not graph:
        raise TemplateError(f"Graph template {name} ({source}) is not a graph of nodes")
    for node_id, node in graph.items():
        if (
            not isinstance(node, dict)
            or not isinstance(node.get("class_type"), str)
            or not isinstance(node.get("inputs"), dict)
        ):
            raise TemplateError(
                f"Graph template {name} ({source}): node {node_id} needs a class_type "
                "and an inputs object"
            )
    return GraphTemplate(name, source, graph, frozenset(_placeholders(graph)))


def _placeholders(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(_PLACEHOLDER.findall(value))
    if isinstance(value, dict):
        return set().union(*(_placeholders(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(_placeholders(item) for item in value))
    return set()


def _substitute(value: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole:
            return values[whole.group(1)]
        return _PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), value)
    if isinstance(value, dict):
        return {key: _substitute(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, values) for item in value]
    return value
