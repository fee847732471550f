"""The Cloud Tasks v2 gRPC service (``google.cloud.tasks.v2.CloudTasks``): queues and HTTP tasks."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.cloud import tasks_v2
from google.protobuf import empty_pb2

from .faults import FaultInjector
from .rpc import (
    Method,
    RpcError,
    check_id,
    clone,
    invalid,
    match_name,
    not_found,
    paginate,
    service_handler,
)
from .tasks_state import TaskBook, TaskEntry, fill_queue_defaults

SERVICE = "google.cloud.tasks.v2.CloudTasks"
PARENT = re.compile(r"projects/([^/]+)/locations/([^/]+)")
QUEUE = re.compile(r"(projects/[^/]+/locations/[^/]+)/queues/([^/]+)")
TASK = re.compile(r"(projects/[^/]+/locations/[^/]+/queues/[^/]+)/tasks/([^/]+)")
#: Limits Cloud Tasks enforces on an HTTP task.
DEFAULT_DISPATCH_DEADLINE = timedelta(minutes=10)
MIN_DISPATCH_DEADLINE = timedelta(seconds=15)
MAX_DISPATCH_DEADLINE = timedelta(minutes=30)
MAX_SCHEDULE_AHEAD = timedelta(days=30)
MAX_TASK_BYTES = 1024 * 1024
UPDATABLE_QUEUE_FIELDS = frozenset({"retry_config", "rate_limits", "stackdriver_logging_config"})
BODY_METHODS = frozenset(
    {tasks_v2.HttpMethod.POST, tasks_v2.HttpMethod.PUT, tasks_v2.HttpMethod.PATCH}
)


class CloudTasksService:
    """Handlers for the CloudTasks RPCs, over a :class:`TaskBook`."""

    def __init__(self, book: TaskBook) -> None:
        self.book = book

    def handler(self, faults: FaultInjector) -> grpc.GenericRpcHandler:
        t = tasks_v2
        return service_handler(
            SERVICE,
            [
                Method("CreateQueue", self.create_queue, t.CreateQueueRequest, t.Queue),
                Method("GetQueue", self.get_queue, t.GetQueueRequest, t.Queue),
                Method("ListQueues", self.list_queues, t.ListQueuesRequest, t.ListQueuesResponse),
                Method("UpdateQueue", self.update_queue, t.UpdateQueueRequest, t.Queue),
                Method("DeleteQueue", self.delete_queue, t.DeleteQueueRequest, empty_pb2.Empty),
                Method("PurgeQueue", self.purge_queue, t.PurgeQueueRequest, t.Queue),
                Method("PauseQueue", self.pause_queue, t.PauseQueueRequest, t.Queue),
                Method("ResumeQueue", self.resume_queue, t.ResumeQueueRequest, t.Queue),
                Method("CreateTask", self.create_task, t.CreateTaskRequest, t.Task),
                Method("GetTask", self.get_task, t.GetTaskRequest, t.Task),
                Method("ListTasks", self.list_tasks, t.ListTasksRequest, t.ListTasksResponse),
                Method("DeleteTask", self.delete_task, t.DeleteTaskRequest, empty_pb2.Empty),
                Method("RunTask", self.run_task, t.RunTaskRequest, t.Task),
            ],
            faults,
        )

    # Queues ------------------------------------------------------------------

    def create_queue(self, request: Any) -> Any:
        match_name(request.parent, PARENT, "location")
        queue = clone(request.queue)
        parent, queue_id = match_name(queue.name, QUEUE, "queue").groups()
        check_id(queue_id, "queue")
        if parent != request.parent:
            invalid(f"Queue name {queue.name!r} is not in parent {request.parent!r}.")
        with self.book.cond:
            if queue.name in self.book.queues:
                raise RpcError(grpc.StatusCode.ALREADY_EXISTS, "Queue already exists")
            queue.state = tasks_v2.Queue.State.RUNNING
            fill_queue_defaults(queue)
            self.book.queues[queue.name] = queue
            return clone(queue)

    def get_queue(self, request: Any) -> Any:
        with self.book.cond:
            return clone(self._queue(request.name))

    def list_queues(self, request: Any) -> Any:
        match_name(request.parent, PARENT, "location")
        prefix = request.parent + "/queues/"
        with self.book.cond:
            queues = [clone(q) for n, q in sorted(self.book.queues.items()) if n.startswith(prefix)]
        page, token = paginate(queues, request.page_size, request.page_token)
        return tasks_v2.ListQueuesResponse(queues=page, next_page_token=token)

    def update_queue(self, request: Any) -> Any:
        """Update the masked fields (all settable ones without a mask); create if missing."""
        update = request.queue
        queue_id = match_name(update.name, QUEUE, "queue").group(2)
        check_id(queue_id, "queue")
        paths = list(request.update_mask.paths) or sorted(UPDATABLE_QUEUE_FIELDS)
        mask = type(request.update_mask)(paths=paths)
        if not mask.IsValidForDescriptor(tasks_v2.Queue.pb().DESCRIPTOR):
            invalid(f"Invalid update_mask {paths!r}: a path names no field of a Queue.")
        for path in paths:
            if path.split(".", 1)[0] not in UPDATABLE_QUEUE_FIELDS:
                invalid(f"Field {path!r} of a queue cannot be updated.")
        with self.book.cond:
            current = self.book.queues.get(update.name)
            if current is None:
                current = tasks_v2.Queue(name=update.name)
                self.book.queues[update.name] = current
            mask.MergeMessage(
                tasks_v2.Queue.pb(update),
                tasks_v2.Queue.pb(current),
                replace_message_field=True,
                replace_repeated_field=True,
            )
            fill_queue_defaults(current)
            return clone(current)

    def delete_queue(self, request: Any) -> Any:
        with self.book.cond:
            self._queue(request.name)
            self.book.remove_queue_tasks(request.name)
            del self.book.queues[request.name]
        return empty_pb2.Empty()

    def purge_queue(self, request: Any) -> Any:
        with self.book.cond:
            queue = self._queue(request.name)
            self.book.remove_queue_tasks(request.name)
            queue.purge_time = datetime.now(UTC)
            return clone(queue)

    def pause_queue(self, request: Any) -> Any:
        return self._set_state(request.name, tasks_v2.Queue.State.PAUSED)

    def resume_queue(self, request: Any) -> Any:
        return self._set_state(request.name, tasks_v2.Queue.State.RUNNING)

    def _set_state(self, name: str, state: Any) -> Any:
        with self.book.cond:
            queue = self._queue(name)
            queue.state = state
            self.book.cond.notify_all()
            return clone(queue)

    def _queue(self, name: str) -> Any:
        match_name(name, QUEUE, "queue")
        queue = self.book.queues.get(name)
        if queue is None:
            not_found(f"queue {name}")
        return queue

    # Tasks -------------------------------------------------------------------

    def create_task(self, request: Any) -> Any:
        """Store an HTTP task and schedule its first dispatch.

        Raises NOT_FOUND for an unknown queue, ALREADY_EXISTS for a name in use or used
        within the de-duplication window, INVALID_ARGUMENT for what Cloud Tasks refuses.
        """
        match_name(request.parent, QUEUE, "queue")
        task = clone(request.task)
        _validate_http(task)
        now = datetime.now(UTC)
        if task.name:
            parent, task_id = match_name(task.name, TASK, "task").groups()
            check_id(task_id, "task")
            if parent != request.parent:
                invalid(f"Task name {task.name!r} is not in queue {request.parent!r}.")
        else:
            task.name = f"{request.parent}/tasks/{uuid.uuid4().int % 10**19:019d}"
        if "schedule_time" not in task or task.schedule_time < now:
            task.schedule_time = now
        elif task.schedule_time > now + MAX_SCHEDULE_AHEAD:
            invalid("Task schedule_time is more than 30 days in the future.")
        if "dispatch_deadline" not in task:
            task.dispatch_deadline = DEFAULT_DISPATCH_DEADLINE
        elif not (MIN_DISPATCH_DEADLINE <= task.dispatch_deadline <= MAX_DISPATCH_DEADLINE):
            invalid("Task dispatch_deadline must be between 15 seconds and 30 minutes.")
        task.create_time = now
        task.dispatch_count = 0
        task.response_count = 0
        task.view = tasks_v2.Task.View.FULL
        with self.book.cond:
            self._queue(request.parent)
            if self.book.name_taken(task.name):
                raise RpcError(
                    grpc.StatusCode.ALREADY_EXISTS,
                    "The task cannot be created because a task with this name existed too "
                    "recently.",
                )
            entry = TaskEntry(task=task, queue=request.parent)
            self.book.entries[task.name] = entry
            self.book.schedule(entry)
            return _view(task, request.response_view)

    def get_task(self, request: Any) -> Any:
        with self.book.cond:
            return _view(self._entry(request.name).task, request.response_view)

    def list_tasks(self, request: Any) -> Any:
        with self.book.cond:
            self._queue(request.parent)
            tasks = [
                _view(e.task, request.response_view)
                for _, e in sorted(self.book.entries.items())
                if e.queue == request.parent
            ]
        page, token = paginate(tasks, request.page_size, request.page_token)
        return tasks_v2.ListTasksResponse(tasks=page, next_page_token=token)

    def delete_task(self, request: Any) -> Any:
        with self.book.cond:
            self._entry(request.name)
            self.book.remove_task(request.name)
        return empty_pb2.Empty()

    def run_task(self, request: Any) -> Any:
        """Dispatch a task now (a paused queue still holds it)."""
        with self.book.cond:
            entry = self._entry(request.name)
            if not entry.running:
                entry.task.schedule_time = datetime.now(UTC)
                entry.generation += 1
                self.book.schedule(entry)
            return _view(entry.task, request.response_view)

    def _entry(self, name: str) -> TaskEntry:
        match_name(name, TASK, "task")
        entry = self.book.entries.get(name)
        if entry is None:
            not_found(f"task {name}")
        return entry


def _validate_http(task: Any) -> None:
    if "app_engine_http_request" in task:
        invalid("App Engine tasks are not supported by the emulator; use http_request.")
    if "http_request" not in task or not task.http_request.url:
        invalid("Task http_request.url is required.")
    request = task.http_request
    if not request.url.startswith(("http://", "https://")) or len(request.url) > 2083:
        invalid(f"Invalid task URL {request.url!r}.")
    if not request.http_method:
        request.http_method = tasks_v2.HttpMethod.POST
    if request.body and request.http_method not in BODY_METHODS:
        invalid("A request body is allowed only for POST, PUT and PATCH tasks.")
    if "oidc_token" in request and not request.oidc_token.service_account_email:
        invalid("oidc_token.service_account_email is required.")
    if tasks_v2.Task.pb(task).ByteSize() > MAX_TASK_BYTES:
        invalid("Task size exceeds the 1 MB limit.")


def _view(task: Any, view: Any) -> Any:
    """A copy of ``task`` in the requested view (BASIC, the default, omits the body)."""
    copy = clone(task)
    if view != tasks_v2.Task.View.FULL:
        copy.view = tasks_v2.Task.View.BASIC
        copy.http_request.body = b""
    return copy
