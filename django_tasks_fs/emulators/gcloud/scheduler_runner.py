"""Cloud Scheduler jobs and the clock that fires them.

A ticker thread looks for due slots every :data:`TICK` seconds; each run (one slot,
plus its retries per the job's retry_config) goes to a small thread pool. A job whose
previous run is still retrying skips the slot, so runs of one job never overlap.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.cloud import scheduler_v1

from . import cron
from .http_delivery import Delivery, send
from .oidc import TokenIssuer
from .retry import backoff
from .rpc import clone
from .workers import WorkerPool

logger = logging.getLogger(__name__)

TICK = 0.2  #: seconds between looks for due slots
DEFAULT_WORKERS = 4
USER_AGENT = "Google-Cloud-Scheduler"


@dataclass(slots=True)
class JobEntry:
    """A stored job and its next slot (None while paused)."""

    job: Any  #: scheduler_v1.Job
    next_slot: datetime | None
    running: bool = False


class JobBook:
    """The scheduler's jobs, under one lock."""

    def __init__(self, *, seconds_cron: bool) -> None:
        self.lock = threading.Lock()
        self.jobs: dict[str, JobEntry] = {}
        self.seconds_cron = seconds_cron  #: accept 6-field crons (tests only)

    def plan(self, entry: JobEntry, after: datetime) -> None:
        """Set the next slot after ``after`` (none while paused); call with the lock held."""
        job = entry.job
        if job.state != scheduler_v1.Job.State.ENABLED:
            entry.next_slot = None
            return
        entry.next_slot = cron.next_slot(
            job.schedule, job.time_zone, after, seconds=self.seconds_cron
        )
        job.schedule_time = entry.next_slot

    def due(self, now: datetime) -> list[tuple[Any, datetime]]:
        """Claim the jobs whose slot has come: (job copy, slot) pairs."""
        fired: list[tuple[Any, datetime]] = []
        with self.lock:
            for entry in self.jobs.values():
                slot = entry.next_slot
                if slot is None or slot > now:
                    continue
                if entry.running:
                    logger.warning("slot skipped, previous run busy job=%s", entry.job.name)
                else:
                    entry.running = True
                    fired.append((clone(entry.job), slot))
                self.plan(entry, max(slot, now))
        return fired

    def record(self, name: str, started: datetime, delivery: Delivery, *, done: bool) -> None:
        """Note one attempt's time and outcome on the job, if it still exists."""
        with self.lock:
            entry = self.jobs.get(name)
            if entry is None:
                return
            entry.job.last_attempt_time = started
            entry.job.status = _status(delivery)
            if done:
                entry.running = False


class SchedulerClock:
    """Fire due Cloud Scheduler jobs on time, and on demand for RunJob."""

    def __init__(self, book: JobBook, issuer: TokenIssuer, *, workers: int = DEFAULT_WORKERS):
        self._book = book
        self._issuer = issuer
        self._stop = threading.Event()
        self._pool = WorkerPool(workers, "emulator-scheduler")
        self._thread = threading.Thread(target=self._tick, name="emulator-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._pool.stop()

    def fire(self, job: Any, slot: datetime) -> None:
        """Run ``job`` (a copy) for ``slot`` in the pool."""
        self._pool.submit(self._run, job, slot)

    def _tick(self) -> None:
        while not self._stop.wait(TICK):
            for job, slot in self._book.due(datetime.now(UTC)):
                self.fire(job, slot)

    def _run(self, job: Any, slot: datetime) -> None:
        try:
            self._attempts(job, slot)
        except Exception:
            logger.exception("scheduler run crashed job=%s", job.name)
            with self._book.lock:
                entry = self._book.jobs.get(job.name)
                if entry is not None:
                    entry.running = False

    def _attempts(self, job: Any, slot: datetime) -> None:
        retry = job.retry_config
        first = time.monotonic()
        deadline = job.attempt_deadline.total_seconds()
        attempt = 0
        while True:
            started = datetime.now(UTC)
            delivery = send(
                method=scheduler_v1.HttpMethod(job.http_target.http_method).name,
                url=job.http_target.uri,
                headers=self.headers(job, slot),
                body=job.http_target.body,
                timeout=deadline,
            )
            logger.info(
                "scheduler attempt job=%s slot=%s attempt=%s status=%s",
                job.name,
                slot.isoformat(),
                attempt,
                delivery.status,
            )
            max_duration = retry.max_retry_duration.total_seconds()
            done = (
                delivery.ok
                or self._stop.is_set()
                or (
                    attempt >= retry.retry_count
                    and (not max_duration or time.monotonic() - first >= max_duration)
                )
            )
            self._book.record(job.name, started, delivery, done=done)
            if done:
                return
            attempt += 1
            delay = backoff(
                retry=attempt,
                min_backoff=retry.min_backoff_duration.total_seconds(),
                max_backoff=retry.max_backoff_duration.total_seconds(),
                max_doublings=retry.max_doublings,
            )
            if self._stop.wait(delay):
                self._book.record(job.name, started, delivery, done=True)
                return

    def headers(self, job: Any, slot: datetime) -> dict[str, str]:
        """The job's headers, then those Cloud Scheduler sets."""
        target = job.http_target
        headers = dict(target.headers)
        if target.body and "content-type" not in {key.lower() for key in headers}:
            headers["Content-Type"] = "application/octet-stream"
        headers.update(
            {
                "User-Agent": USER_AGENT,
                "X-CloudScheduler": "true",
                "X-CloudScheduler-JobName": job.name.rsplit("/", 1)[-1],
                "X-CloudScheduler-ScheduleTime": rfc3339(slot),
            }
        )
        if "oidc_token" in target:
            headers["Authorization"] = "Bearer " + self._issuer.id_token(
                email=target.oidc_token.service_account_email,
                audience=target.oidc_token.audience or target.uri,
            )
        return headers


def rfc3339(moment: datetime) -> str:
    """``2024-05-01T09:00:00Z`` (with microseconds only when there are some)."""
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(delivery: Delivery) -> dict[str, Any]:
    if delivery.ok:
        return {}
    if delivery.status is None:
        return {"code": 4 if delivery.timed_out else 14, "message": delivery.error}
    code = {400: 3, 401: 16, 403: 7, 404: 5, 409: 10, 429: 8, 503: 14}.get(delivery.status, 2)
    return {"code": code, "message": f"HTTP status {delivery.status}"}
