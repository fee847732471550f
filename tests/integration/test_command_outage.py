"""Management commands while Firestore is unreachable: the message naming the Firestore
tried, as a CommandError after ``firestore_timeout_seconds`` (not a traceback after
the client's 5-minute retries)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import CommandError, call_command

from emulator.faultproxy import FaultProxy


@pytest.fixture
def unreachable(tasks_project: str, settings: Any, proxy: FaultProxy) -> FaultProxy:
    """Every backend gives Firestore 2 s; the line to it is cut."""
    settings.TASKS = {
        alias: {**config, "OPTIONS": {**config["OPTIONS"], "firestore_timeout_seconds": 2}}
        for alias, config in settings.TASKS.items()
    }
    proxy.cut()
    return proxy


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("command", "returncode"),
    [
        (["purge_task_executions"], 1),
        (["purge_task_executions", "--dry-run"], 1),
        (["sweep_tasks"], 1),
        (["execute_task", "0123456789abcdef0123456789abcdef"], 75),  # Cloud Run retries
    ],
    ids=["purge", "purge --dry-run", "sweep", "execute_task"],
)
def test_a_command_during_an_outage_exits_with_the_message(
    unreachable: FaultProxy, command: list[str], returncode: int
) -> None:
    with pytest.raises(CommandError) as failure:
        call_command(*command)
    message = str(failure.value)
    assert message.startswith("Firestore is unreachable (ServiceUnavailable: ")
    assert f"the Firestore emulator at {unreachable.host!r}" in message
    assert failure.value.returncode == returncode
