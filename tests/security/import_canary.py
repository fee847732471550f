"""A module whose import is recorded: a hostile task path must not even import it."""

from __future__ import annotations

from tests.security.canary import IMPORTS, fire

IMPORTS.append(__name__)

__all__ = ["fire"]
