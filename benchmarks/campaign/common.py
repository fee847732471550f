"""What the campaign's scenarios share: settings for a run, tallies, body intervals."""

from __future__ import annotations

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
