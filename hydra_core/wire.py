"""The wire contract: one serializer for everything that crosses the worker API.

The models are plain frozen stdlib dataclasses (``hydra_core.models`` and each part's
``models.py``); this module turns them into JSON and back with pydantic v2 ``TypeAdapter``s,
one per type, built once and cached.

- ``dump(obj)`` gives the JSON-ready form (tuples become lists, nested models dicts).
- ``load(cls, data)`` parses it back leniently: fields a newer worker may add are ignored and
  values are coerced where that is unambiguous, as the client must keep working across versions.
- ``read_body(request, cls)`` is the worker's side: a request body is validated *strictly*
  into a request dataclass declared with ``REQUEST_CONFIG`` (no coercion, no unknown fields,
  no NaN or infinity), and any failure is the API's 400 ``invalid_body`` naming the field.

Why pydantic and not mashumaro: mashumaro's ``from_dict`` does not validate types (a string
where a number belongs goes through), so every route would still have to check its body by
hand; pydantic validates strictly and says which field was wrong and how, which is the error
message the API answers with. It is already in Home Assistant's environment.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar, overload

from aiohttp import web
from pydantic import ConfigDict, TypeAdapter, ValidationError, with_config
from pydantic_core import ErrorDetails

from .worker.errors import ApiError

T = TypeVar("T")

# What every request dataclass is declared with (``@request_model``): exact JSON types only,
# no field the route does not know, and finite numbers.
REQUEST_CONFIG = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)
request_model = with_config(REQUEST_CONFIG)

# At most this many problems are named in one error message.
_MAX_ERRORS = 3


_ADAPTERS: dict[object, TypeAdapter[Any]] = {}


def adapter(cls: object) -> TypeAdapter[Any]:
    """The cached adapter of a model type (building one costs milliseconds)."""
    found = _ADAPTERS.get(cls)
    if found is None:
        found = _ADAPTERS[cls] = TypeAdapter(cls)
    return found


# A list is an object too: the first signature wins for lists and tuples, as typeshed's do.
@overload
def dump(obj: list[Any] | tuple[Any, ...]) -> list[Any]: ...  # type: ignore[overload-overlap]
@overload
def dump(obj: object) -> dict[str, Any]: ...
def dump(obj: object) -> dict[str, Any] | list[Any]:
    """The JSON-ready form of a model, or of a list or tuple of models."""
    if isinstance(obj, list | tuple):
        return [dump(item) for item in obj]
    result: dict[str, Any] = adapter(type(obj)).dump_python(obj, mode="json")
    return result


def load(cls: type[T], data: object) -> T:
    """Parse the JSON form of ``cls``; unknown fields (a newer worker's) are ignored.

    Raises ``pydantic.ValidationError`` (a ``ValueError``) when the data does not fit.
    """
    result: T = adapter(cls).validate_python(data, strict=False)
    return result


async def read_body(
    request: web.Request, cls: type[T], *, max_size: int | None = None, code: str = "invalid_body"
) -> T:
    """The request's JSON body validated strictly into ``cls``; an empty body is ``{}``.

    ``max_size`` raises the application's body limit for this request (images in JSON).
    Anything wrong is ``ApiError(400, "invalid_body")`` (or ``code`` when the body is JSON but
    does not fit ``cls``) with a short message naming the field.
    """
    if max_size is not None:
        request = request.clone(client_max_size=max_size)
    raw = await request.read()
    if not raw.strip():
        raw = b"{}"
    try:
        result: T = adapter(cls).validate_json(raw)
    except ValidationError as err:
        errors = err.errors(include_url=False)
        if any(error["type"] == "json_invalid" for error in errors):
            detail = errors[0]["msg"].removeprefix("Invalid JSON: ")
            raise ApiError(400, "invalid_body", f"The body is not valid JSON: {detail}") from None
        if any(not error["loc"] for error in errors):
            raise ApiError(400, "invalid_body", "The body must be a JSON object") from None
        raise ApiError(400, code, describe(errors)) from None
    return result


def describe(errors: Sequence[ErrorDetails]) -> str:
    """What was wrong, for people: ``images[0].data: Input should be a valid string``."""
    parts = [_describe(error) for error in errors[:_MAX_ERRORS]]
    if len(errors) > _MAX_ERRORS:
        parts.append(f"and {len(errors) - _MAX_ERRORS} more")
    return "; ".join(parts)


def _describe(error: ErrorDetails) -> str:
    where = field_path(error["loc"])
    match error["type"]:
        case "extra_forbidden" | "unexpected_keyword_argument":
            return f"Unknown field {where}"
        case "missing" | "missing_keyword_argument":
            return f"Missing field {where}"
        case _:
            return f"{where}: {error['msg']}"


def field_path(loc: Sequence[int | str]) -> str:
    """``("images", 0, "data")`` as ``images[0].data``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else part
    return path


__all__ = ["REQUEST_CONFIG", "adapter", "dump", "field_path", "load", "read_body", "request_model"]
