"""Run the emulator by hand, next to ``runserver``::

    uv run python -m emulator.gcloud --port 8123 --entrypoint "python manage.py"

Prints the environment to export and the certs URL, then serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shlex
import signal
import threading
from pathlib import Path

from .server import GoogleCloudEmulator

EMULATOR_ENV = "DJANGO_TASKS_FS_EMULATOR_HOST"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m emulator.gcloud",
        description="Emulate Cloud Tasks, Cloud Scheduler and Cloud Run Jobs locally.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123, help="gRPC port (0: a free one)")
    parser.add_argument("--http-port", type=int, default=0, help="certs/faults port")
    parser.add_argument("--cwd", type=Path, default=Path.cwd(), help="job process folder")
    parser.add_argument(
        "--entrypoint",
        default="",
        help="command for job containers without one, e.g. 'python manage.py'",
    )
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--log-dir", type=Path, default=Path(".emulator-logs"))
    parser.add_argument("--log-file", type=Path, help="emulator log (default: stderr)")
    parser.add_argument("--seconds-cron", action="store_true", help="accept 6-field crons")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        filename=args.log_file,
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    env = dict(item.split("=", 1) for item in args.env)
    emulator = GoogleCloudEmulator(
        host=args.host,
        port=args.port,
        http_port=args.http_port,
        cwd=args.cwd,
        env=env,
        entrypoint=shlex.split(args.entrypoint),
        log_dir=args.log_dir,
        seconds_cron=args.seconds_cron,
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with emulator:
        print("Google Cloud emulator (Cloud Tasks, Cloud Scheduler, Cloud Run Jobs) is up.")
        print(f"  export {EMULATOR_ENV}={emulator.grpc_host}")
        print(f"  OIDC certs URL: {emulator.certs_url}")
        print(f"  faults:         {emulator.http_url}/emulator/v1/faults")
        print(f"  job logs:       {emulator.log_dir.resolve()}/")
        print("Ctrl-C to stop.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stopped.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
