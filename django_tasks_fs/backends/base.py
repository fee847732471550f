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
from ..policy import Backoff, Defaults, Source, resolve, validate_policy
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
from ..store.executions.batches import COMMIT_CONCURRENCY, write_batches
from ..store.groups import GroupStore
from ..store.unique_keys import UniqueKeys
from ..tasks import Task
from ..tracing import producer_batch_span, producer_span
from .unique import check_unique, create_unique, enqueue_unique_many, is_unique

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
    #: Commits of one ``enqueue_many()`` in flight at once.
    commit_concurrency: int = COMMIT_CONCURRENCY

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.config, self.problems = parse_options(
            alias, params.get("OPTIONS", {}), kind=self.option_kind
        )
        self.problems.extend(self._extra_problems())
        #: The OPTIONS keys given (a policy value not given yields to the platform's).
        self.options_given = frozenset(params.get("OPTIONS", {}))

    def _extra_problems(self) -> list[Problem]:
        """Backend-specific option problems (override to add)."""
        return []

    # -- stores --------------------------------------------------------------------------

    @cached_property
    def executions(self) -> ExecutionStore:
        self.ensure_configured()
        return ExecutionStore(self.config.store_settings())

    @cached_property
    def unique_keys(self) -> UniqueKeys:
        return UniqueKeys(self.executions)

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
        """Django's checks, the task's policy values, and the per-attempt timeout range
        of the platform."""
        super().validate_task(task)
        validate_policy(task)
        check_unique(task, self.alias)
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

    def given(self, option: str) -> bool:
        """Did OPTIONS set ``option`` (rather than leave it at its default)?"""
        return option in self.options_given

    def policy_defaults(self, queue_name: str) -> Defaults:
        """What this backend offers a task that does not set its own policy (see
        policy.resolve): its OPTIONS, or their defaults."""
        source = Source.OPTIONS if self.given("max_attempts") else Source.DEFAULT
        return Defaults(
            max_attempts=(self.max_attempts_for(queue_name), source),
            run_once=self.run_once_default(),
            backoff=(self.options_backoff(), self._backoff_source()),
        )

    def run_once_default(self) -> tuple[bool, Source]:
        return self.config.run_once, Source.OPTIONS if self.given("run_once") else Source.DEFAULT

    def options_backoff(self) -> Backoff:
        """``retry_backoff_seconds`` doubled per attempt, capped at ``retry_backoff_max_seconds``."""
        return Backoff(
            base=timedelta(seconds=self.config.retry_backoff_seconds),
            factor=2,
            maximum=timedelta(seconds=self.config.retry_backoff_max_seconds),
        )

    def _backoff_source(self) -> Source:
        given = self.given("retry_backoff_seconds") or self.given("retry_backoff_max_seconds")
        return Source.OPTIONS if given else Source.DEFAULT

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
        policy = resolve(task, self.policy_defaults(task.queue_name))
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
            max_attempts=policy.max_attempts,
            run_once=policy.run_once,
            timeout_seconds=policy.timeout_seconds,
            retry_policy=policy.retry_policy,
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
        For a task with a ``unique_key`` whose key an unfinished execution holds, returns
        that execution's result and writes nothing (see store.unique_keys).
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
            if reserve is None and is_unique(task):
                outcome = create_unique(self, task, execution)
                if not outcome.created:  # its key is held: that execution is the result
                    return to_task_result(outcome.execution, task)
                execution = outcome.execution
            elif reserve is None:
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
        up to 500, ``commit_concurrency`` of them in flight at once, then each execution
        written is dispatched as ``enqueue()`` does (Google Cloud backends send
        concurrently). Raises StoreUnavailable when a commit is not taken within
        ``enqueue_timeout`` (commits not started by then are not sent): its ``enqueued``
        holds the results of the calls that were enqueued (in call order) and
        ``not_enqueued`` the positions of the calls that were not.
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
            if is_unique(task):
                return enqueue_unique_many(self, task, executions)
            store = self.executions
            outcome = write_batches(
                lambda batch: store.create_batch(batch, timeout=self.enqueue_timeout),
                store.plan_creates(executions),
                concurrency=self.commit_concurrency,
            )
            enqueued = self._enqueued(task, outcome.written)
            if not outcome.errors:
                return enqueued
            outage = outcome.outage
            if outage is None:
                raise outcome.errors[0]  # not an outage (a bug): as it was raised
            raise StoreUnavailable(
                f"{outage} {len(enqueued)} of {len(executions)} calls were enqueued (their "
                f"results are in .enqueued); calls {outcome.not_written_spans} were not "
                f"(their positions are in .not_enqueued: retry those), unless maybe_written "
                f"(then a failed commit's may be).",
                execution_id=outage.execution_id,
                maybe_written=outcome.maybe_written,
                enqueued=enqueued,
                not_enqueued=outcome.not_written,
            ) from outage

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
