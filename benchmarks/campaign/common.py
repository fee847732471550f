"""What the campaign's scenarios share: settings for a run, tallies, body intervals."""

from __future__ import annotations

import itertools
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def setup(project: str, **urls: str) -> None:
    """Point TASKS (the test project's settings) at this run's servers."""
    from django.test.utils import override_settings

    from tests.settings import tasks_setting

    override_settings(TASKS=tasks_setting(project, **urls)).enable()  # resets the backends


def final_statuses(store: Any, ids: Iterable[str]) -> Counter[str]:
    """How many of ``ids`` ended in each status."""
    return Counter(str(store.get(i).status) for i in ids)


def tally(bodies: Counter[str], final: Counter[str], executions: int) -> dict[str, int]:
    """The figures every scenario reports: bodies run, duplicated, lost, stuck."""
    return {
        "bodies_run": sum(bodies.values()),
        "duplicated_bodies": sum(max(0, c - 1) for c in bodies.values()),
        "lost": executions - final.get("SUCCESSFUL", 0),
        "stuck_running_or_ready": final.get("RUNNING", 0) + final.get("READY", 0),
    }


def body_intervals(log: Path, kill_times: Iterable[float]) -> dict[str, int]:
    """Read a log of ``start|end|died <token> <monotonic>`` lines; count overlaps.

    Each end (or self-inflicted death) closes the latest open start of its token; a
    start never closed was killed from outside: it ended at the first kill after it.
    Two intervals of one token that overlap mean two owners ran the body at once.
    """
    kills = sorted(kill_times)
    starts: dict[str, list[float]] = {}
    ends: dict[str, list[float]] = {}
    completed: Counter[str] = Counter()
    for line in log.read_text().splitlines() if log.exists() else []:
        kind, token, stamp = line.split()
        (starts if kind == "start" else ends).setdefault(token, []).append(float(stamp))
        completed[token] += kind == "end"
    overlapping = 0
    for token, token_starts in starts.items():
        open_starts = sorted(token_starts)
        intervals = []
        for end in sorted(ends.get(token, [])):
            begin = max(b for b in open_starts if b <= end)
            open_starts.remove(begin)
            intervals.append((begin, end))
        for begin in open_starts:
            intervals.append((begin, min((k for k in kills if k >= begin), default=float("inf"))))
        intervals.sort()
        overlapping += sum(
            1 for (_, end), (begin, _) in itertools.pairwise(intervals) if begin < end
        )
    started = sum(len(v) for v in starts.values())
    return {
        "bodies_started": started,
        "bodies_completed": sum(completed.values()),
        "reruns_after_a_crash": started - len(starts),
        "completed_twice": sum(1 for c in completed.values() if c > 1),
        "overlapping_bodies": overlapping,
        "duplicated_bodies": overlapping,
    }
