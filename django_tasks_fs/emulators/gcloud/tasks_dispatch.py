"""Deliver due Cloud Tasks HTTP tasks from a small thread pool, as Cloud Tasks does."""

from __future__ import annotations

import logging
import threading

from google.cloud import tasks_v2

from .http_delivery import send
from .oidc import TokenIssuer
from .tasks_state import Attempt, TaskBook
from .workers import WorkerPool

logger = logging.getLogger(__name__)

DEFAULT_WORKERS = 8
USER_AGENT = "Google-Cloud-Tasks"


class TaskDispatcher:
    """A thread that claims due tasks and a pool that delivers them."""

    def __init__(self, book: TaskBook, issuer: TokenIssuer, *, workers: int = DEFAULT_WORKERS):
        self._book = book
        self._issuer = issuer
        self._pool = WorkerPool(workers, "emulator-cloud-tasks")
        self._thread = threading.Thread(
            target=self._run, name="emulator-cloud-tasks-dispatcher", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._book.cond:
            self._book.closed = True
            self._book.cond.notify_all()
        self._thread.join(timeout=5)
        self._pool.stop()

    def _run(self) -> None:
        book = self._book
        with book.cond:
            while not book.closed:
                attempts, wait = book.claim_due()
                for attempt in attempts:
                    self._pool.submit(self._deliver, attempt)
                book.cond.wait(timeout=None if wait is None else max(wait, 0.001))

    def _deliver(self, attempt: Attempt) -> None:
        task = attempt.task
        request = task.http_request
        deadline = task.dispatch_deadline.total_seconds()  # create_task sets the default
        try:
            delivery = send(
                method=tasks_v2.HttpMethod(request.http_method).name,
                url=request.url,
                headers=self.headers(attempt),
                body=request.body,
                timeout=deadline,
            )
            logger.info(
                "task attempt task=%s retry=%s status=%s",
                attempt.name,
                task.dispatch_count,
                delivery.status,
            )
            self._book.record(attempt, delivery)
        except Exception:
            logger.exception("task delivery crashed task=%s", attempt.name)

    def headers(self, attempt: Attempt) -> dict[str, str]:
        """The request headers: the task's own, then those Cloud Tasks sets."""
        task = attempt.task
        request = task.http_request
        headers = dict(request.headers)
        lower = {key.lower() for key in headers}
        if request.body and "content-type" not in lower:
            headers["Content-Type"] = "application/octet-stream"
        queue_id, task_id = _short_ids(task.name)
        headers.update(
            {
                "User-Agent": USER_AGENT,
                "X-CloudTasks-QueueName": queue_id,
                "X-CloudTasks-TaskName": task_id,
                "X-CloudTasks-TaskRetryCount": str(task.dispatch_count),
                "X-CloudTasks-TaskExecutionCount": str(task.response_count),
                "X-CloudTasks-TaskETA": f"{task.schedule_time.timestamp():.6f}",
            }
        )
        if attempt.previous_response is not None:
            headers["X-CloudTasks-TaskPreviousResponse"] = str(attempt.previous_response)
        if "oidc_token" in request:
            headers["Authorization"] = "Bearer " + self._issuer.id_token(
                email=request.oidc_token.service_account_email,
                audience=request.oidc_token.audience or request.url,
            )
        return headers


def _short_ids(task_name: str) -> tuple[str, str]:
    parts = task_name.split("/")
    return parts[5], parts[7]
