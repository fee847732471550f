"""Firestore outage: Firestore cut off, then slow, then frozen, under a running worker.

One ``run_tasks`` worker (a subprocess) drains ``--executions`` tasks; every client
reaches the emulator through ``emulator.faultproxy.FaultProxy``. Mid-run:

1. cut: for ``--outage-seconds`` the proxy refuses new connections and resets the live
   ones (the emulator keeps its in-memory data);
2. slow: for ``--slow-seconds`` every chunk is forwarded ``--latency-ms`` late, both ways;
3. freeze: for ``--freeze-seconds`` the emulator's JVM is stopped (SIGSTOP, then SIGCONT):
   connections stay open and nothing answers.

During each phase this process calls ``enqueue()`` (probes, each with a marker in its
args; one starts 2 s before the cut ends and should ride it out): while Firestore is
away it must fail with StoreUnavailable within the backend's ``enqueue_timeout``
(``--enqueue-timeout`` overrides it), and a probe that says "not enqueued" must leave no execution
behind (looked up by id and by marker after recovery); one that succeeds must run
once. The worker is never restarted: afterwards it must finish everything by itself
(0 lost, no two bodies of one execution at once, nothing RUNNING/READY).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .common import REPO_ROOT, final_statuses, setup
from .spans import figures, read_bodies


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("firestore-outage")
    group.add_argument(
        "--outage-seconds", type=float, default=15.0, help="connection to Firestore cut this long"
    )
    group.add_argument("--slow-seconds", type=float, default=10.0, help="slow phase length")
    group.add_argument(
        "--latency-ms", type=float, default=250.0, help="slow phase: delay of every chunk"
    )
    group.add_argument(
        "--freeze-seconds",
        type=float,
        default=12.0,
        help="emulator JVM stopped (SIGSTOP) this long; 0 skips the phase",
    )
    group.add_argument(
        "--enqueue-timeout",
        type=float,
        default=None,
        help="override the backend's enqueue_timeout (default: the product's, 10 s)",
    )
    group.add_argument(
        "--body-seconds",
        type=float,
        default=None,
        help="firestore-outage / clock-skew: how long each body sleeps (0.2 / 0.8)",
    )


class Probe(threading.Thread):
    """One enqueue() from this process, timed, with its outcome."""

    def __init__(self, phase: str, n: int, log: Path, body: float) -> None:
        super().__init__(daemon=True)
        self.marker = f"probe-{phase}-{n}"
        self.phase = phase
        self.log, self.body = log, body
        self.started = time.monotonic()
        self.seconds = 0.0
        self.execution_id = ""
        self.error: BaseException | None = None

    def run(self) -> None:
        from tests import tasks

        self.started = time.monotonic()
        try:
            self.execution_id = tasks.record_span.enqueue(str(self.log), self.marker, self.body).id
        except BaseException as exc:
            self.error = exc
            self.execution_id = str(getattr(exc, "execution_id", ""))
        self.seconds = time.monotonic() - self.started

    def report(self) -> dict[str, Any]:
        from django_tasks_fs.exceptions import StoreUnavailable

        outcome = "enqueued"
        if isinstance(self.error, StoreUnavailable):
            outcome = "maybe written" if self.error.maybe_written else "not enqueued"
        elif self.error is not None:
            outcome = "unclear error"
        return {
            "phase": self.phase,
            "outcome": outcome,
            "seconds": round(self.seconds, 2),
            "error": f"{type(self.error).__name__}: {self.error}" if self.error else None,
        }


def _probe(probes: list[Probe], phase: str, log: Path, body: float) -> Probe:
    probe = Probe(phase, len(probes), log, body)
    probe.start()
    probes.append(probe)
    return probe


def run(args: argparse.Namespace) -> dict[str, Any]:
    from emulator.faultproxy import FaultProxy

    executions = args.executions
    body = args.body_seconds if args.body_seconds is not None else 0.2
    emulator = args.firestore  # set by chaos.py: the FirestoreEmulator
    with FaultProxy(emulator.host) as proxy:
        os.environ["FIRESTORE_EMULATOR_HOST"] = proxy.host
        return _run(args, proxy, emulator, executions, body)


def _run(
    args: argparse.Namespace, proxy: Any, emulator: Any, executions: int, body: float
) -> dict[str, Any]:
    project = f"chaos-outage-{os.getpid()}"
    setup(project)
    from django.tasks import task_backends

    from django_tasks_fs.backends.base import FirestoreBackend
    from tests import tasks

    backend: Any = task_backends["default"]
    store = backend.executions
    # Each thread has its own backend instances (task_backends): set it on the class.
    enqueue_timeout = args.enqueue_timeout or FirestoreBackend.enqueue_timeout
    folder = Path(tempfile.mkdtemp())
    log, probe_log, worker_log = folder / "bodies.txt", folder / "probes.txt", folder / "worker.log"
    FirestoreBackend.enqueue_timeout = 120.0  # a cold emulator on a busy machine is slow at first
    ids = [tasks.record_span.enqueue(str(log), f"t{n}", body).id for n in range(executions)]
    FirestoreBackend.enqueue_timeout = enqueue_timeout
    env = {
        **os.environ,
        "TEST_FIRESTORE_PROJECT": project,
        "PYTHONPATH": str(REPO_ROOT),
        "FIRESTORE_EMULATOR_HOST": proxy.host,
    }
    command = [sys.executable, "-m", "django", "run_tasks", "--backend", "default", "-v", "1"]
    started = time.monotonic()
    timeline: dict[str, float] = {}
    probes: list[Probe] = []

    def finished() -> int:
        return sum(1 for e in store.get_many(ids) if e.is_finished)

    def wait_finished(count: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        done = finished()
        while done < count and time.monotonic() < deadline:
            time.sleep(0.2)
            done = finished()
        return done

    def mark(name: str) -> None:
        timeline[name] = round(time.monotonic() - started, 2)

    progress: dict[str, int] = {}
    with worker_log.open("w") as output:
        worker = subprocess.Popen(
            command,
            env=env,
            cwd=REPO_ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            progress["before_cut"] = wait_finished(max(1, executions // 5), 300)
            # 1. Cut: refuse and reset every connection; enqueue while it lasts.
            mark("cut")
            proxy.cut()
            for _ in range(3):
                _probe(probes, "cut", probe_log, body)
                time.sleep(0.5)
            time.sleep(max(0.0, args.outage_seconds - 1.5 - 2.0))
            late = _probe(probes, "end-of-cut", probe_log, body)  # rides out the last 2 s
            time.sleep(
                max(0.0, args.outage_seconds - (time.monotonic() - started - timeline["cut"]))
            )
            proxy.restore()
            mark("restored")
            late.join()
            before = finished()
            progress["at_restore"] = before
            wait_finished(min(before + 1, executions), 120)
            mark("first_finish_after_cut")
            # 2. Slow: every chunk held back, both ways.
            mark("slow")
            proxy.latency = args.latency_ms / 1000
            at_slow = finished()
            slow = _probe(probes, "slow", probe_log, body)
            time.sleep(args.slow_seconds)
            slow.join()
            progress["during_slow"] = finished() - at_slow
            proxy.latency = 0.0
            mark("fast_again")
            # 3. Freeze: the JVM stopped, its connections open and silent.
            if args.freeze_seconds > 0:
                mark("freeze")
                os.killpg(emulator.process.pid, signal.SIGSTOP)
                try:
                    frozen = _probe(probes, "freeze", probe_log, body)
                    time.sleep(args.freeze_seconds)
                finally:
                    os.killpg(emulator.process.pid, signal.SIGCONT)
                mark("thawed")
                frozen.join()
                wait_finished(min(finished() + 1, executions), 120)
                mark("first_finish_after_thaw")
            for probe in probes:
                probe.join()
            # Then the worker must finish everything by itself.
            wanted = ids + [p.execution_id for p in probes if p.error is None]
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                if all(e.is_finished for e in store.get_many(wanted)):
                    break
                time.sleep(0.5)
            mark("all_finished")
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        elapsed = time.monotonic() - started
    # Give writes that a frozen Firestore took late (maybe-written probes) time to run.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        landed = [p for p in probes if p.error is not None and _exists(store, p.execution_id)]
        if all(store.get(p.execution_id).is_finished for p in landed):
            break
        time.sleep(0.5)
    wall_minus_mono = time.time() - time.monotonic()
    bodies = read_bodies(log, wall_minus_monotonic=wall_minus_mono)
    probe_bodies = read_bodies(probe_log, wall_minus_monotonic=wall_minus_mono)
    ran = {b.token for b in probe_bodies}
    markers = _markers(store)
    half_done = 0
    probe_reports = []
    for probe in probes:
        report = probe.report()
        exists = _exists(store, probe.execution_id)
        report["execution_exists"] = exists
        report["bodies"] = sum(1 for b in probe_bodies if b.token == probe.marker)
        report["status"] = str(store.get(probe.execution_id).status) if exists else None
        if report["outcome"] == "not enqueued" and (
            exists or probe.marker in ran or markers.get(probe.marker)
        ):
            half_done += 1  # said "not enqueued", yet something was written or ran
        written = report["outcome"] in ("enqueued", "maybe written") and exists
        if written and (report["status"] != "SUCCESSFUL" or report["bodies"] != 1):
            half_done += 1  # written, yet not run exactly once
        probe_reports.append(report)
    final = final_statuses(store, ids)
    worker_text = worker_log.read_text(errors="replace")
    span = figures(bodies, executions)
    return {
        "scenario": "firestore-outage",
        "executions": executions,
        "body_seconds": body,
        "injected": {
            "cut_seconds": args.outage_seconds,
            "slow_seconds": args.slow_seconds,
            "latency_ms": args.latency_ms,
            "freeze_seconds": args.freeze_seconds,
            "connections_reset": proxy.stats.reset,
        },
        "enqueue_timeout": enqueue_timeout,
        "enqueue_probes": probe_reports,
        "half_done_enqueues": half_done,
        "unclear_enqueue_errors": sum(1 for r in probe_reports if r["outcome"] == "unclear error"),
        "timeline_seconds": timeline,
        "recovery_seconds": {
            "after_cut": round(timeline["first_finish_after_cut"] - timeline["restored"], 2),
            **(
                {"after_freeze": round(timeline["first_finish_after_thaw"] - timeline["thawed"], 2)}
                if "thawed" in timeline
                else {}
            ),
        },
        "finished_by_phase": progress,
        "worker_exit_code": worker.returncode,
        "worker_step_failures_logged": worker_text.count("worker step failed"),
        "heartbeats_lost": worker_text.count("heartbeat failing past the lease"),
        "chunks_crashed": worker_text.count("chunk crashed"),
        **span,
        "lost": executions - final.get("SUCCESSFUL", 0),
        "stuck_running_or_ready": final.get("RUNNING", 0) + final.get("READY", 0),
        "seconds": round(elapsed, 1),
    }


def _exists(store: Any, execution_id: str) -> bool:
    from django_tasks_fs.exceptions import ExecutionNotFound

    if not execution_id:
        return False
    try:
        store.get(execution_id)
    except ExecutionNotFound:
        return False
    return True


def _markers(store: Any) -> dict[str, int]:
    """How many executions carry each probe marker in their args (all pages)."""
    counts: dict[str, int] = {}
    cursor = None
    while True:
        page = store.page(limit=500, cursor=cursor)
        for execution in page.items:
            for arg in execution.args:
                if isinstance(arg, str) and arg.startswith("probe-"):
                    counts[arg] = counts.get(arg, 0) + 1
        cursor = page.next_cursor
        if cursor is None:
            return counts
