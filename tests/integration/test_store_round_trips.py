"""Pin the number of Firestore round trips per lifecycle step."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from django_tasks_fs.store import ExecutionStore
from tests.conftest import ExecutionFactory

#: The Firestore RPCs the Python client makes (GAPIC method names).
RPCS = (
    "batch_get_documents",
    "commit",
    "run_query",
    "run_aggregation_query",
    "begin_transaction",
    "rollback",
)


@pytest.fixture
def rpcs(executions: ExecutionStore, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count every RPC the store's Firestore client sends."""
    counts: Counter[str] = Counter()
    executions.clock.now()  # its one read of Firestore's time per process, done first
    api = executions.client._firestore_api
    for name in RPCS:
        original = getattr(api, name)

        def counted(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
            counts[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(api, name, counted)
    return counts


def test_create_claim_finish_round_trips(
    executions: ExecutionStore, make_execution: ExecutionFactory, rpcs: Counter[str]
) -> None:
    execution = make_execution()
    assert rpcs == Counter({"commit": 1}), "create: one write"

    rpcs.clear()
    lease = executions.claim(execution.id, worker_id="w", lease_duration=timedelta(seconds=60))
    assert rpcs == Counter({"batch_get_documents": 1, "commit": 1}), "claim: 1 read + 1 CAS write"

    rpcs.clear()
    lease = executions.renew(lease, lease_duration=timedelta(seconds=60))
    assert rpcs == Counter({"commit": 1}), "heartbeat: one CAS write"

    rpcs.clear()
    executions.succeed(lease, {"ok": True})
    assert rpcs == Counter({"commit": 1}), "finish: one CAS write"


def test_claim_from_a_query_result_needs_no_read(
    executions: ExecutionStore, make_execution: ExecutionFactory, rpcs: Counter[str]
) -> None:
    make_execution()
    rpcs.clear()
    (found,) = executions.ready(backend="default")
    executions.claim(found.id, worker_id="w", lease_duration=timedelta(seconds=60), known=found)
    assert rpcs == Counter({"run_query": 1, "commit": 1})
