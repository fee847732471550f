"""Run the Google Cloud emulator alone, next to ``runserver`` and a Firestore emulator::

    python -m django_tasks_fs.emulators.gcloud --port 8123 --http-port 8124

``manage.py tasks_emulators`` starts it together with the Firestore emulator and creates
the queues and jobs ``TASKS`` names; this lower-level command creates nothing. It prints
the environment to export and the certs URL, then serves until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from pathlib import Path

from ...gcp.clients import EMULATOR_ENV
from ..errors import EmulatorError
from ..local import DEFAULT_GCLOUD_HTTP_PORT, DEFAULT_GCLOUD_PORT
from ..service import ensure_port_free
from ..signals import StopRequested, stop_on_signals
from .server import DEFAULT_HOST, GoogleCloudEmulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m django_tasks_fs.emulators.gcloud",
        description="Emulate Cloud Tasks, Cloud Scheduler and Cloud Run Jobs locally.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument(
        "--port", type=int, default=DEFAULT_GCLOUD_PORT, help="gRPC port (0: a free one)"
    )
    parser.add_argument(
        "--http-port",
        type=int,
        default=DEFAULT_GCLOUD_HTTP_PORT,
        help="OIDC certs, tokens and faults (0: a free one)",
    )
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
    try:
        for port, option in ((args.port, "--port"), (args.http_port, "--http-port")):
            if port:
                ensure_port_free(args.host, port, what="Google Cloud emulator", option=option)
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
        with stop_on_signals(), emulator:
            print("Google Cloud emulator (Cloud Tasks, Cloud Scheduler, Cloud Run Jobs) is up.")
            print(f"  export {EMULATOR_ENV}={emulator.grpc_host}")
            print(f"  OIDC certs URL: {emulator.certs_url}")
            print(f"  faults:         {emulator.http_url}/emulator/v1/faults")
            print(f"  job logs:       {emulator.log_dir.resolve()}/")
            print("Ctrl-C to stop.", flush=True)
            while True:
                time.sleep(3600)
    except StopRequested:
        return 0
    except EmulatorError as exc:
        print(exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
