"""Options with one source: a dataclass per part whose field metadata says everything else.

Each field of an options dataclass is one worker option. Its name is the option's name (the key
in the add-on's options file), its annotation and default give the type and the default, and
``option(...)`` adds the help text, the range or choices, whether it is secret and whether the
add-on exposes it. The command line (``--name``), the environment (``HYDRA_NAME``), the options
file, the docs table and the add-on schema check are all generated from these fields, so a
default or a range is written exactly once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path
import re
import types
from typing import Any, TypeVar, Union, cast, get_args, get_origin, get_type_hints

_METADATA_KEY = "hydra_option"
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, kw_only=True)
class OptionSpec:
    """What an option's field says beyond its name, type and default."""

    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    pattern: str | None = None
    pattern_text: str | None = None
    secret: bool = False
    # Shown instead of the default where it is computed at start (a host name, a folder).
    default_text: str | None = None
    # Whether the add-on's config.yaml offers it.
    addon: bool = False


def option(
    default: _T,
    *,
    help: str,
    low: float | None = None,
    high: float | None = None,
    choices: Sequence[str] = (),
    pattern: str | None = None,
    pattern_text: str | None = None,
    secret: bool = False,
    default_text: str | None = None,
    addon: bool = False,
    default_factory: Callable[[], _T] | None = None,
) -> _T:
    """Declare one option: a dataclass field carrying its ``OptionSpec``."""
    spec = OptionSpec(
        help=help,
        low=low,
        high=high,
        choices=tuple(choices),
        pattern=pattern,
        pattern_text=pattern_text,
        secret=secret,
        default_text=default_text,
        addon=addon,
    )
    metadata = {_METADATA_KEY: spec}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=metadata, repr=not secret)
    return field(default=default, metadata=metadata, repr=not secret)


@dataclass(frozen=True, slots=True)
class Option:
    """One option as the parsers, the docs and the add-on check see it."""

    name: str
    section: type[Any]
    kind: type[Any]
    spec: OptionSpec
    default: Any

    @property
    def env(self) -> str:
        """The environment variable that sets it."""
        return f"HYDRA_{self.name.upper()}"

    @property
    def flag(self) -> str:
        """The command-line flag that sets it."""
        return "--" + self.name.replace("_", "-")

    @property
    def default_shown(self) -> str:
        """The default as people read it: computed ones described, empty ones as "not set"."""
        if self.spec.default_text is not None:
            return self.spec.default_text
        if self.default is None or self.default == ():
            return "not set"
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        if isinstance(self.default, float):
            return f"{self.default:g}"
        return str(self.default)

    @property
    def help(self) -> str:
        """The help text with the default, for the command line."""
        return f"{self.spec.help} (default: {self.default_shown})"

    @property
    def range_text(self) -> str:
        """What values it takes, for the docs table."""
        if self.spec.choices:
            return ", ".join(self.spec.choices)
        if self.spec.pattern_text:
            return self.spec.pattern_text
        if self.spec.low is not None and self.spec.high is not None:
            return f"{self.spec.low:g} to {self.spec.high:g}"
        if self.kind is tuple:
            return "list of text"
        return {bool: "true or false", Path: "a folder", int: "whole number", float: "number"}.get(
            self.kind, "text"
        )

    def convert(self, value: Any) -> Any:
        """The value as the option's type; ValueError says why it cannot be."""
        if self.kind is bool:
            return _boolean(value)
        if self.kind is tuple:
            return _patterns(value)
        if self.kind is Path:
            return Path(str(value).strip())
        if self.kind is int or self.kind is float:
            if isinstance(value, bool):
                raise ValueError("must be a number")
            number = self.kind(value)
            low, high = self.spec.low, self.spec.high
            if low is not None and high is not None and not low <= number <= high:
                raise ValueError(f"must be between {low:g} and {high:g}")
            return number
        text = str(value).strip()
        if self.spec.choices:
            text = text.lower()
            if text not in self.spec.choices:
                raise ValueError(f"must be one of {', '.join(self.spec.choices)}")
        if self.spec.pattern is not None:
            text = text.lower()
            if not re.fullmatch(self.spec.pattern, text):
                raise ValueError(f"must be {self.spec.pattern_text or self.spec.pattern}")
        return text


def options_of(section: type[Any]) -> Iterator[Option]:
    """The options an options dataclass declares, in field order."""
    hints = get_type_hints(section)
    for item in fields(section):
        spec = item.metadata.get(_METADATA_KEY)
        if spec is None:
            raise TypeError(f"{section.__name__}.{item.name} is not declared with option()")
        yield Option(
            name=item.name,
            section=section,
            kind=_base_type(hints[item.name]),
            spec=spec,
            default=_default(item),
        )


def _default(item: Field[Any]) -> Any:
    if item.default is not MISSING:
        return item.default
    return None


def _base_type(hint: Any) -> type[Any]:
    """``int`` from ``int``, ``Path`` from ``Path | None``, ``tuple`` from ``tuple[str, ...]``."""
    if get_origin(hint) in (Union, types.UnionType):
        (hint,) = [arg for arg in get_args(hint) if arg is not type(None)]
    if get_origin(hint) is tuple:
        return tuple
    if hint not in (bool, int, float, str, Path):
        raise TypeError(f"Options cannot be of type {hint!r}")
    return cast(type[Any], hint)


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _patterns(value: Any) -> tuple[str, ...]:
    """Comma-separated on the command line and in the environment; a list in an options file."""
    items = value if isinstance(value, list) else str(value).split(",")
    return tuple(str(item).strip() for item in items if str(item).strip())
