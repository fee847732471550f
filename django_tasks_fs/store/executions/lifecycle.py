"""The attempt lifecycle as store verbs: claim, renew, succeed, fail, release, cancel,
and the dispatch bookkeeping. Each is a rule from store.transitions applied by one
compare-and-set (or one batch for several executions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from ...exceptions import ExecutionNotFound
from .. import transitions
from ..documents import DispatchState, ErrorEntry, Lease, TaskExecution
from ..errors import ClaimRefused, LeaseLost
from ..transitions import CancelOutcome
from .base import ExecutionDocuments, Step, new_lease_owner

#: Fields ``set_dispatch`` and ``claim`` may set besides the dispatch state.
RESOURCE_NAME_FIELDS = frozenset({"cloud_task_name", "cloud_run_execution"})


def _check_names(names: Mapping[str, str]) -> None:
    if not set(names) <= RESOURCE_NAME_FIELDS:
        raise TypeError(
            f"Unknown resource name fields: {sorted(set(names) - RESOURCE_NAME_FIELDS)}"
        )


class ExecutionLifecycle(ExecutionDocuments):
    """The verbs that move an execution through its states."""

    def _decide_claim(
        self,
        current: TaskExecution,
        now: datetime,
        *,
        owner: str,
        worker_id: str,
        lease_duration: timedelta,
        backend: str | None,
        platform_names: Mapping[str, str] | None = None,
    ) -> tuple[TaskExecution, ClaimRefused | None]:
        """The state a claim writes: the new attempt, or the FAILED state of a refusal
        that ends the execution (with that refusal). Raises ClaimRefused otherwise."""
        try:
            after = transitions.claim(
                current,
                self.settings,
                owner=owner,
                worker_id=worker_id,
                now=now,
                lease_duration=lease_duration,
                backend=backend,
                platform_names=platform_names,
            )
        except ClaimRefused as exc:
            if exc.execution is None or not exc.execution.is_finished or current.is_finished:
                raise
            return exc.execution, exc  # run_once / exhausted / cancelled: close it
        return after, None

    def claim(
        self,
        execution_id: str,
        *,
        worker_id: str,
        lease_duration: timedelta,
        known: TaskExecution | None = None,
        max_attempts: int | None = None,
        backend: str | None = None,
        platform_names: Mapping[str, str] | None = None,
    ) -> Lease:
        """Win the lease for a new attempt; raise ClaimRefused with the reason otherwise.

        One read (none with ``known``) and one conditional write when nobody races it;
        without ``known`` the decision uses the read's own server time. ``backend``
        refuses (NOT_FOUND, nothing written) another backend's execution.
        ``max_attempts`` overrides the stored limit (e.g. from a Cloud Tasks queue's
        retry config); 0 means unlimited, None keeps the stored limit. A refusal that
        ends the execution (run_once, exhausted, cancelled) writes it as FAILED first,
        so nothing stays RUNNING. ``platform_names`` name the delivery (see
        transitions.claim): written with the attempt, and the claim of a PENDING
        execution marks it DISPATCHED.
        """
        if platform_names:
            _check_names(platform_names)
        owner = new_lease_owner(worker_id)

        def decide(
            current: TaskExecution, now: datetime
        ) -> tuple[TaskExecution, ClaimRefused | None]:
            if max_attempts is not None:
                current = current.evolve(max_attempts=max_attempts or None)
            return self._decide_claim(
                current,
                now,
                owner=owner,
                worker_id=worker_id,
                lease_duration=lease_duration,
                backend=backend,
                platform_names=platform_names,
            )

        written, refused = self._decide_and_set(execution_id, decide, known=known)
        if refused is not None:
            raise ClaimRefused(refused.reason, written)
        return Lease(owner=owner, execution=written)

    def claim_many(
        self,
        known: Sequence[TaskExecution],
        *,
        worker_id: str,
        lease_duration: timedelta,
        backend: str | None = None,
    ) -> list[Lease]:
        """Claim several executions just read by a query, in one commit when nobody raced us.

        Executions that cannot be claimed are skipped; if the batch conflicts, each one
        is claimed on its own (so a race costs speed, never correctness).
        """
        now = self.clock.now()
        owners: dict[str, str] = {}
        pairs: list[tuple[TaskExecution, TaskExecution]] = []
        for execution in known:
            owner = new_lease_owner(worker_id)
            try:
                after, refused = self._decide_claim(
                    execution,
                    now,
                    owner=owner,
                    worker_id=worker_id,
                    lease_duration=lease_duration,
                    backend=backend,
                )
            except ClaimRefused:
                continue  # claim() would tell why; the batch just skips it
            if refused is None:
                owners[execution.id] = owner
            pairs.append((execution, after))
        written = self._write_batch(pairs) if pairs else []
        if written is not None:
            return [Lease(owner=owners[e.id], execution=e) for e in written if e.id in owners]
        leases = []
        for execution in known:
            try:
                leases.append(
                    self.claim(
                        execution.id,
                        worker_id=worker_id,
                        lease_duration=lease_duration,
                        backend=backend,
                    )
                )
            except (ClaimRefused, ExecutionNotFound):
                continue
        return leases

    def write_many(self, items: Sequence[tuple[Lease, Step]]) -> list[TaskExecution | LeaseLost]:
        """Apply each lease holder's ``step`` (finish, fail, ...) in one commit if possible.

        Falls back to one compare-and-set per item when any of them conflicts; an item
        whose lease is gone comes back as a LeaseLost instance instead of an execution.
        """
        now = self.clock.now()
        pairs: list[tuple[TaskExecution, TaskExecution]] = []
        try:
            for lease, step in items:
                pairs.append((lease.execution, step(lease.execution, now)))
            written: list[TaskExecution] | None = self._write_batch(pairs)
        except LeaseLost:
            written = None
        if written is not None:
            return list(written)
        results: list[TaskExecution | LeaseLost] = []
        for lease, step in items:
            try:
                results.append(self.write_as_owner(lease, step))
            except LeaseLost as exc:
                results.append(exc)
        return results

    def write_as_owner(
        self, lease: Lease, step: Step, *, timeout: float | None = None
    ) -> TaskExecution:
        """Write as the lease holder: one conditional write, or LeaseLost."""
        return self._compare_and_set(
            lease.execution_id, step, known=lease.execution, timeout=timeout
        )

    def renew(
        self, lease: Lease, *, lease_duration: timedelta, timeout: float | None = None
    ) -> Lease:
        """Extend the lease (heartbeat); the new Lease reports any cancel request.

        ``timeout``: give up after that many seconds (no retries inside): a renewal
        that answers after the lease ran out is worth nothing to the heartbeat.
        """
        written = self.write_as_owner(
            lease,
            lambda current, now: transitions.renew(
                current, owner=lease.owner, now=now, lease_duration=lease_duration
            ),
            timeout=timeout,
        )
        return Lease(owner=lease.owner, execution=written)

    def succeed(self, lease: Lease, return_value: Any) -> TaskExecution:
        """Record success; raise LeaseLost (nothing written) if the lease is gone."""
        return self.write_as_owner(
            lease,
            lambda current, now: transitions.succeed(
                current, self.settings, owner=lease.owner, now=now, return_value=return_value
            ),
        )

    def fail(
        self, lease: Lease, error: ErrorEntry, *, retryable: bool, retry_at: datetime | None = None
    ) -> TaskExecution:
        """Record a failed attempt: READY for another one when allowed, else FAILED."""
        return self.write_as_owner(
            lease,
            lambda current, now: transitions.fail(
                current,
                self.settings,
                owner=lease.owner,
                now=now,
                error=error,
                retryable=retryable,
                retry_at=retry_at,
            ),
        )

    def release(self, lease: Lease) -> TaskExecution:
        """Hand an unfinished attempt back as READY (graceful shutdown), uncounted."""
        return self.write_as_owner(
            lease, lambda current, now: transitions.release(current, owner=lease.owner)
        )

    def cancel(
        self, execution_id: str, *, force: bool = False
    ) -> tuple[TaskExecution, CancelOutcome]:
        """Cancel: finished executions are left alone; running ones are asked to stop."""
        return self._decide_and_set(
            execution_id,
            lambda current, now: transitions.cancel(current, self.settings, now=now, force=force),
        )

    def set_dispatch(
        self,
        execution_id: str,
        state: DispatchState,
        *,
        error: str | None = None,
        known: TaskExecution | None = None,
        **names: str,
    ) -> TaskExecution:
        """Record the dispatch outcome (and Cloud resource names) of an execution.

        ``known`` (the version just written or queried) saves the read when nobody wrote
        since. A failed send (PENDING with ``error``) never undoes DISPATCHED: a
        delivery's claim already proved that an earlier send went through.
        """
        _check_names(names)

        def step(current: TaskExecution, now: datetime) -> TaskExecution:
            if state == DispatchState.DISPATCHED:
                return current.evolve(
                    dispatch_state=state, dispatch_error=None, dispatched_at=now, **names
                )
            if (
                state == DispatchState.PENDING
                and current.dispatch_state == DispatchState.DISPATCHED
            ):
                return current
            return current.evolve(dispatch_state=state, dispatch_error=error, **names)

        return self._compare_and_set(execution_id, step, known=known)

    def refuse_dispatch(self, execution_id: str, error: ErrorEntry) -> TaskExecution:
        """Close an execution the platform cannot take FAILED (transitions.refuse_dispatch)."""
        return self._compare_and_set(
            execution_id,
            lambda current, now: transitions.refuse_dispatch(
                current, self.settings, now=now, error=error
            ),
        )

    def mark_for_redispatch(
        self, execution_id: str, *, grace: timedelta, stale: timedelta
    ) -> TaskExecution | None:
        """Mark an abandoned execution PENDING again (see transitions.needs_redispatch);
        None if, on a fresh read, it no longer needs it (someone else got there first)."""

        def decide(current: TaskExecution, now: datetime) -> tuple[TaskExecution, bool]:
            if not transitions.needs_redispatch(current, now, grace=grace, stale=stale):
                return current, False
            return transitions.redispatch(current), True

        written, marked = self._decide_and_set(execution_id, decide)
        return written if marked else None
