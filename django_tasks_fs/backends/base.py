"""What every django_tasks_fs backend shares: options, the Firestore stores, enqueue, results."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import Any, ClassVar

from asgiref.sync import sync_to_async
from django.apps import apps
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.tasks import TaskResultStatus
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.exceptions import InvalidTask
from django.tasks.signals import task_enqueued

from ..exceptions import ExecutionNotFound, NotJSONSerializable, StoreUnavailable
from ..options import Kind, Problem, parse_options
from ..results import FirestoreTaskResult, to_task_result
from ..store import (
    DispatchState,
    ExecutionStore,
    ScheduledTask,
    ScheduleStore,
    TaskExecution,
    new_execution_id,
)
from ..store.codec import encode_json
from ..store.groups import GroupStore
from ..tasks import Task
from ..tracing import producer_batch_span, producer_span

#: Firestore's limit on values in one ``in`` filter: the worker polls all queues at once.
MAX_QUEUES = 30
#: How long ``enqueue()`` keeps trying to write a new execution while Firestore is
#: unreachable or slow, in seconds, before it raises StoreUnavailable.
ENQUEUE_TIMEOUT = 10.0

#: One call of enqueue_many(): the positional and keyword arguments of ``task.enqueue()``.
Call = tuple[Sequence[Any], Mapping[str, Any]]
#: Arguments as stored: a list and a dict of plain JSON.
Arguments = tuple[list[Any], dict[str, Any]]

#: Writes a new execution instead of a plain create (a cron slot's reservation); False
#: when it wrote nothing because the execution is not wanted (the slot was fired already).
Reserve = Callable[[TaskExecution], bool]


def checked_arguments(args: Iterable[Any], kwargs: Mapping[str, Any]) -> Arguments:
    """``(args, kwargs)`` as stored; NotJSONSerializable if they are not plain JSON."""
    checked = list(args), dict(kwargs)
    # Refuse non-JSON values before anything is written (also done by the store).
    encode_json(checked[0], where="args")
    encode_json(checked[1], where="kwargs")
    return checked


def checked_call(index: int, call: Any) -> Arguments:
    """``checked_arguments`` for the call at ``index`` of enqueue_many(): errors name it."""
    if not (isinstance(call, (tuple, list)) and len(call) == 2):
        raise TypeError(f"Call {index} must be an (args, kwargs) pair, not {call!r}.")
    args, kwargs = call
    if not isinstance(args, (tuple, list)) or not isinstance(kwargs, Mapping):
        raise TypeError(
            f"Call {index} must be an (args, kwargs) pair of a list or tuple and a dict, "
            f"not ({type(args).__name__}, {type(kwargs).__name__})."
        )
    try:
        return checked_arguments(args, kwargs)
    except NotJSONSerializable as exc:
        raise NotJSONSerializable(f"Call {index}: {exc}") from None


def with_arguments(template: TaskExecution, arguments: Arguments, **fields: Any) -> TaskExecution:
    """``template`` (see new_execution) called with checked ``arguments``, under a new id."""
    args, kwargs = arguments
    return template.evolve(id=new_execution_id(), args=args, kwargs=kwargs, **fields)


def default_retry_delay(attempt: int, *, base: float, maximum: float) -> timedelta:
    """Exponential backoff: base, 2*base, 4*base, ... capped at ``maximum`` seconds."""
    return timedelta(seconds=min(base * (2 ** max(attempt - 1, 0)), maximum))


class FirestoreBackend(BaseTaskBackend):
    """Base class: state in Firestore; subclasses decide how an execution gets run."""

    task_class = Task
    supports_get_result = True
    supports_async_task = True
    supports_defer = True
    supports_priority = False
    #: Can a running attempt be stopped at once (SIGTERM), not only asked to stop?
    supports_force_cancel: ClassVar[bool] = False
    #: (shortest, longest) per-attempt timeout the platform allows.
    timeout_range: ClassVar[tuple[timedelta, timedelta]] = (
        timedelta(seconds=1),
        timedelta(hours=168),
    )
    #: ``messaging.system`` of its OpenTelemetry spans.
    messaging_system: str = "django_tasks_fs"
    #: Which options this backend accepts (see ``option()`` in options.py).
    option_kind: ClassVar[Kind] = Kind.ALL
    #: Seconds ``enqueue()`` may spend writing the execution (see ENQUEUE_TIMEOUT).
    enqueue_timeout: float = ENQUEUE_TIMEOUT

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.config, self.problems = parse_options(
            alias, params.get("OPTIONS", {}), kind=self.option_kind
        )
        self.problems.extend(self._extra_problems())

    def _extra_problems(self) -> list[Problem]:
        """Backend-specific option problems (override to add)."""
        return []

    # -- stores --------------------------------------------------------------------------

    @cached_property
    def executions(self) -> ExecutionStore:
        self.ensure_configured()
        return ExecutionStore(self.config.store_settings())

    @cached_property
    def groups(self) -> GroupStore:
        self.ensure_configured()
        return GroupStore(self.config.store_settings())

    @cached_property
    def schedules(self) -> ScheduleStore:
        self.ensure_configured()
        return ScheduleStore(self.config.store_settings())

    def ensure_configured(self) -> None:
        """Raise ImproperlyConfigured listing every option problem, if any."""
        if self.problems:
            details = "\n".join(f"- {p.message} {p.hint}" for p in self.problems)
            raise ImproperlyConfigured(
                f"Task backend {self.alias!r} is misconfigured "
                f"(run 'manage.py check' for details):\n{details}"
            )

    # -- Django's contract ---------------------------------------------------------------

    def validate_task(self, task: Any) -> None:
        """Django's checks, plus the per-attempt timeout range of the platform."""
        super().validate_task(task)
        timeout = getattr(task, "timeout", None)
        if timeout is not None:
            shortest, longest = self.timeout_range
            if not isinstance(timeout, timedelta) or not shortest <= timeout <= longest:
                raise InvalidTask(
                    f"Task timeout must be a timedelta between {shortest} and {longest} "
                    f"for backend {self.alias!r}, not {timeout!r}."
                )

    def max_attempts_for(self, queue_name: str) -> int | None:
        """Total attempts allowed for a new execution on ``queue_name`` (None: unlimited)."""
        return self.config.max_attempts

    def retry_delay(self, attempt: int) -> timedelta:
        """How long a failed attempt waits before the next one (local exponential backoff).

        Whether there is a next attempt is the store's decision (attempts left, run_once);
        how long it waits is the backend's: Google Cloud backends leave it to the
        platform's retry configuration.
        """
        return default_retry_delay(
            attempt,
            base=self.config.retry_backoff_seconds,
            maximum=self.config.retry_backoff_max_seconds,
        )

    def initial_dispatch_state(self) -> DispatchState:
        return DispatchState.LOCAL

    def dispatch(self, execution: TaskExecution) -> TaskExecution:
        """Hand a freshly written execution to the platform (nothing to do locally)."""
        return execution

    def delivery_names(self, carrier: Mapping[str, str]) -> dict[str, str]:
        """The platform's names for the delivery running an attempt, read from what the
        platform hands it (request headers, environment), for the claim to record
        (``cloud_task_name`` / ``cloud_run_execution``); none locally."""
        return {}

    def new_execution(self, task: Any) -> TaskExecution:
        """A new execution of ``task`` with no arguments yet (not written): what every
        call of the task shares. Google Cloud backends look up the queue's retry limit
        here, so a missing queue raises MissingCloudResource before anything is written."""
        timeout = getattr(task, "timeout", None)
        now = self.executions.clock.now()  # Firestore's time: leases and polls use it too
        return TaskExecution(
            id=new_execution_id(),
            task_path=task.module_path,
            backend=self.alias,
            queue_name=task.queue_name,
            priority=task.priority,
            takes_context=task.takes_context,
            args=[],
            kwargs={},
            status=TaskResultStatus.READY,
            enqueued_at=now,
            run_after=task.run_after or now,
            max_attempts=self.max_attempts_for(task.queue_name),
            run_once=self.config.run_once,
            timeout_seconds=timeout.total_seconds() if timeout else None,
            dispatch_state=self.initial_dispatch_state(),
        )

    def build_execution(
        self, task: Any, args: Iterable[Any], kwargs: dict[str, Any], **fields: Any
    ) -> TaskExecution:
        """The document for a new execution of ``task`` (not yet written); ``fields``
        set or override its fields (e.g. ``scheduled_task``)."""
        arguments = checked_arguments(args, kwargs)
        return with_arguments(self.new_execution(task), arguments, **fields)

    def dispatch_many(self, executions: Sequence[TaskExecution]) -> list[TaskExecution]:
        """``dispatch()`` each execution, in order (Google Cloud backends send concurrently)."""
        return [self.dispatch(execution) for execution in executions]

    def enqueue(self, task: Any, args: Any, kwargs: Any) -> FirestoreTaskResult:
        """Write the execution to Firestore, then dispatch it; return a READY result.

        Raises InvalidTask for an invalid task or arguments that are not JSON or too
        large (NotJSONSerializable, PayloadTooLarge): nothing is written then.
        Raises StoreUnavailable when Firestore does not take the write within
        ``enqueue_timeout`` seconds (unreachable, frozen, too slow); its message says
        whether the write may still be applied late. Google Cloud backends raise
        MissingCloudResource when the queue or job does not exist (see dispatch()).
        """
        result = self.submit(task, args, kwargs)
        assert result is not None  # only a reservation can decline the write
        return result

    def submit(
        self,
        task: Any,
        args: Iterable[Any],
        kwargs: dict[str, Any],
        *,
        reserve: Reserve | None = None,
        **fields: Any,
    ) -> FirestoreTaskResult | None:
        """Validate, write, dispatch, signal: the one enqueue path.

        ``enqueue()``, cron slots and the admin's "Run now" all come here, so each gets
        the same validation, producer span, ``enqueue_timeout`` and dispatch. ``fields``
        go into the new document (see build_execution). ``reserve`` writes it instead
        of a plain create; when it declines (a cron slot fired already) nothing is
        dispatched and None is returned.
        """
        self.validate_task(task)
        execution = self.build_execution(task, args, kwargs, **fields)
        with producer_span(self, execution) as carrier:
            execution = execution.evolve(trace_context=carrier)
            if reserve is None:
                execution = self.executions.create(execution, timeout=self.enqueue_timeout)
            elif not reserve(execution):
                return None
            execution = self.dispatch(execution)
        result = to_task_result(execution, task)
        task_enqueued.send(type(self), task_result=result)
        return result

    def enqueue_many(
        self, task: Any, calls: Iterable[Call], **fields: Any
    ) -> list[FirestoreTaskResult]:
        """Enqueue ``task`` once per ``(args, kwargs)`` in ``calls``; return READY results
        in the order of ``calls``. ``fields`` go into every new document (e.g. a group's).

        What ``enqueue()`` checks is checked for every call before anything is written
        (InvalidTask, NotJSONSerializable, PayloadTooLarge naming the call by position,
        MissingCloudResource): then nothing is written. The documents go in commits of
        up to 500, then each execution is dispatched as ``enqueue()`` does (Google Cloud
        backends send concurrently). Raises StoreUnavailable when a commit is not taken
        within ``enqueue_timeout``: its ``enqueued`` holds the results of the calls
        before it, which were enqueued.
        """
        self.validate_task(task)
        arguments = [checked_call(i, call) for i, call in enumerate(calls)]
        if not arguments:
            return []
        template = self.new_execution(task)
        with producer_batch_span(self, template, len(arguments)) as carrier:
            executions = [
                with_arguments(template, a, trace_context=carrier, **fields) for a in arguments
            ]
            batches = self.executions.plan_creates(executions)
            written: list[TaskExecution] = []
            try:
                for batch in batches:
                    written += self.executions.create_batch(batch, timeout=self.enqueue_timeout)
            except StoreUnavailable as exc:
                enqueued = self._enqueued(task, written)
                raise StoreUnavailable(
                    f"{exc} The first {len(enqueued)} of {len(executions)} calls were "
                    f"enqueued (their results are in .enqueued); the others were not, "
                    f"unless maybe_written (then the failed commit's may be).",
                    execution_id=exc.execution_id,
                    maybe_written=exc.maybe_written,
                    enqueued=enqueued,
                ) from exc
            return self._enqueued(task, written)

    async def aenqueue_many(self, task: Any, calls: Iterable[Call]) -> list[FirestoreTaskResult]:
        """See enqueue_many()."""
        return await sync_to_async(self.enqueue_many, thread_sensitive=True)(task, calls)

    def _enqueued(
        self, task: Any, executions: Sequence[TaskExecution]
    ) -> list[FirestoreTaskResult]:
        """Dispatch written executions, then signal each result (as submit() does)."""
        results = [to_task_result(e, task) for e in self.dispatch_many(executions)]
        for result in results:
            task_enqueued.send(type(self), task_result=result)
        return results

    def get_result(self, result_id: str) -> FirestoreTaskResult:
        """Read a result; raise TaskResultDoesNotExist for an unknown id or another backend's."""
        execution = self.executions.get(result_id)
        if execution.backend != self.alias:
            raise ExecutionNotFound(
                f"Task result {result_id!r} belongs to backend {execution.backend!r}, "
                f"not {self.alias!r}."
            )
        return to_task_result(execution)

    # -- hooks for cancellation and schedules ----------------------------------------------

    def force_stop(self, execution: TaskExecution) -> None:
        """Stop a running attempt at once (platform call); the default does nothing."""

    def sync_schedule(self, schedule: ScheduledTask) -> ScheduledTask:
        """Push a schedule to the platform (Cloud Scheduler); locally there is nothing to do."""
        return schedule

    def delete_schedule(self, schedule: ScheduledTask) -> None:
        """Remove a schedule's platform job; locally there is nothing to do."""

    @property
    def uses_local_cron(self) -> bool:
        """Whether ``run_tasks`` fires this backend's schedules itself."""
        return False

    # -- system checks ---------------------------------------------------------------------

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        messages: list[checks.CheckMessage] = [
            checks.Error(p.message, hint=p.hint, id=p.id, obj=f"TASKS[{self.alias!r}]")
            for p in self.problems
        ]
        if not apps.is_installed("django_tasks_fs"):
            messages.append(
                checks.Error(
                    f"Task backend {self.alias!r} needs 'django_tasks_fs' in INSTALLED_APPS.",
                    hint="Add 'django_tasks_fs' to INSTALLED_APPS for its commands, admin and checks.",
                    id="django_tasks_fs.E004",
                    obj=f"TASKS[{self.alias!r}]",
                )
            )
        if len(self.queues) > MAX_QUEUES:
            messages.append(
                checks.Error(
                    f"Task backend {self.alias!r} has {len(self.queues)} QUEUES; at most {MAX_QUEUES} are supported.",
                    hint="Split the queues over several backends (one alias each).",
                    id="django_tasks_fs.E005",
                    obj=f"TASKS[{self.alias!r}]",
                )
            )
        return messages
