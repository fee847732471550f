"""Pickup latency of ``run_tasks``: from just before ``enqueue()`` to the task body's start.

    uv run python benchmarks/pickup.py --tasks 50

Starts the Firestore emulator, then ``run_tasks`` with the library's default options
(max_workers 4, batch_size 4, poll interval 1 s) on a fresh project, waits until the
worker listens, and enqueues ``--tasks`` tasks one at a time, each after the previous
one started and a pause of ``--gap`` seconds (so the worker is idle, waiting, when each
arrives). The task body appends ``time.time()`` to a file; the enqueue side takes
``time.time()`` just before ``enqueue()``. Prints p50/p95/max in milliseconds, with
the poll interval as the anchor (what a polling worker's pickup averages half of).
Same machine, same clock: the two timestamps are comparable.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from records import loadavg

from django_tasks_fs.emulators.firestore import FirestoreEmulator

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCHMARKS_DIR.parent
POLL_INTERVAL = 1.0  #: the library's default poll_interval_seconds

#: Reads "path" lines on stdin; for each, takes the time and enqueues stamp(path).
ENQUEUE_SCRIPT = """
import sys, time
import django
django.setup()
from fs_project.tasks import stamp
for line in sys.stdin:
    started = time.time()
    stamp.enqueue(line.strip())
    print(started, flush=True)
"""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--gap", type=float, default=0.3, help="idle seconds between tasks")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="pickup-"))
    with FirestoreEmulator(log_path=workdir / "firestore.log") as firestore:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "BENCH_"))},
            "FIRESTORE_EMULATOR_HOST": firestore.host,
            "DJANGO_SETTINGS_MODULE": "fs_project.ops_settings",
            "PYTHONPATH": os.pathsep.join([str(BENCHMARKS_DIR), str(REPO_ROOT)]),
            "BENCH_PROJECT": f"pickup-{os.getpid()}",
            "BENCH_BACKEND": "local",
        }
        log = workdir / "worker.log"
        with log.open("w") as sink:
            worker = subprocess.Popen(
                [sys.executable, "-m", "django", "run_tasks", "-v", "2"],
                env=env, cwd=REPO_ROOT, stdout=sink, stderr=subprocess.STDOUT,
            )  # fmt: skip
        enqueuer = subprocess.Popen(
            [sys.executable, "-c", ENQUEUE_SCRIPT],
            env=env, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert enqueuer.stdin is not None
        assert enqueuer.stdout is not None
        try:
            deadline = time.monotonic() + 120
            while "listening for work" not in log.read_text():
                if time.monotonic() > deadline or worker.poll() is not None:
                    raise SystemExit(f"the worker did not start listening (see {log})")
                time.sleep(0.1)
            time.sleep(2.0)  # the warm children are up
            latencies = []
            for i in range(args.tasks):
                stamps = workdir / f"t{i}.txt"
                enqueuer.stdin.write(f"{stamps}\n")
                enqueuer.stdin.flush()
                enqueued = float(enqueuer.stdout.readline())
                deadline = time.monotonic() + 60
                while not stamps.exists() or not stamps.read_text().strip():
                    if time.monotonic() > deadline:
                        raise SystemExit(f"task {i} did not start (see {log})")
                    time.sleep(0.005)
                latencies.append((float(stamps.read_text().split()[0]) - enqueued) * 1000)
                time.sleep(args.gap)
        finally:
            enqueuer.stdin.close()
            enqueuer.wait(timeout=60)
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=60)
    result = {
        "tasks": args.tasks,
        "gap_seconds": args.gap,
        "load": loadavg(),
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "max_ms": round(max(latencies), 1),
        "anchor_poll_interval_ms": POLL_INTERVAL * 1000,
        "p50_vs_half_poll_interval": round(statistics.median(latencies) / (POLL_INTERVAL * 500), 3),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
