"""Unique enqueue benchmark: what a unique key adds to ``enqueue()``, in time and operations.

    uv run python benchmarks/unique_enqueue.py --calls 500 --repeat 3

Against the official Firestore emulator, ``ProcessBackend``, serial calls from one
thread, each phase on a fresh project: ``plain`` (``noop.enqueue()``, the anchor),
``new key`` (a unique task, every call a new key: key and execution in one commit),
``held key`` (every call on a key held by a READY execution: a refused commit and
two reads) and ``taken over`` (every call on a key whose execution finished). Prints
one JSON line per phase and repeat, then the medians and their ratios to ``plain``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

PHASES = ("plain", "new key", "held key", "taken over")


def phase(name: str, calls: int) -> dict[str, Any]:
    """Time ``calls`` enqueues of phase ``name`` on a fresh project, and count them."""
    from django.tasks import task_backends
    from django.test.utils import override_settings

    from django_tasks_fs.store.ops.counting import disable_counting, enable_counting
    from tests import tasks
    from tests.settings import tasks_setting

    override_settings(TASKS=tasks_setting(f"bench-unique-{uuid.uuid4().hex[:8]}")).enable()
    backend: Any = task_backends["default"]
    plain = tasks.echo
    unique = tasks.echo.using(unique_key=lambda n: f"k{n}")
    enqueue: Callable[[int], Any] = {
        "plain": lambda n: plain.enqueue(n),
        "new key": lambda n: unique.enqueue(n),
        "held key": lambda n: unique.enqueue(0),
        "taken over": lambda n: unique.enqueue(n),
    }[name]
    if name == "held key":
        unique.enqueue(0)
    if name == "taken over":  # every key held by an execution that finished
        for n in range(calls):
            result = unique.enqueue(n)
            backend.executions.cancel(result.id)  # FAILED: finished
    counts = enable_counting()
    try:
        backend.__dict__.pop("executions", None)  # a store created now counts
        backend.__dict__.pop("unique_keys", None)
        enqueue(-1 if name != "held key" else 0)  # opens the channel, reads the clock
        counts.reset()
        started = time.perf_counter()
        for n in range(calls):
            enqueue(n)
        elapsed = time.perf_counter() - started
        spent = counts.as_dict()
    finally:
        disable_counting()
    return {
        "phase": name,
        "calls": calls,
        "seconds": round(elapsed, 3),
        "ms_per_call": round(1000 * elapsed / calls, 3),
        **{f"{k}_per_call": round(v / calls, 3) for k, v in spent.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=500, help="enqueues per phase")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django_tasks_fs.emulators.firestore import FirestoreEmulator

    runs: list[dict[str, Any]] = []
    with FirestoreEmulator() as firestore:
        os.environ["FIRESTORE_EMULATOR_HOST"] = firestore.host
        for repeat in range(args.repeat):
            for name in PHASES:  # interleaved: a slow spell of the machine hits every phase
                run = {"repeat": repeat + 1, **phase(name, args.calls)}
                print(json.dumps(run), flush=True)
                runs.append(run)
    medians = {
        name: statistics.median(r["ms_per_call"] for r in runs if r["phase"] == name)
        for name in PHASES
    }
    print(f"\n| phase | ms per call (median of {args.repeat}) | ratio to plain |")
    print("|---|---|---|")
    for name in PHASES:
        print(f"| {name} | {medians[name]:.2f} | {medians[name] / medians['plain']:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
