"""Writers racing on one document: preconditions make exactly one of them win."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from django_tasks_fs.store.cas import compare_and_set
from django_tasks_fs.store.ops import DocumentOps, PreconditionFailed

C = "things"
THREADS = 8


def race(count: int, work: Callable[[int], None]) -> None:
    """Run ``work(i)`` in ``count`` threads released together."""
    barrier = threading.Barrier(count)

    def run(i: int) -> None:
        barrier.wait()
        work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)


def race_for(ops: DocumentOps, id: str, base: datetime | None) -> tuple[list[int], list[int]]:
    """THREADS threads update ``id`` conditionally on ``base``: (winners, losers)."""
    winners: list[int] = []
    losers: list[int] = []

    def claim(i: int) -> None:
        try:
            ops.update(C, id, {"owner": i}, last_update_time=base)
        except PreconditionFailed:
            losers.append(i)
        else:
            winners.append(i)

    race(THREADS, claim)
    return winners, losers


def test_racing_conditional_updates_have_exactly_one_winner(ops: DocumentOps) -> None:
    for round in range(5):
        created = ops.create(C, f"doc{round}", {"owner": None})
        winners, losers = race_for(ops, f"doc{round}", created)
        assert len(winners) == 1, winners
        assert len(losers) == THREADS - 1
        assert ops.get(C, f"doc{round}").data == {"owner": winners[0]}


def test_compare_and_set_loses_no_increment(ops: DocumentOps) -> None:
    ops.create(C, "counter", {"n": 0})

    def read() -> tuple[dict[str, object], datetime]:
        snapshot = ops.get(C, "counter")
        assert snapshot.data is not None
        assert snapshot.update_time is not None
        return {**snapshot.data, "_at": snapshot.update_time}, snapshot.read_time

    def write(before: dict[str, object], after: dict[str, object]) -> dict[str, object]:
        base = before["_at"]
        assert isinstance(base, datetime)
        ops.update(C, "counter", {"n": after["n"]}, last_update_time=base)
        return after

    def increment(i: int) -> None:
        for _ in range(10):
            compare_and_set(
                read=read,
                decide=lambda current, now: ({**current, "n": int(current["n"]) + 1}, None),  # type: ignore[call-overload]
                write=write,
                now=lambda: ops.server_time(C),
                subject="the counter",
            )

    race(4, increment)
    assert ops.get(C, "counter").data == {"n": 40}
