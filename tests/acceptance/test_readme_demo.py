"""The README's first command, ``python -m emulator.demo``, runs green (it checks its own
outcome and exits 1 on a surprise)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.factories import REPO_ROOT

#: The demo starts both emulators itself (not through the fixtures).
pytestmark = [pytest.mark.slow, pytest.mark.firestore, pytest.mark.gcloud]


def test_the_demo_runs_every_task_to_the_outcome_it_shows() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "emulator.demo"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "nothing is left READY or RUNNING" in run.stdout
    assert "add(1, 2) via Cloud Tasks" in run.stdout
