"""A Google Cloud backend's declared queue or job settings (``queue_settings`` /
``job_settings``), parsed and checked: problems E040 (an invalid declaration) and E041
(the option of the other backend)."""

from __future__ import annotations

from collections.abc import Iterable

from ..gcp import declared
from ..options import BackendOptions, Problem


def parse_declarations(
    alias: str, config: BackendOptions, queues: Iterable[str], *, jobs: bool, backend: str
) -> tuple[declared.Declarations, list[Problem]]:
    """The declarations of backend ``alias`` by resource name, and what is wrong with them.

    A declaration may name a queue of QUEUES, a key or value of queue_aliases (both name
    the resource it resolves to), or ``*``.
    """
    option, other = (
        ("job_settings", "queue_settings") if jobs else ("queue_settings", "job_settings")
    )
    what = "Cloud Run jobs" if jobs else "Cloud Tasks queues"
    problems = []
    if getattr(config, other):
        problems.append(
            Problem(
                id="django_tasks_fs.E041",
                key=other,
                message=f"TASKS[{alias!r}]['OPTIONS'][{other!r}] is set, but {backend} "
                f"sends to {what}.",
                hint=f"Declare this backend's settings in {option!r}, or remove {other!r}.",
            )
        )
    aliases = config.queue_aliases
    names = {queue: aliases.get(queue, queue) for queue in queues}
    names.update(aliases)
    names.update({resource: resource for resource in set(names.values())})
    found, issues = declared.parse(getattr(config, option), jobs=jobs, names=names)
    problems.extend(
        Problem(
            id="django_tasks_fs.E040",
            key=option,
            message=f"TASKS[{alias!r}]['OPTIONS'][{option!r}]{issue.where} {issue.message}",
            hint=issue.hint,
        )
        for issue in issues
    )
    return found, problems
