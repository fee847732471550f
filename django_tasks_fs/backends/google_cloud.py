"""What the Cloud Tasks and Cloud Run Jobs backends share: configuration, dispatch
bookkeeping, cached retry limits, and Cloud Scheduler for cron."""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

from django.core.cache import caches
from django.core.cache.backends.base import InvalidCacheBackendError

from ..gcp import scheduler as cloud_scheduler
from ..gcp.clients import emulator_host
from ..gcp.declared import Declarations
from ..gcp.drift import Settings
from ..gcp.errors import GoogleCloudError, MissingCloudResource
from ..gcp.resources import CloudResource
from ..options import CloudOptions, Kind, Problem
from ..policy import Defaults, Source
from ..store import DispatchState, ErrorEntry, ScheduledTask, TaskExecution
from ..store.transitions import class_path
from .base import FirestoreBackend
from .declarations import parse_declarations

logger = logging.getLogger(__name__)

_UNSET = object()
#: Concurrent sends of one enqueue_many(): enough to hide Cloud Tasks' round trip,
#: few enough not to burst the queue's or the project's API quota.
DISPATCH_CONCURRENCY = 16


class GoogleCloudBackend(FirestoreBackend):
    """Base of the backends that hand executions to Google Cloud."""

    option_kind: ClassVar[Kind] = Kind.CLOUD
    #: Sends at once in ``enqueue_many()`` (threads of this process).
    dispatch_concurrency: int = DISPATCH_CONCURRENCY
    #: What OPTIONS declares settings of: Cloud Run jobs (``job_settings``), or Cloud
    #: Tasks queues (``queue_settings``).
    declares_jobs: ClassVar[bool] = False
    #: Can ``reschedule()`` send a retry due later (a task policy's backoff)?
    supports_reschedule: ClassVar[bool] = False

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        self._cloud: CloudOptions | None = None
        self.declarations = Declarations(by_name={})
        super().__init__(alias, params)

    def _extra_problems(self) -> list[Problem]:
        self._cloud, problems = CloudOptions.require(
            self.alias, self.config, backend=type(self).__name__
        )
        self.declarations, declared = parse_declarations(
            self.alias,
            self.config,
            self.queues,
            jobs=self.declares_jobs,
            backend=type(self).__name__,
        )
        return problems + declared

    @property
    def cloud(self) -> CloudOptions:
        """The required Google Cloud options; ImproperlyConfigured if one is missing."""
        if self._cloud is None:
            self.ensure_configured()
            raise AssertionError("a backend without CloudOptions has problems")
        return self._cloud

    # -- derived configuration ---------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self.cloud.base_url.rstrip("/") + "/"

    @property
    def execute_url(self) -> str:
        return self.config.execute_url or f"{self.base_url}execute/"

    @property
    def schedule_url(self) -> str:
        return self.config.schedule_url or f"{self.base_url}schedule/"

    @property
    def audience(self) -> str:
        """The expected ``aud`` of tokens: ``oidc_audience``, or the origin of ``base_url``."""
        if self.config.oidc_audience:
            return self.config.oidc_audience
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def emulator(self) -> str | None:
        return emulator_host(self.config.emulator_host)

    def resolve_queue(self, queue_name: str) -> str:
        """The Cloud Tasks queue / Cloud Run job for a logical queue name."""
        return self.config.queue_aliases.get(queue_name, queue_name)

    def resource(self, name: str) -> CloudResource:
        """The Cloud Tasks queue / Cloud Run job called ``name`` (already resolved)."""
        raise NotImplementedError

    def required_resources(self) -> list[CloudResource]:
        """The queues / jobs that must exist: one per name in QUEUES and queue_aliases."""
        names = {self.resolve_queue(q) for q in self.queues} | set(
            self.config.queue_aliases.values()
        )
        return [self.resource(name) for name in sorted(names)]

    def declared_resources(self) -> list[tuple[CloudResource, Settings]]:
        """Each required queue / job and its declared settings (fields of the resource
        only; empty when nothing is declared): what ``tasks_resources`` reconciles."""
        return [(r, self.declarations.remote(r.name)) for r in self.required_resources()]

    # -- attempts ----------------------------------------------------------------------

    def retry_delay(self, attempt: int) -> timedelta:
        return timedelta(0)  # the platform's retry configuration does the backoff

    def policy_defaults(self, queue_name: str) -> Defaults:
        """OPTIONS when given, else the platform's limit and its own retry backoff."""
        platform = self.max_attempts_for(queue_name)  # read even when unused: see new_execution
        backoff_given = self._backoff_source() == Source.OPTIONS
        return Defaults(
            max_attempts=(self.config.max_attempts, Source.OPTIONS)
            if self.given("max_attempts")
            else (platform, Source.PLATFORM),
            run_once=self.run_once_default(),
            backoff=(self.options_backoff(), Source.OPTIONS)
            if backoff_given
            else (None, Source.PLATFORM),
            schedules_retries=self.supports_reschedule,
        )

    def reschedule(self, execution: TaskExecution) -> bool:
        """Send the next attempt of a READY execution, due at its ``run_after`` (a policy's
        backoff); False when the platform cannot defer it (its own retries, or the sweeper,
        start it then)."""
        return False

    def platform_max_attempts(self, queue: str) -> int | None:
        """Read the platform's limit for ``queue`` (not cached)."""
        raise NotImplementedError

    def max_attempts_for(self, queue_name: str) -> int | None:
        """The platform's limit, cached per backend **and** queue in the Django cache."""
        queue = self.resolve_queue(queue_name)
        ttl = self.config.cache_ttl_max_attempts
        cache = None
        if ttl > 0:
            try:
                cache = caches[self.config.cache_alias]
            except InvalidCacheBackendError:
                cache = None
        key = self._max_attempts_key(queue)
        if cache is not None:
            cached = cache.get(key, _UNSET)
            if cached is not _UNSET:
                return None if cached is None else int(cached)
        try:
            value = self.platform_max_attempts(queue)
        except MissingCloudResource:
            raise  # enqueue() refuses before writing anything
        except GoogleCloudError:
            logger.warning(
                "could not read the retry limit of %s; assuming unlimited", queue, exc_info=True
            )
            return None
        if cache is not None:
            cache.set(key, value, ttl)  # None (unlimited) is cached too
        return value

    def _max_attempts_key(self, queue: str) -> str:
        return f"{self.config.cache_prefix}:{self.alias}:max_attempts:{queue}"

    def forget_max_attempts(self, queue: str) -> None:
        """Drop the cached limit of ``queue`` (a resolved name): its retry settings changed."""
        with contextlib.suppress(InvalidCacheBackendError):
            caches[self.config.cache_alias].delete(self._max_attempts_key(queue))

    # -- dispatch ----------------------------------------------------------------------

    def initial_dispatch_state(self) -> DispatchState:
        return DispatchState.PENDING

    def send(self, execution: TaskExecution, *, resend: bool = False) -> dict[str, str]:
        """Hand the execution to the platform; return resource names to record.

        ``resend``: an earlier send of this dispatch may have succeeded unbeknown to us
        (an answer lost, a crash before the record): it must not start a second run.
        """
        raise NotImplementedError

    def dispatch(
        self, execution: TaskExecution, *, resend: bool = False, confirm: bool = False
    ) -> TaskExecution:
        """Send a PENDING execution; record the error if that fails (the sweeper retries).

        A successful send writes nothing: the delivery's claim, a write it makes anyway,
        marks the execution DISPATCHED and records the platform's names. Until then it
        stays PENDING (a task whose ``run_after`` is hours ahead too); one still PENDING
        after the sweeper's grace is sent again, which the platform recognises (the
        dispatch's name is deterministic), and ``confirm`` (the sweeper's sends) then
        records DISPATCHED at once, so each is sent again at most once.

        Raises MissingCloudResource (its queue or job does not exist) after closing the
        execution FAILED with that error: retrying cannot help until someone creates it.
        """
        try:
            names = self.send(execution, resend=resend)
        except MissingCloudResource as exc:
            raise exc.recorded(execution.id, closed=self._refuse(execution, exc)) from None
        except Exception as exc:  # any failure, even building a client: never an orphan
            logger.warning(
                "dispatch failed, the sweeper will retry execution_id=%s",
                execution.id,
                exc_info=True,
            )
            error = f"{type(exc).__name__}: {exc}"[:2000]
            return self._record_dispatch(execution, DispatchState.PENDING, error=error)
        if not confirm:
            return execution
        return self._record_dispatch(execution, DispatchState.DISPATCHED, **names)

    def dispatch_many(self, executions: Sequence[TaskExecution]) -> list[TaskExecution]:
        """``dispatch()`` each execution, up to ``dispatch_concurrency`` at once (Cloud
        Tasks has no batch create; the client is thread-safe); return them in order.

        A failed send leaves its execution PENDING with the error, as ``dispatch()``
        does. MissingCloudResource is raised once every send has ended (each execution
        whose queue or job was missing is closed FAILED).
        """
        if len(executions) <= 1:
            return [self.dispatch(execution) for execution in executions]
        workers = min(self.dispatch_concurrency, len(executions))
        with ThreadPoolExecutor(workers, thread_name_prefix="dispatch") as pool:
            futures = [
                pool.submit(contextvars.copy_context().run, self.dispatch, execution)
                for execution in executions
            ]
        for future in futures:
            error = future.exception()
            if error is not None:
                raise error  # MissingCloudResource: dispatch() raises nothing else
        return [future.result() for future in futures]

    def _refuse(self, execution: TaskExecution, exc: MissingCloudResource) -> bool:
        """Close the execution FAILED with ``exc``; False if that could not be written."""
        entry = ErrorEntry(
            exception_class_path=class_path(type(exc)), traceback=f"{type(exc).__name__}: {exc}\n"
        )
        try:
            self.executions.refuse_dispatch(execution.id, entry)
        except Exception as failure:  # left PENDING: the sweeper meets the same error later
            logger.warning(
                "could not record the refused dispatch execution_id=%s: %s", execution.id, failure
            )
            return False
        return True

    def _record_dispatch(
        self, execution: TaskExecution, state: DispatchState, **fields: str
    ) -> TaskExecution:
        """Record the outcome; if Firestore fails now, leave it PENDING (the delivery or
        the sweeper settles it) rather than fail an enqueue or a sweep."""
        try:
            return self.executions.set_dispatch(execution.id, state, known=execution, **fields)
        except Exception:
            logger.warning(
                "could not record the dispatch (%s) execution_id=%s",
                state,
                execution.id,
                exc_info=True,
            )
            return execution

    # -- Cloud Scheduler -----------------------------------------------------------------

    def _scheduler(self) -> cloud_scheduler.SchedulerTarget:
        return cloud_scheduler.SchedulerTarget(
            project=self.cloud.project_id,
            location=self.cloud.location,
            url=self.schedule_url,
            service_account=self.cloud.oidc_service_account,
            audience=self.audience,
            emulator_host=self.emulator,
        )

    def sync_schedule(self, schedule: ScheduledTask) -> ScheduledTask:
        """Create/update/pause/resume the Cloud Scheduler job; record it (or the error)."""
        target = self._scheduler()
        try:
            job = cloud_scheduler.sync_job(
                target,
                name=schedule.name,
                schedule=schedule.schedule,
                time_zone=schedule.time_zone,
                description=schedule.description,
                body={"task_id": schedule.name, "backend": self.alias},
                enabled=schedule.enabled,
            )
        except GoogleCloudError as exc:
            error = str(exc)[:2000]
            logger.warning("Cloud Scheduler sync failed schedule=%s", schedule.name, exc_info=True)
            return self.schedules.update(schedule.name, lambda s: s.evolve(sync_error=error))
        old = schedule.cloud_scheduler_job
        if old and old != job:
            # The schedule was renamed: the old job must stop firing.
            cloud_scheduler.delete_job(target, old)
        return self.schedules.update(
            schedule.name, lambda s: s.evolve(cloud_scheduler_job=job, sync_error=None)
        )

    def delete_schedule(self, schedule: ScheduledTask) -> None:
        job = schedule.cloud_scheduler_job or self._scheduler().job_path(schedule.name)
        cloud_scheduler.delete_job(self._scheduler(), job)


def dispatch_id(execution: TaskExecution) -> str:
    """The platform-side identity of an execution's current dispatch.

    The Cloud Task ID (or the marker on a Cloud Run job execution): the same for every
    send of one dispatch, so repeats are recognised; new for each re-dispatch of an
    abandoned execution by the sweeper.
    """
    if execution.redispatches:
        return f"{execution.id}-r{execution.redispatches}"
    return execution.id
