"""``python -m django_tasks_fs.emulators``: both emulators, without Django settings.

``manage.py tasks_emulators`` does the same and also creates the queues and jobs that
``TASKS`` names; use this one outside a Django project, or to create them yourself.
"""

from __future__ import annotations

import argparse
import sys

from .cli import Settings, add_arguments, run
from .errors import EmulatorError


def _say(line: str) -> None:
    print(line, flush=True)  # flushed: whoever reads a pipe sees "running" at once


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m django_tasks_fs.emulators",
        description="Run the official Firestore emulator and the local Google Cloud emulator.",
    )
    add_arguments(parser)
    settings = Settings.from_options(vars(parser.parse_args(argv)))
    try:
        run(settings, _say)
    except EmulatorError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
