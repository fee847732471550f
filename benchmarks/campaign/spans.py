"""Bodies of ``tests.tasks.record_span`` read back from its log: when each ran, where.

Times are CLOCK_MONOTONIC (``time.monotonic()``): one clock for every process on a
Linux machine, and left alone by libfaketime with ``DONT_FAKE_MONOTONIC=1``, so bodies
run by workers with skewed wall clocks still compare.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Body:
    """One run of a body: [begin, end] on CLOCK_MONOTONIC."""

    token: str
    begin: float
    end: float
    pid: int
    worker: int  #: process group: the run_tasks worker
    how: str  #: "end" (returned), "stop" (interrupted), "killed" (kill -9, no line)
    skew: float  #: the process's time.time() minus the true wall clock, in seconds


def read_bodies(
    log: Path,
    *,
    wall_minus_monotonic: float | None = None,
    killed_at: dict[int, float] | None = None,
) -> list[Body]:
    """Pair each start with the end (or stop) its process logged next for the token.

    A start without either was killed: it ended when its worker was (``killed_at``,
    by process group), else it is still running (end = +inf).
    ``wall_minus_monotonic`` is ``time.time() - time.monotonic()`` in an unskewed
    process (by default, this one).
    """
    killed_at = killed_at or {}
    if wall_minus_monotonic is None:  # this process's clocks are not skewed
        wall_minus_monotonic = time.time() - time.monotonic()
    open_: dict[tuple[str, int], tuple[float, float, int]] = {}
    bodies: list[Body] = []
    for line in log.read_text().splitlines() if log.exists() else []:
        kind, token, *fields = line.split()
        if kind == "start":
            mono, wall, pid, group = float(fields[0]), float(fields[1]), *map(int, fields[2:4])
            open_[(token, pid)] = (mono, wall - mono - wall_minus_monotonic, group)
        elif kind in ("end", "stop"):
            mono, pid = float(fields[0]), int(fields[1])
            begin, skew, group = open_.pop((token, pid))
            bodies.append(Body(token, begin, mono, pid, group, kind, skew))
    for (token, pid), (begin, skew, group) in open_.items():
        end = killed_at.get(group, float("inf"))
        bodies.append(Body(token, begin, end, pid, group, "killed", skew))
    return bodies


def overlapping(bodies: list[Body]) -> int:
    """Pairs of consecutive bodies of one execution that ran at the same time."""
    by_token: dict[str, list[Body]] = {}
    for body in bodies:
        by_token.setdefault(body.token, []).append(body)
    count = 0
    for runs in by_token.values():
        runs.sort(key=lambda b: b.begin)
        # Any overlap shows between neighbours once sorted by begin, with a running max.
        latest_end = float("-inf")
        for body in runs:
            if body.begin < latest_end:
                count += 1
            latest_end = max(latest_end, body.end)
    return count


def figures(bodies: list[Body], executions: int) -> dict[str, int]:
    """Counts every scenario built on record_span reports."""
    completed = Counter(b.token for b in bodies if b.how == "end")
    overlaps = overlapping(bodies)
    return {
        "bodies_run": len(bodies),
        "bodies_completed": sum(completed.values()),
        "bodies_interrupted": sum(1 for b in bodies if b.how == "stop"),
        "bodies_killed": sum(1 for b in bodies if b.how == "killed"),
        "reruns": len(bodies) - len({b.token for b in bodies}),
        "completed_twice": sum(1 for c in completed.values() if c > 1),
        "overlapping_bodies": overlaps,
        "duplicated_bodies": overlaps,  #: two owners at once; a rerun after a crash is not
        "never_ran": executions - len({b.token for b in bodies}),
    }


def skews_by_worker(bodies: list[Body]) -> dict[int, tuple[float, float]]:
    """(min, max) wall-clock skew seen in the bodies each worker ran."""
    result: dict[int, tuple[float, float]] = {}
    for worker, group in itertools.groupby(
        sorted(bodies, key=lambda b: b.worker), key=lambda b: b.worker
    ):
        skews = [b.skew for b in group]
        result[worker] = (min(skews), max(skews))
    return result
