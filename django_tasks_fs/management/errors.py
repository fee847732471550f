"""Firestore unreachable or not configured, or an unknown backend alias, in a management
command: the message with its fix as a CommandError (an exit status), never a traceback."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.core.management.base import CommandError

from ..exceptions import StoreNotConfigured, StoreUnavailable, UnknownBackend

Handle = TypeVar("Handle", bound=Callable[..., Any])


def firestore_errors(*, unavailable: int = 1) -> Callable[[Handle], Handle]:
    """Decorate ``handle``: StoreUnavailable exits ``unavailable``, StoreNotConfigured and
    UnknownBackend 1."""

    def decorate(handle: Handle) -> Handle:
        @functools.wraps(handle)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return handle(*args, **kwargs)
            except StoreUnavailable as exc:
                raise CommandError(str(exc), returncode=unavailable) from None
            except (StoreNotConfigured, UnknownBackend) as exc:
                raise CommandError(str(exc)) from None

        return cast(Handle, wrapper)

    return decorate
