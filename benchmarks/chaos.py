"""Reliability campaign (run on demand; its short versions run in the test suite).

    uv run python benchmarks/chaos.py --scenario duplicates --executions 100 --deliveries 20
    uv run python benchmarks/chaos.py --scenario api-faults --executions 200
    uv run python benchmarks/chaos.py --scenario worker-crash --executions 500 --kills 10
    uv run python benchmarks/chaos.py --scenario firestore-outage --executions 300
    uv run python benchmarks/chaos.py --scenario clock-skew --executions 300
    uv run python benchmarks/chaos.py --scenario unique-keys --executions 2000 --kills 5
    uv run python benchmarks/chaos.py --scenario groups --executions 500 --groups 10 --kills 10

The scenarios live in ``benchmarks/campaign/`` (one module each, described there); all
run against the official Firestore emulator started here. Prints one JSON line with the
figures; exits 1 if anything was lost, ran twice at once, or was left RUNNING/READY.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from types import ModuleType

from campaign import (
    api_faults,
    clock_skew,
    duplicates,
    groups,
    load,
    outage,
    run_jobs_crash,
    unique_keys,
    worker_crash,
)

SCENARIOS: dict[str, ModuleType] = {
    "duplicates": duplicates,
    "api-faults": api_faults,
    "worker-crash": worker_crash,
    "run-jobs-crash": run_jobs_crash,
    "load": load,
    "firestore-outage": outage,
    "clock-skew": clock_skew,
    "unique-keys": unique_keys,
    "groups": groups,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="duplicates")
    parser.add_argument("--executions", type=int, default=100)
    parser.add_argument("--deliveries", type=int, default=20, help="HTTP deliveries each")
    parser.add_argument("--concurrency", type=int, default=50, help="deliveries at once")
    parser.add_argument("--kills", type=int, default=10, help="how many kill -9")
    for module in SCENARIOS.values():
        if hasattr(module, "add_arguments"):
            module.add_arguments(parser)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    logging.getLogger("django.request").setLevel(logging.CRITICAL)  # 503s are expected here
    from django_tasks_fs.emulators.firestore import FirestoreEmulator

    with FirestoreEmulator() as firestore:
        os.environ["FIRESTORE_EMULATOR_HOST"] = firestore.host
        args.firestore = firestore  # for scenarios that freeze it (SIGSTOP)
        result = SCENARIOS[args.scenario].run(args)
    print(json.dumps(result))
    bad = (
        result["lost"]
        or result["duplicated_bodies"]
        or result.get("stuck_running_or_ready")
        or result.get("job_runs_started_twice")
        or result.get("half_done_enqueues")  # "not enqueued", yet written or run
        or result.get("unclear_enqueue_errors")  # not StoreUnavailable
        or result.get("orphans")  # written, yet no enqueue returned it
        or result.get("callbacks_missing")  # a group's callback never ran
        or result.get("callbacks_enqueued_twice")
        or result.get("on_success_after_a_failure")
    )
    return 1 if bad else 0


if __name__ == "__main__":
    threading.excepthook = lambda args: None  # noisy client disconnects at shutdown
    sys.exit(main())
