"""What the campaign's scenarios share: settings for a run, HTTP deliveries, tallies."""

from __future__ import annotations

import itertools
import sys
import urllib.error
import urllib.request
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


def deliver(url: str, token: str, execution_id: str) -> int:
    request = urllib.request.Request(
        url,
        data=f"execution_id={execution_id}&backend=cloud".encode(),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


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


JOB = "e2e-job"  # the cloudjobs backend's queue in tests/settings.py


def create_job(gcloud: Any, project: str, *, max_retries: int) -> None:
    """Create the ``cloudjobs`` backend's job in the Google Cloud emulator: its
    ``execute_task`` containers reach this run's Firestore and emulator."""
    import os

    from django_tasks_fs.gcp.clients import jobs_client

    env = {
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "TEST_FIRESTORE_PROJECT": project,
        "FIRESTORE_EMULATOR_HOST": os.environ["FIRESTORE_EMULATOR_HOST"],
        "PYTHONPATH": str(REPO_ROOT),
        "TEST_GCLOUD_HOST": gcloud.grpc_host,
        "TEST_CERTS_URL": gcloud.certs_url,
    }
    container = {"image": "app", "env": [{"name": k, "value": v} for k, v in env.items()]}
    jobs_client(gcloud.grpc_host).create_job(
        parent=f"projects/{project}/locations/us-central1",
        job_id=JOB,
        job={
            "template": {
                "task_count": 1,
                "template": {"max_retries": max_retries, "containers": [container]},
            }
        },
    ).result(timeout=30)
