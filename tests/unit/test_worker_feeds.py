"""The worker's listeners (worker.feeds) and hand-out (worker.handout) on the in-memory
store: what wakes the loop, what it hands out, when it checks leases, what it costs."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django_tasks_fs.store.ops import OpCounts, memory_database
from django_tasks_fs.store.ops.counting import disable_counting, enable_counting
from django_tasks_fs.worker.feeds import Feeds, Wakeup
from django_tasks_fs.worker.handout import HandOut
from tests.conftest import wait_until
from tests.factories import write_execution

#: Long enough for the in-memory listener's thread; never waited for when tests pass.
WAIT = 10.0


def make_feeds(backend: Any, wakeup: Wakeup, window: int = 3) -> Feeds:
    return Feeds(
        [backend],
        queues_of={backend.alias: None},
        window=window,
        cron_backends=[backend],
        wakeup=wakeup,
    )


def handout(backend: Any) -> HandOut:
    return HandOut([backend], queues=None, max_workers=1, log_level=logging.WARNING)


def ids(items: list[Any]) -> list[str]:
    return [e.id for _, e in items]


def test_a_delivery_wakes_the_loop_and_shows_in_the_window(backend: Any) -> None:
    wakeup = Wakeup()
    feeds = make_feeds(backend, wakeup)
    feeds.start()
    try:
        assert wakeup.wait(WAIT)
        wait_until(lambda: feeds.current, timeout=WAIT)
        assert feeds.ready() == []
        wakeup.clear()
        assert not wakeup.is_set()
        store = backend.executions
        first = write_execution(store)
        assert wakeup.wait(WAIT)
        wait_until(lambda: len(feeds.ready()) == 1, timeout=WAIT)
        urgent = write_execution(store, priority=10)
        wait_until(lambda: ids(feeds.ready()) == [urgent.id, first.id], timeout=WAIT)
        assert not feeds.failed(0.0)
    finally:
        feeds.close()
        wakeup.close()


def test_executions_not_due_yet_wait_and_say_when(backend: Any) -> None:
    store = backend.executions
    due = write_execution(store)
    later = write_execution(store, run_after=store.clock.now() + timedelta(seconds=60))
    beyond = write_execution(store, run_after=store.clock.now() + timedelta(hours=2))
    wakeup = Wakeup()
    feeds = make_feeds(backend, wakeup)
    feeds.start()
    try:
        wait_until(lambda: feeds.current, timeout=WAIT)
        assert ids(feeds.ready()) == [due.id, later.id]  # beyond the horizon: not yet
        hand = handout(backend)
        not_due = hand.offer(feeds.ready())
        assert [e.id for _, e in hand.backlog] == [due.id]
        assert not_due is not None
        assert 50 < not_due <= 60
        hand.in_flight.add(due.id)  # handed out: not offered again
        hand.offer(feeds.ready())
        assert hand.backlog == []
        assert beyond.id not in ids(feeds.ready())
    finally:
        feeds.close()
        wakeup.close()


def test_an_execution_another_worker_takes_is_reported_as_left(backend: Any) -> None:
    store = backend.executions
    mine, theirs = write_execution(store), write_execution(store)
    wakeup = Wakeup()
    feeds = make_feeds(backend, wakeup)
    feeds.start()
    try:
        wait_until(lambda: len(feeds.ready()) == 2, timeout=WAIT)
        hand = handout(backend)
        hand.in_flight.add(mine.id)
        for execution in (mine, theirs):
            store.claim(execution.id, worker_id="w", lease_duration=timedelta(seconds=30))
        wait_until(lambda: feeds.ready() == [], timeout=WAIT)
        left = feeds.take_left()
        assert sorted(left) == sorted([mine.id, theirs.id])
        assert [i for i in left if not hand.took(i)] == [theirs.id]
        assert feeds.take_left() == []
    finally:
        feeds.close()
        wakeup.close()


def test_a_broken_listener_fails_the_feeds(backend: Any) -> None:
    wakeup = Wakeup()
    feeds = make_feeds(backend, wakeup)
    feeds.start()
    try:
        wait_until(lambda: feeds.current, timeout=WAIT)
        wakeup.clear()
        where = backend.executions.settings
        database = memory_database(where.resolved_project(), where.database)
        database.break_listeners(ConnectionError("cut"))
        assert wakeup.wait(WAIT)
        assert feeds.failed(0.0)
        assert isinstance(feeds.error, ConnectionError)
    finally:
        feeds.close()
        wakeup.close()


def test_lease_checks_return_when_the_next_lease_expires(backend: Any) -> None:
    store = backend.executions
    hand = handout(backend)
    assert hand.reclaim(limit=4) is None  # nothing runs: no lease to wait for
    running = write_execution(store)
    store.claim(running.id, worker_id="w", lease_duration=timedelta(seconds=30))
    soonest = hand.reclaim(limit=4)
    assert soonest is not None
    assert 25 < soonest <= 30
    assert hand.backlog == []
    dead = write_execution(store)
    store.claim(dead.id, worker_id="dead", lease_duration=timedelta(seconds=-1))
    hand.reclaim(limit=4)
    assert [e.id for _, e in hand.backlog] == [dead.id]


def test_a_listened_execution_is_billed_when_it_enters_and_when_it_leaves(
    settings: Any, memory_project: str
) -> None:
    """Firestore bills a listener a read per document added to, changed in or removed
    from its result (a claim removes it): 2 reads per execution, whatever the window."""
    from django.tasks import task_backends

    from tests.settings import tasks_setting

    counts: OpCounts = enable_counting()
    counts.reset()
    try:
        settings.TASKS = tasks_setting(memory_project, store="memory")
        backend: Any = task_backends["default"]
        store = backend.executions
        executions = [write_execution(store) for _ in range(5)]
        counts.reset()
        wakeup = Wakeup()
        feeds = make_feeds(backend, wakeup, window=10)
        feeds.start()
        try:
            wait_until(lambda: len(feeds.ready()) == 5, timeout=WAIT)
            wait_until(lambda: feeds.current, timeout=WAIT)
            assert (counts.reads, counts.billed_reads, counts.listens) == (5, 6, 2)
            for execution in executions:
                store.claim(
                    execution.id,
                    worker_id="w",
                    lease_duration=timedelta(seconds=30),
                    known=execution,
                )
            wait_until(lambda: feeds.ready() == [], timeout=WAIT)
            assert counts.reads == 10
            assert counts.queries == 0
        finally:
            feeds.close()
            wakeup.close()
    finally:
        disable_counting()
        counts.reset()


def test_a_window_still_showing_a_finished_execution_does_not_hand_it_out_again(
    backend: Any, monkeypatch: Any
) -> None:
    """The child's report can beat the listener's removal: the version handed out is not
    handed out again; a newer one (a retry) is."""
    from dataclasses import replace

    from django_tasks_fs.worker.chunks import Done

    store = backend.executions
    execution = write_execution(store)
    hand = handout(backend)
    jobs: list[Any] = []
    monkeypatch.setattr(hand.pool, "idle", lambda: [] if jobs else ["child"])
    monkeypatch.setattr(hand.pool, "submit", lambda child, job: jobs.append(job))
    monkeypatch.setattr(hand.pool, "want", lambda count: None)  # no real process
    hand.offer([(backend, execution)])
    assert hand.assign() == 1
    hand.record([(jobs[0], [Done(execution_id=execution.id, outcome="succeeded")])])
    assert not hand.busy()
    hand.offer([(backend, execution)])  # the stale window
    assert hand.backlog == []
    retry = replace(execution, update_time=store.clock.now() + timedelta(seconds=1))
    hand.offer([(backend, retry)])
    assert [e.id for _, e in hand.backlog] == [execution.id]
    # A refused claim changed nothing: the same version may be handed out again.
    jobs.clear()
    assert hand.assign() == 1
    hand.record([(jobs[0], [Done(execution_id=execution.id, outcome="refused")])])
    hand.offer([(backend, retry)])
    assert [e.id for _, e in hand.backlog] == [execution.id]
