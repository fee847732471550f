"""``python -m django_tasks_fs.emulators.iap``: the IAP stand-in, without Django settings.

``manage.py tasks_iap_proxy`` does the same and takes --port, --email and --audience
from ``TASKS_FS_IAP`` when they are left out.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import EmulatorError
from .cli import Settings, add_arguments, run
from .identity import Identity


def _say(line: str) -> None:
    print(line, flush=True)  # flushed: whoever reads a pipe sees "running" at once


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m django_tasks_fs.emulators.iap",
        description=(
            "Play Identity-Aware Proxy in front of a local Django server: sign every "
            "request with X-Goog-IAP-JWT-Assertion, as IAP does (development only)."
        ),
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    settings = Settings(
        host=args.host,
        port=args.port,
        upstream=args.upstream,
        identity=Identity(email=args.email, hd=args.hd),
        audience=args.audience,
    )
    try:
        run(settings, _say)
    except EmulatorError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
