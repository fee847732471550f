"""Bring live queues and jobs to their declared settings: read, compare, write.

``plan()`` reads each resource once and returns what would change (declared.diff);
``apply()`` writes those changes. Idempotent: after an apply, a plan finds nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from . import cloud_run, cloud_tasks
from .drift import Change, Settings, diff
from .resources import CloudResource, Kind, read_fields


class Action(enum.StrEnum):
    CREATE = "create"  #: a missing queue: apply creates it with the declared settings
    UPDATE = "update"
    MISSING = "missing"  #: a missing job: apply cannot create it (the image is the deploy's)
    NONE = "none"


@dataclass(frozen=True, slots=True, kw_only=True)
class Wanted:
    """A resource and its declared settings (field path -> value), and who declares it."""

    resource: CloudResource
    settings: Settings
    aliases: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """What apply would do to one resource."""

    wanted: Wanted
    action: Action
    changes: tuple[Change, ...] = ()

    @property
    def resource(self) -> CloudResource:
        return self.wanted.resource

    def lines(self) -> list[str]:
        """The step as the plan shows it."""
        used_by = ", ".join(f"TASKS[{a!r}]" for a in self.wanted.aliases)
        head = f"{self.resource.kind} {self.resource.path} ({used_by})"
        if self.action == Action.NONE:
            return [f"  {head}: up to date"]
        if self.action == Action.MISSING:
            return [
                f"! {head}: does not exist, and cannot be created here. {self.resource.fix}",
                *(f"      {c} (to set once it exists)" for c in self.changes),
            ]
        sign = "+" if self.action == Action.CREATE else "~"
        label = " (Google's defaults for the rest)" if self.action == Action.CREATE else ""
        return [f"{sign} {head}: {self.action}{label}", *(f"      {c}" for c in self.changes)]


def plan(wanted: Iterable[Wanted], *, timeout: float) -> list[Step]:
    """Read every wanted resource (``timeout`` seconds each at most) and compare."""
    steps = []
    for item in wanted:
        resource = item.resource
        live = read_fields(resource, item.settings, timeout=timeout)
        changes = tuple(diff(live, item.settings))
        if live is None:
            action = Action.CREATE if resource.kind == Kind.QUEUE else Action.MISSING
        else:
            action = Action.UPDATE if changes else Action.NONE
        steps.append(Step(wanted=item, action=action, changes=changes))
    return steps


def apply(step: Step, *, timeout: float) -> None:
    """Make the live resource match: create the queue, or write the changed fields.

    MissingCloudResource for a missing job (or one deleted since the plan)."""
    resource = step.resource
    if step.action == Action.MISSING:
        raise resource.missing()
    if step.action == Action.NONE:
        return
    changed = {c.path: c.declared for c in step.changes}
    if resource.kind == Kind.QUEUE:
        create = step.action == Action.CREATE
        cloud_tasks.write_queue(resource, changed, create=create, timeout=timeout)
    else:
        cloud_run.write_job(resource, changed, timeout=timeout)


def summary(steps: Sequence[Step]) -> str:
    """One line: how many of each action."""
    count = {a: sum(1 for s in steps if s.action == a) for a in Action}
    return (
        f"{count[Action.CREATE]} to create, {count[Action.UPDATE]} to update, "
        f"{count[Action.MISSING]} missing (create those yourself), "
        f"{count[Action.NONE]} up to date."
    )
