"""How an option is declared: ``option(...)`` and the validators it takes.

An option's declaration is the metadata of its BackendOptions field (an OptionSpec),
so its default, validation, backends and doc are declared together, once, in options.py.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field
from enum import Flag, auto
from typing import Any, cast

_SPEC = "django_tasks_fs.option"


class Kind(Flag):
    """Which backends accept an option."""

    LOCAL = auto()  #: ProcessBackend
    CLOUD = auto()  #: CloudTasksBackend, CloudRunJobsBackend
    ALL = LOCAL | CLOUD


@dataclass(frozen=True, slots=True)
class Check:
    """A validator and what it accepts, in words for the E002 message."""

    valid: Callable[[Any], bool]
    expected: str  #: e.g. "a whole number >= 1"

    def __call__(self, value: Any) -> bool:
        return self.valid(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class OptionSpec:
    """One option's declaration, apart from its name, type and default."""

    kinds: Kind  #: the backends that accept it
    check: Check
    doc: str  #: one line: what it does
    #: How the configuration reference shows a default computed at run time (None: the
    #: literal default); tests/unit/test_docs_reference.py checks it.
    shown: str | None = None
    #: Turns an accepted value into the stored one (e.g. a tuple into a list).
    convert: Callable[[Any], Any] | None = None


def option[T](
    default: T,
    kinds: Kind,
    check: Check,
    doc: str,
    *,
    shown: str | None = None,
    convert: Callable[[Any], Any] | None = None,
) -> T:
    """Declare a BackendOptions field: its default, backends, check and one-line doc."""
    spec = OptionSpec(kinds=kinds, check=check, doc=doc, shown=shown, convert=convert)
    metadata = {_SPEC: spec}
    if isinstance(default, (list, dict)):  # mutable: each instance gets its own copy
        made: Any = field(default_factory=lambda: copy.copy(default), metadata=metadata)
    else:
        made = field(default=default, metadata=metadata)
    return cast(T, made)


def spec_of(declared: Field[Any]) -> OptionSpec:
    """The OptionSpec of a field declared with ``option()``."""
    return cast(OptionSpec, declared.metadata[_SPEC])


def default_of(declared: Field[Any]) -> Any:
    """A field's default value (calling its factory if it has one)."""
    if callable(declared.default_factory):
        return declared.default_factory()
    return declared.default


# -- checks ----------------------------------------------------------------------------


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("https://", "http://"))


def _queue_aliases(value: Any) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(k, str) and _text(x) for k, x in value.items()
    )


def _declarations(value: Any) -> bool:
    return isinstance(value, Mapping) and all(isinstance(k, str) for k in value)


def _command(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) > 0
        and all(isinstance(x, str) for x in value)
    )


def text(expected: str) -> Check:
    """A non-empty string, described as ``expected``."""
    return Check(_text, expected)


def url(expected: str) -> Check:
    """An http(s) URL, described as ``expected``."""
    return Check(_url, expected)


def optional(check: Check, expected: str | None = None) -> Check:
    """``check``, or None."""
    return Check(lambda v: v is None or check(v), expected or check.expected)


def one_of(*choices: str) -> Check:
    return Check(lambda v: v in choices, " or ".join(repr(c) for c in choices))


BOOL = Check(lambda v: isinstance(v, bool), "True or False")
NUMBER = Check(_number, "a number")
WHOLE = Check(_whole, "a whole number >= 1")
SECONDS = Check(lambda v: _number(v) and v > 0, "a number of seconds > 0")
SECONDS_OR_ZERO = Check(lambda v: _number(v) and v >= 0, "a number of seconds >= 0")
DAYS_OR_NONE = Check(
    lambda v: v is None or (_number(v) and v > 0), "a number of days > 0, or None to keep"
)
PROJECT = optional(text("a Google Cloud project id"))
EMAIL = Check(lambda v: isinstance(v, str) and "@" in v, "a service account email")
PREFIX = Check(lambda v: isinstance(v, str) and "/" not in v, "a string without '/', e.g. 'myapp_'")
QUEUE_ALIASES = Check(
    _queue_aliases, "a dict of queue name -> Cloud Tasks queue / Cloud Run job name"
)
COMMAND = Check(
    _command, "a non-empty list of strings, e.g. ['python', 'manage.py', 'execute_task']"
)
DECLARATIONS = Check(_declarations, "a dict of queue name (or '*' for every queue) -> its settings")
