"""libfaketime for the suite and the campaign: processes whose wall clock is shifted.

Two uses: the clock-skew scenario (workers seconds apart) and the shifted-clock CI
step, which runs the tests with *every* clock far ahead to prove that none depends
on the date::

    python -m tests.faketime +400d -- pytest -m "not slow and not browser"

libfaketime (Debian package ``faketime``) is loaded with ``LD_PRELOAD``, which every
subprocess inherits, and ``FAKETIME=+400d`` is an offset, so all processes agree on
the shifted time (an absolute ``@date`` would restart the clock in each process).
Python processes run with ``DONT_FAKE_MONOTONIC=1``: faked, the monotonic clock hangs
Python's timed waits; left alone, libfaketime 0.9.10 breaks ``time.sleep``, which
``faketime_site/sitecustomize.py`` mends. The JVM of the Firestore emulator is the
other way round: with ``DONT_FAKE_MONOTONIC`` it runs ~20x slower (measured: 50
writes in 13 s instead of 0.7 s), with both clocks faked it runs at full speed, so it
is started through a ``$JAVA`` wrapper that fakes both — and with
``FAKETIME_FORCE_MONOTONIC_FIX=0``, without which its timed waits under contention
last seconds (two workers on 200 tasks: 100 s instead of 20 s).
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django_tasks_fs.emulators.firestore import find_java

SITE = Path(__file__).resolve().parent / "faketime_site"
LIBRARY_GLOBS = (
    "/usr/lib/*/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
)
INSTALL_HINT = "sudo apt-get install -y faketime (or set $LIBFAKETIME)"
#: Set in the shifted run: the true time when it began, and the shift, in seconds.
SHIFT_VARIABLE = "TEST_CLOCK_SHIFT"


class FaketimeNotFound(RuntimeError):
    """libfaketime is not installed."""


def find_libfaketime() -> str:
    """The libfaketime library ($LIBFAKETIME, else Debian's), or raise FaketimeNotFound."""
    explicit = os.environ.get("LIBFAKETIME")
    if explicit:
        if Path(explicit).is_file():
            return explicit
        raise FaketimeNotFound(f"$LIBFAKETIME={explicit!r} is not a file: {INSTALL_HINT}")
    for pattern in LIBRARY_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    raise FaketimeNotFound(f"libfaketime was not found: {INSTALL_HINT}")


def shifted_env(base: dict[str, str], offset: str, library: str | None = None) -> dict[str, str]:
    """``base`` for a Python process whose wall clock (only) is shifted by ``offset``
    (libfaketime syntax: ``+4s``, ``-4s``, ``+400d``)."""
    return {
        **base,
        "LD_PRELOAD": library or find_libfaketime(),
        "FAKETIME": offset,
        "DONT_FAKE_MONOTONIC": "1",
        "FAKETIME_FORCE_MONOTONIC_FIX": "0",
        "PYTHONPATH": os.pathsep.join([str(SITE), base.get("PYTHONPATH", "")]),
    }


def java_wrapper(folder: Path) -> Path:
    """A ``$JAVA`` that runs the real java with both of its clocks faked (see above)."""
    script = folder / "java"
    script.write_text(f'#!/bin/sh\nunset DONT_FAKE_MONOTONIC\nexec "{find_java()}" "$@"\n')
    script.chmod(0o755)
    return script


def offset_seconds(offset: str) -> float:
    """Seconds in a libfaketime offset such as ``+400d``, ``-4s`` or ``+2h``."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "y": 365 * 86400}
    unit = offset[-1] if offset[-1] in units else "s"
    number = offset[:-1] if offset[-1] in units else offset
    return float(number) * units[unit]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run a command with every clock (its own, its subprocesses', the "
        "Firestore emulator's) shifted by OFFSET."
    )
    parser.add_argument("offset", help="libfaketime offset, e.g. +400d")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- command and arguments")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    if shutil.which(command[0]) is None:
        parser.error(f"{command[0]!r} is not on PATH")
    try:
        env = shifted_env(dict(os.environ), args.offset)
    except FaketimeNotFound as exc:
        print(exc, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="faketime-") as folder:
        env["JAVA"] = str(java_wrapper(Path(folder)))
        env[SHIFT_VARIABLE] = f"{time.time():.0f} {offset_seconds(args.offset):.0f}"
        return subprocess.run(command, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
