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


class _InProcessChild:
    """A warm process stand-in: its chunk runs in this process when the pool collects."""

    def __init__(self) -> None:
        import multiprocessing

        self.conn, self._other = multiprocessing.Pipe()
        self.job: Any = None


class InProcessPool:
    """The warm pool's interface, with chunks run by ``run_chunk`` in this process (the
    in-memory store is not shared with real children). A chunk is claimed only when
    collected, as a real child claims it after the hand-out."""

    def __init__(self, size: int) -> None:
        from django_tasks_fs.worker.startup import StartFailures

        self.size = size
        self.children: list[_InProcessChild] = []
        self.launched = 0
        self.claims = 0
        self.failures = StartFailures("worker process")
        self.chunks: list[list[str]] = []  #: ids of each chunk handed out

    def want(self, count: int) -> None:
        while len(self.children) < min(self.size, count):
            self.children.append(_InProcessChild())
            self.launched += 1

    def idle(self) -> list[_InProcessChild]:
        return [c for c in self.children if c.job is None]

    def busy(self) -> list[_InProcessChild]:
        return [c for c in self.children if c.job is not None]

    def unclaimed(self) -> bool:
        return False  # each collect() claims and runs every chunk handed out

    def submit(self, child: _InProcessChild, job: Any) -> None:
        child.job = job
        child._other.send(None)  # readable: the worker's wait returns at once
        self.chunks.append(job.ids)

    def collect(self, timeout: float) -> list[Any]:
        import threading

        from django_tasks_fs.worker.chunks import run_chunk

        finished = []
        for child in self.busy():
            child.conn.recv()
            finished.append((child.job, run_chunk(child.job, "test-worker", threading.Event())))
            child.job = None
        return finished

    def take_unstartable(self) -> list[Any]:
        return []

    def close(self) -> list[Any]:
        return []

    def stop(self, *, kill: bool = False) -> None:
        for child in self.children:
            child.conn.close()
            child._other.close()


def burst_worker(backend: Any, monkeypatch: Any, **options: Any) -> Any:
    from django_tasks_fs.worker import loop

    monkeypatch.setattr(loop, "settings_module", lambda: "tests.settings")
    worker = loop.Worker(loop.WorkerSettings(backends=[backend], **options))
    worker.handout.pool = InProcessPool(worker.settings.max_workers)  # type: ignore[assignment]
    return worker


def test_a_burst_closes_the_ready_listener_polls_and_listens_again_after(
    settings: Any, memory_project: str, monkeypatch: Any
) -> None:
    """20 executions at batch 4: the start-up poll comes back full, so the ready window
    is not listened to while the burst lasts (its claims are not billed as removals);
    batches come from polls when a process is free; a short poll reopens the listener.
    At most 1.2 documents read per task, where a listener alone costs 2."""
    from django.tasks import task_backends

    from django_tasks_fs.worker.loop import _LoopState
    from tests.settings import tasks_setting

    counts: OpCounts = enable_counting()
    counts.reset()
    try:
        settings.TASKS = tasks_setting(memory_project, store="memory")
        backend: Any = task_backends["default"]
        store = backend.executions
        executions = [write_execution(store) for _ in range(20)]
        worker = burst_worker(backend, monkeypatch, max_workers=4, batch_size=4)
        counts.reset()
        state = _LoopState()
        paused: list[bool] = []
        try:
            for _ in range(500):
                worker._step(state)
                paused.append(worker.feeds.paused)
                done = worker.handout.stats.finished == 20
                if done and worker.feeds.current and not worker.feeds.paused:
                    break
            assert worker.handout.stats.outcomes == {"succeeded": 20}
            assert worker.feeds.open
            assert not worker.feeds.paused  # listening again
            assert True in paused
            burst = counts.as_dict()
            # Each execution read once, by a poll; billed besides: the empty lease checks,
            # the empty schedules, the last (empty) poll, the reopened empty window.
            assert burst["reads"] == 20, burst
            assert burst["billed_reads"] <= 28, burst
            assert burst["listens"] == 2, burst  # schedules; the window, reopened
            chunks = worker.handout.pool.chunks
            handed = [i for chunk in chunks for i in chunk]
            assert sorted(handed) == sorted(e.id for e in executions)  # each one once
            # The listener reopened: a new execution comes from it, with no query.
            counts.reset()
            late = write_execution(store)
            for _ in range(500):
                worker._step(state)
                if worker.handout.stats.finished == 21:
                    break
            assert worker.handout.pool.chunks[-1] == [late.id]
            # Enters the window, leaves it when claimed (the leaving arrives on the
            # listener's thread, possibly after the body finished).
            wait_until(lambda: counts.reads >= 2, timeout=30.0)
            assert counts.queries == 0
            assert counts.reads == 2
        finally:
            worker.feeds.close()
            worker.handout.stop()
            worker.wakeup.close()
    finally:
        disable_counting()
        counts.reset()


def test_a_full_window_pauses_the_listener_until_a_poll_comes_back_short(
    settings: Any, memory_project: str, monkeypatch: Any
) -> None:
    """Listening when the burst arrives: the window fills, the listener closes, polls
    take the rest in priority order, and a short poll reopens it."""
    from django.tasks import task_backends

    from django_tasks_fs.worker.loop import _LoopState
    from tests.settings import tasks_setting

    settings.TASKS = tasks_setting(memory_project, store="memory")
    backend: Any = task_backends["default"]
    store = backend.executions
    worker = burst_worker(backend, monkeypatch, max_workers=2, batch_size=3)
    state = _LoopState()
    try:
        for _ in range(100):  # the start-up poll (empty), then the listeners
            worker._step(state)
            if worker.feeds.open and worker.feeds.current:
                break
        assert not worker.feeds.paused
        low = [write_execution(store, priority=0) for _ in range(5)]
        # The listener's full window arrives before the loop looks: had it looked at a
        # partial one (the writes arrive one by one on the listener's thread), it could
        # hand out and claim all 5 before the window ever filled.
        wait_until(worker.feeds.full, timeout=30.0)
        for _ in range(500):
            worker._step(state)
            if worker.feeds.paused:
                break
        assert worker.feeds.paused  # the window filled with due executions
        pool = worker.handout.pool
        known = sum(len(c) for c in pool.chunks) + len(worker.handout.backlog)
        high = [write_execution(store, priority=5) for _ in range(4)]
        for _ in range(500):
            worker._step(state)
            done = worker.handout.stats.finished == 9
            if done and worker.feeds.current and not worker.feeds.paused:
                break
        assert worker.handout.stats.outcomes == {"succeeded": 9}
        assert not worker.feeds.paused  # a short poll reopened the listener
        handed = [i for chunk in pool.chunks for i in chunk]
        assert sorted(handed) == sorted(e.id for e in low + high)
        # What was known when the listener closed went first; then the polls hand out
        # the best first: the executions written meanwhile, of a higher priority.
        assert known == 3  # the window: the batch size
        later = [5 if i in {e.id for e in high} else 0 for i in handed[known:]]
        assert later == [5, 5, 5, 5] + [0] * (5 - known)
    finally:
        worker.feeds.close()
        worker.handout.stop()
        worker.wakeup.close()


def test_a_chunk_reports_its_claim_before_it_runs(backend: Any) -> None:
    """The warm process says when its chunk is claimed (the worker's next burst poll
    waits for that): by then every execution of the chunk has left READY."""
    import threading

    from django.tasks import TaskResultStatus

    from django_tasks_fs.worker.chunks import Job, run_chunk

    store = backend.executions
    executions = [write_execution(store) for _ in range(3)]
    seen: list[set[str]] = []

    def on_claimed() -> None:
        seen.append({str(store.get(e.id).status) for e in executions})

    job = Job(backend=backend.alias, executions=tuple(executions))
    done = run_chunk(job, "test-worker", threading.Event(), on_claimed=on_claimed)
    assert seen == [{str(TaskResultStatus.RUNNING)}]
    assert [d.outcome for d in done] == ["succeeded"] * 3


def test_a_burst_on_an_empty_queue_sends_one_poll(
    settings: Any, memory_project: str, monkeypatch: Any
) -> None:
    """Worker start-up on an empty queue: the clock read, the schedules, one poll (ready,
    expired leases) and the look-ahead for retries, then exit: no confirming second poll
    right after the first came back empty."""
    from django.tasks import task_backends

    from tests.settings import tasks_setting

    counts: OpCounts = enable_counting()
    try:
        settings.TASKS = tasks_setting(memory_project, store="memory")
        backend: Any = task_backends["default"]
        counts.reset()
        worker = burst_worker(backend, monkeypatch, max_workers=2, batch_size=4, burst=True)
        stats = worker.run()
        assert stats.finished == 0
        sent = counts.as_dict()
        assert sent["queries"] == 4, sent  # schedules, ready, expired leases, retries soon
        assert sent["rpcs"] == 5, sent  # and the server's time
        assert sent["listens"] == 0, sent
    finally:
        disable_counting()
        counts.reset()
