"""Every error code the worker can answer with 4xx has a text: the integration raises the worker's
refusals translated under their code (custom_components/hydra/helpers.py)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
import json
from pathlib import Path
import re

from hydra_core.worker.parts import PARTS as WORKER_PARTS

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "hydra_core"
STRINGS = json.loads((ROOT / "custom_components" / "hydra" / "strings.json").read_text())
CODE = re.compile(r"[a-z]+(?:_[a-z]+)*")
# The worker refused the token: the integration starts re-authentication instead.
AUTH_STATUS = 401


def _is_refusal(status: object) -> bool:
    """A 4xx answer that the integration reports as the user's mistake."""
    return isinstance(status, int) and 400 <= status < 500 and status != AUTH_STATUS


def _code(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value if CODE.fullmatch(node.value) else None
    return None


def _status(node: ast.expr) -> int | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    return None


@dataclass
class _ErrorClass:
    """A domain error class: its own ``status`` and ``code`` (None: inherited) and its bases."""

    bases: list[str]
    status: int | None
    code: str | None


def _error_classes(trees: list[ast.Module]) -> dict[str, _ErrorClass]:
    classes: dict[str, _ErrorClass] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            attributes: dict[str, ast.expr] = {
                target.id: statement.value
                for statement in node.body
                if isinstance(statement, ast.Assign)
                for target in statement.targets
                if isinstance(target, ast.Name)
            }
            # ``code: str = "invalid_request"`` in the base of them all.
            attributes.update(
                {
                    statement.target.id: statement.value
                    for statement in node.body
                    if isinstance(statement, ast.AnnAssign)
                    and isinstance(statement.target, ast.Name)
                    and statement.value is not None
                }
            )
            # ``class X(Refusal, code="x", status=404)`` names them in the class statement.
            attributes.update(
                {keyword.arg: keyword.value for keyword in node.keywords if keyword.arg}
            )
            classes[node.name] = _ErrorClass(
                bases=[base.id for base in node.bases if isinstance(base, ast.Name)],
                status=_status(attributes["status"]) if "status" in attributes else None,
                code=_code(attributes["code"]) if "code" in attributes else None,
            )
    return classes


def _class_status(classes: dict[str, _ErrorClass], name: str) -> int | None:
    """A class's HTTP status, its own or its nearest base's."""
    while name in classes:
        error = classes[name]
        if error.status is not None:
            return error.status
        name = next(iter(error.bases), "")
    return None


def _is_code_default(node: ast.AST) -> bool:
    """``something.get("code", "default")`` or ``SOME_CODES.get(status, "default")``."""
    if not (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and len(node.args) == 2
    ):
        return False
    receiver, key = node.func.value, node.args[0]
    return (isinstance(key, ast.Constant) and key.value == "code") or (
        isinstance(receiver, ast.Name) and receiver.id.endswith("_CODES")
    )


def _raised(
    node: ast.Call, name: str, classes: dict[str, _ErrorClass]
) -> list[tuple[int | None, str | None]]:
    """The (status, code) a call answers with: ``ApiError(400, "code", ...)``,
    ``SomeError("code", ...)``, or ``Refusal("...", code="code")`` (a code known only where the
    error is raised)."""
    args = node.args
    found: list[tuple[int | None, str | None]] = []
    if len(args) >= 2 and _status(args[0]) is not None:
        found.append((_status(args[0]), _code(args[1])))
    elif args and name in classes:
        found.append((_class_status(classes, name), _code(args[0])))
    given = {keyword.arg: keyword.value for keyword in node.keywords}
    if name in classes and "code" in given:
        status = _status(given["status"]) if "status" in given else None
        found.append((status or _class_status(classes, name), _code(given["code"])))
    return found


def refused_codes() -> dict[str, int]:
    """The codes the worker answers with 4xx (401 aside), found in hydra_core's sources, with
    their status: ``ApiError(status, "code", ...)``, each part's ``disabled_code``
    (404), domain error classes with ``status`` and ``code``, errors raised as
    ``SomeError("code", ...)`` whose class has a 4xx status, errors raised with their code
    (``Refusal("...", code="code")``), (status, "code") pairs in
    tuples and dicts (answers mapped from other errors), and the codes given to answers
    that name none (``.get("code", "unknown")``, ``_HTTP_CODES.get(status, "http_error")``)."""
    trees = [ast.parse(path.read_text()) for path in sorted(CORE.rglob("*.py"))]
    classes = _error_classes(trees)
    found: dict[str, int] = {}

    def add(status: int | None, code: str | None) -> None:
        if code is not None and _is_refusal(status):
            assert status is not None
            # Where a code is answered with more than one status (a route remaps a domain
            # error's 400 to a 413), the remapped one is what the client sees.
            found[code] = max(status, found.get(code, status))

    for name, error in classes.items():
        add(_class_status(classes, name), error.code)
    # A worker without a part answers that part's routes with its disabled_code.
    for part in WORKER_PARTS:
        add(404, part.disabled_code)
    for tree in trees:
        for node in ast.walk(tree):
            if _is_code_default(node):
                assert isinstance(node, ast.Call)
                add(400, _code(node.args[1]))
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                for status, code in _raised(node, node.func.id, classes):
                    add(status, code)
            elif isinstance(node, ast.Tuple) and len(node.elts) == 2:
                add(_status(node.elts[0]), _code(node.elts[1]))
            elif isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if key is not None:
                        add(_status(key), _code(value))
                        add(_status(value), _code(key))
    return found


def test_the_scan_finds_the_worker_refusals() -> None:
    """The scan still understands hydra_core: codes of every kind of source are found."""
    codes = refused_codes()
    assert codes["container_protected"] == 403  # a domain error class
    assert codes["invalid_query"] == 400  # ApiError(400, ...)
    assert codes["scheduler_disabled"] == 404  # TasksPart.disabled_code
    assert codes["image_too_large"] == 413  # an error raised with its code, remapped
    assert codes["power_not_permitted"] == 403  # a (status, code) answer
    assert codes["invalid_project"] == 400  # a code given where the error is raised
    assert codes["chapter_finished"] == 409  # ... to an error class with its own status
    assert "unknown" in codes  # the client's code for an answer without one
    assert "http_error" in codes  # the worker's code for an HTTP error it has no name for
    assert "invalid_token" not in codes  # 401: re-authentication
    assert "engine_error" not in codes  # 502: the worker's failure


def test_every_refusal_has_a_text() -> None:
    """Each code has a message under exceptions in strings.json."""
    missing = sorted(set(refused_codes()) - set(STRINGS["exceptions"]))
    assert not missing, f"strings.json has no exceptions entry for {missing}"
