"""Why a local emulator could not run, each with what to do about it.

::

    EmulatorError            base class; do not raise directly
    ├── EmulatorNotFound     Java or the official Firestore emulator is not installed
    ├── EmulatorFailed       the emulator process exited or did not answer in time
    ├── PortInUse            something else already listens on a port we need
    └── MissingExtra         the Python packages of django-tasks-fs[emulators] are missing
"""

from __future__ import annotations

#: How to get the Python packages the Google Cloud emulator needs.
EXTRA_HINT = "pip install 'django-tasks-fs[emulators]'"


class EmulatorError(RuntimeError):
    """A local emulator cannot run. Do not raise directly."""


class EmulatorNotFound(EmulatorError):
    """The official Firestore emulator (or Java) is not installed."""


class EmulatorFailed(EmulatorError):
    """The emulator process exited or did not answer in time."""


class PortInUse(EmulatorError):
    """Another program already listens on a port an emulator needs."""

    def __init__(self, message: str, *, host: str, port: int) -> None:
        super().__init__(message)
        self.host = host
        self.port = port


class MissingExtra(EmulatorError):
    """A package of the ``emulators`` extra is not installed."""
