"""Testing your own tasks without a Google account: the official Firestore emulator,
an isolated Firestore project per test, and a synchronous task runner.

Enabled automatically as a pytest plugin (``django_tasks_fs.testing.plugin``) when the
package is installed; see docs/howto/testing.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..emulators.errors import EmulatorFailed, EmulatorNotFound
    from ..emulators.firestore import FirestoreEmulator
    from .runner import TaskRunner

__all__ = ["EmulatorFailed", "EmulatorNotFound", "FirestoreEmulator", "TaskRunner"]

_LAZY = {
    "TaskRunner": ".runner",
    "FirestoreEmulator": "..emulators.firestore",
    "EmulatorNotFound": "..emulators.errors",
    "EmulatorFailed": "..emulators.errors",
}


def __getattr__(name: str) -> Any:
    # Imported on first use: pytest loads the plugin in every project that installs
    # the package, before (and whether or not) Django is configured.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
