"""Short versions of the reliability campaign (benchmarks/chaos.py) for every CI run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

#: Every scenario starts the Firestore emulator itself (not through the fixture).
pytestmark = [pytest.mark.slow, pytest.mark.firestore]


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param(
            [
                "--scenario",
                "duplicates",
                "--executions",
                "20",
                "--deliveries",
                "10",
                "--concurrency",
                "20",
            ],
            id="duplicates",
        ),
        pytest.param(
            ["--scenario", "api-faults", "--executions", "30"],
            id="api-faults",
            marks=pytest.mark.gcloud,
        ),
        pytest.param(
            ["--scenario", "worker-crash", "--executions", "60", "--kills", "2"],
            id="worker-crash",
        ),
        pytest.param(
            ["--scenario", "run-jobs-crash", "--executions", "15", "--in-flight", "5"],
            id="run-jobs-crash",
            marks=pytest.mark.gcloud,
        ),
        pytest.param(
            [
                "--scenario",
                "load",
                "--executions",
                "60",
                "--concurrency",
                "30",
                "--task-seconds",
                "2.5",
            ],
            id="load-slow-tasks",
        ),
        pytest.param(
            [
                "--scenario",
                "firestore-outage",
                "--executions",
                "40",
                "--outage-seconds",
                "5",
                "--enqueue-timeout",
                "2",
                "--slow-seconds",
                "3",
                "--freeze-seconds",
                "3",
            ],
            id="firestore-outage",
        ),
        pytest.param(
            [
                "--scenario",
                "unique-keys",
                "--executions",
                "12",
                "--kills",
                "1",
                "--concurrency",
                "5",
            ],
            id="unique-keys",
        ),
        pytest.param(
            [
                "--scenario",
                "groups",
                "--executions",
                "40",
                "--groups",
                "4",
                "--kills",
                "1",
                "--duplicates",
                "1",
            ],
            id="groups",
        ),
        pytest.param(
            ["--scenario", "clock-skew", "--executions", "30", "--skew-kills", "2"],
            id="clock-skew",
            marks=pytest.mark.faketime,
        ),
    ],
)
def test_nothing_lost_or_duplicated(arguments: list[str]) -> None:
    run = subprocess.run(
        [sys.executable, "benchmarks/chaos.py", *arguments],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["lost"] == 0
    assert result["duplicated_bodies"] == 0  # never two bodies of one execution at once
    assert result.get("stuck_running_or_ready", 0) == 0
    assert result.get("job_runs_started_twice", 0) == 0  # a resend never starts a second run
    assert result.get("taken_over", 0) == 0  # heartbeats kept every lease of a live body
    assert result.get("half_done_enqueues", 0) == 0  # "not enqueued" yet written, or not run once
    assert result.get("unclear_enqueue_errors", 0) == 0  # enqueue failed with StoreUnavailable
    assert result.get("orphans", 0) == 0  # an execution written that no enqueue returned
    assert result.get("concurrent_holders", 0) == 0  # two executions of one unique key at once
    assert result.get("callbacks_missing", 0) == 0  # every group's callbacks ran
    assert result.get("callbacks_enqueued_twice", 0) == 0
    assert result.get("on_success_after_a_failure", 0) == 0
    if "bodies_run" in result:  # exactly one body each, plus one per body cut short
        # (killed, or stopped on a lost lease) or whose result was lost with its process
        extra = sum(
            result.get(key, 0) for key in ("bodies_killed", "bodies_interrupted", "completed_twice")
        )
        assert result["bodies_run"] == result["executions"] + extra
