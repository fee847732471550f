"""Run the official Firestore emulator by hand: ``uv run python -m emulator.firestore``.

The launcher itself ships with the library (``django_tasks_fs.testing.emulator``) so that
users' test suites can start the emulator too; this module keeps the short command.
"""

from __future__ import annotations

import sys

from django_tasks_fs.testing.emulator import (
    EmulatorFailed,
    EmulatorNotFound,
    FirestoreEmulator,
    _free_port,
    find_emulator_jar,
    main,
)

__all__ = [
    "EmulatorFailed",
    "EmulatorNotFound",
    "FirestoreEmulator",
    "_free_port",
    "find_emulator_jar",
    "main",
]

if __name__ == "__main__":
    sys.exit(main())
