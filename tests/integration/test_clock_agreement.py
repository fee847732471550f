"""The clocks the suite relies on agree: this process, its subprocesses and the Firestore
emulator. In the shifted-clock run (``python -m tests.faketime +400d -- pytest``, a CI
step) all of them are shifted by the same offset: proof that the run really was shifted."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from django_tasks_fs.store import ExecutionStore
from tests.conftest import ExecutionFactory
from tests.faketime import SHIFT_VARIABLE

#: Clocks on one machine agree far better; the bound only absorbs a slow machine.
AGREE = 60.0
#: The shifted run takes minutes; this bounds how long after its start this test runs.
LONGEST_RUN = 6 * 3600


def test_this_process_a_subprocess_and_firestore_tell_the_same_time(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    written = executions.get(make_execution().id)
    ours = time.time()
    assert written.update_time is not None
    assert abs(written.update_time.timestamp() - ours) < AGREE
    theirs = subprocess.run(
        [sys.executable, "-c", "import time; time.sleep(0.01); print(time.time())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert abs(float(theirs) - ours) < AGREE
    shift = os.environ.get(SHIFT_VARIABLE)
    if shift:  # "true time when the shifted run began, offset in seconds"
        began, offset = map(float, shift.split())
        assert offset <= ours - began < offset + LONGEST_RUN
