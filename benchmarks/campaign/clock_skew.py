"""Clock skew: two workers whose clocks disagree by seconds, and kill -9 of each in turn.

Two ``run_tasks`` workers on one backend drain ``--executions`` tasks whose bodies
outlast a heartbeat interval (``--body-seconds``, default 0.8 s; the lease is 2 s,
renewed every 0.3 s). Their wall clocks are skewed by ``+--skew-seconds`` and
``---skew-seconds`` with libfaketime (``LD_PRELOAD``, ``FAKETIME``,
``DONT_FAKE_MONOTONIC=1`` so monotonic clocks and timers are left alone: see
``tests/faketime.py``). The skew is checked before the run and measured in every body
from ``time.time()``. ``--skew-kills`` times, alternating
(the slow-clock worker first), a worker is killed (-9) while it runs a body, then
restarted with the same skew: the other must take over the dead worker's leases.

Leases are decided on Firestore's time, so no body may run while another body of the
same execution runs (bodies are timed on CLOCK_MONOTONIC, which is system-wide and not
skewed), every execution must succeed and none be left RUNNING/READY. ``takeover``
reports how long after a kill each killed body started again: with server time about
the lease's remaining life plus the reclaim interval, whichever worker takes over.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import REPO_ROOT, final_statuses, setup
from .spans import figures, read_bodies


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("clock-skew")
    group.add_argument(
        "--skew-seconds",
        type=float,
        default=4.0,
        help="worker clocks skewed by +this and -this (libfaketime)",
    )
    group.add_argument(
        "--skew-kills", type=int, default=4, help="kill -9 this many times, alternating workers"
    )


def measure_skew(env: dict[str, str]) -> float:
    """time.time() in a process started with ``env``, minus ours; checks that its
    time.monotonic() is ours (not faked) and that time.sleep() works there."""
    code = (
        "import time; m = time.monotonic(); time.sleep(0.01); "
        "print(time.time() - time.monotonic(), m)"
    )
    before = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    after = time.monotonic()
    offset, monotonic = map(float, out.stdout.split())
    if not before <= monotonic <= after:
        raise SystemExit(
            f"libfaketime skewed time.monotonic() too ({monotonic} not in [{before}, {after}])"
        )
    return offset - (time.time() - time.monotonic())


class Worker:
    """One skewed ``run_tasks`` process (restartable)."""

    def __init__(self, name: str, skew: float, env: dict[str, str], log: Path) -> None:
        self.name, self.skew, self.env, self.log = name, skew, env, log
        self.process: subprocess.Popen[bytes] | None = None
        self.groups: list[int] = []  #: process group of each start (= the worker's pid)

    def start(self) -> None:
        command = [sys.executable, "-m", "django", "run_tasks", "--backend", "default", "-v", "1"]
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                command,
                env=self.env,
                cwd=REPO_ROOT,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.groups.append(self.process.pid)

    def kill(self) -> float:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        at = time.monotonic()
        self.process.wait()
        return at

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait()


def _running_in(log: Path, group: int) -> int:
    """How many bodies the worker (process group) ``group`` is running now."""
    running: set[tuple[str, str]] = set()
    for line in log.read_text().splitlines() if log.exists() else []:
        kind, token, *fields = line.split()
        if kind == "start" and int(fields[3]) == group:
            running.add((token, fields[2]))
        elif kind in ("end", "stop"):
            running.discard((token, fields[1]))
    return len(running)


def run(args: argparse.Namespace) -> dict[str, Any]:
    executions, skew = args.executions, args.skew_seconds
    body = getattr(args, "body_seconds", None) or 0.8
    from tests.faketime import FaketimeNotFound, find_libfaketime, shifted_env

    try:
        library = find_libfaketime()
    except FaketimeNotFound as exc:
        raise SystemExit(f"clock-skew needs libfaketime. {exc}") from None
    project = f"chaos-skew-{os.getpid()}"
    setup(project)
    from django.tasks import task_backends

    from tests import tasks

    backend: Any = task_backends["default"]
    store = backend.executions
    folder = Path(tempfile.mkdtemp())
    log = folder / "bodies.txt"
    ids = [tasks.record_span.enqueue(str(log), f"t{n}", body).id for n in range(executions)]
    base = {**os.environ, "TEST_FIRESTORE_PROJECT": project, "PYTHONPATH": str(REPO_ROOT)}
    workers = [
        Worker("fast", +skew, shifted_env(base, f"{+skew:+g}s", library), folder / "fast.log"),
        Worker("slow", -skew, shifted_env(base, f"{-skew:+g}s", library), folder / "slow.log"),
    ]
    measured = {w.name: round(measure_skew(w.env), 3) for w in workers}
    for name, value in measured.items():
        wanted = skew if name == "fast" else -skew
        if abs(value - wanted) > 0.5:
            raise SystemExit(f"libfaketime did not skew the {name} clock: {value:+.3f}s")

    def finished() -> int:
        return sum(1 for e in store.get_many(ids) if e.is_finished)

    started = time.monotonic()
    for worker in workers:
        worker.start()
    killed_at: dict[int, float] = {}
    kills: list[dict[str, Any]] = []
    try:
        for n in range(args.skew_kills):
            # Kill at evenly spaced points of the run, the slow-clock worker first.
            target = executions * (n + 1) // (args.skew_kills + 2)
            deadline = time.monotonic() + 300
            while finished() < target and time.monotonic() < deadline:
                time.sleep(0.2)
            victim = workers[(n + 1) % 2]
            group = victim.groups[-1]
            # Kill it in the middle of a body, so that the survivor has a lease to take.
            deadline = time.monotonic() + 30
            while not _running_in(log, group) and time.monotonic() < deadline:
                time.sleep(0.05)
            killed_at[group] = victim.kill()
            kills.append({"worker": victim.name, "at_finished": finished()})
            victim.start()  # back, same skew, new process group
        deadline = time.monotonic() + 600
        while finished() < executions and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        exit_codes = {w.name: w.stop() for w in workers}
    elapsed = time.monotonic() - started
    bodies = read_bodies(
        log, wall_minus_monotonic=time.time() - time.monotonic(), killed_at=killed_at
    )
    names = {group: w.name for w in workers for group in w.groups}
    seen: dict[str, list[float]] = {}
    for b in bodies:
        seen.setdefault(names.get(b.worker, "?"), []).append(b.skew)
    # How long after its kill each killed body started again (on any worker).
    for kill, (group, at) in zip(kills, killed_at.items(), strict=True):
        delays = []
        for dead in (b for b in bodies if b.worker == group and b.how == "killed"):
            later = [b.begin for b in bodies if b.token == dead.token and b.begin > dead.begin]
            if later:
                delays.append(min(later) - at)
        kill["bodies_killed"] = len(delays)
        kill["taken_over_by"] = "fast" if kill["worker"] == "slow" else "slow"
        if delays:
            kill["takeover_seconds"] = {
                "min": round(min(delays), 2),
                "median": round(statistics.median(delays), 2),
                "max": round(max(delays), 2),
            }
    final = final_statuses(store, ids)
    span = figures(bodies, executions)
    worker_logs = "".join(w.log.read_text(errors="replace") for w in workers)
    return {
        "scenario": "clock-skew",
        "executions": executions,
        "body_seconds": body,
        "injected": {
            "skew_seconds": {"fast": +skew, "slow": -skew},
            "kill_9": len(kills),
        },
        "measured_skew_seconds": {
            "at_start": measured,
            "in_bodies": {
                name: [round(min(values), 3), round(max(values), 3)]
                for name, values in sorted(seen.items())
            },
        },
        "bodies_per_worker": {name: len(values) for name, values in sorted(seen.items())},
        "kills": kills,
        "worker_exit_codes": exit_codes,
        "leases_lost_in_logs": worker_logs.count("lease lost"),
        **span,
        "lost": executions - final.get("SUCCESSFUL", 0),
        "stuck_running_or_ready": final.get("RUNNING", 0) + final.get("READY", 0),
        "seconds": round(elapsed, 1),
    }
