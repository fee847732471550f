"""Declared queue / job settings (gcp/declared.py): parsing, the checks that report a bad
declaration, the diff and how the plan shows it. Pure: no emulator, no network."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from django_tasks_fs.backends import CloudRunJobsBackend, CloudTasksBackend
from django_tasks_fs.gcp import declared
from django_tasks_fs.gcp.declared import parse
from django_tasks_fs.gcp.drift import Change, diff, nested, show
from django_tasks_fs.gcp.reconcile import Action, Step, Wanted, summary
from django_tasks_fs.gcp.resources import CloudResource, Kind
from django_tasks_fs.store import TaskExecution

GOOD = {
    "project_id": "p",
    "location": "europe-west1",
    "base_url": "https://app.example.com/tasks",
    "oidc_service_account": "invoker@p.iam.gserviceaccount.com",
}
NAMES = {"default": "default", "emails": "mail-q", "mail-q": "mail-q"}


def queues(raw: dict[str, Any]) -> tuple[declared.Declarations, list[declared.Issue]]:
    return parse(raw, jobs=False, names=NAMES)


# -- parsing ---------------------------------------------------------------------------


def test_star_applies_to_every_queue_and_a_queues_own_settings_win() -> None:
    found, issues = queues(
        {
            "*": {"retry_config": {"max_attempts": 5, "min_backoff": 1}},
            "emails": {
                "retry_config": {"max_attempts": -1},
                "rate_limits": {"max_dispatches_per_second": 2},
                "dispatch_deadline": timedelta(minutes=20),
            },
        }
    )
    assert issues == []
    assert found.settings("default") == {
        "retry_config.max_attempts": 5,
        "retry_config.min_backoff": timedelta(seconds=1),
    }
    assert found.settings("mail-q") == {  # "emails" is an alias of the queue mail-q
        "retry_config.max_attempts": -1,
        "retry_config.min_backoff": timedelta(seconds=1),
        "rate_limits.max_dispatches_per_second": 2.0,
        "dispatch_deadline": timedelta(minutes=20),
    }
    assert isinstance(found.settings("mail-q")["rate_limits.max_dispatches_per_second"], float)
    # dispatch_deadline is set on each task, not a field of the queue: never compared.
    assert "dispatch_deadline" not in found.remote("mail-q")
    assert found.settings("unknown") == {}


def test_nothing_declared_is_nothing_to_compare() -> None:
    found, issues = queues({})
    assert issues == []
    assert found.remote("default") == {}


@pytest.mark.parametrize(
    ("raw", "where", "expected"),
    [
        ({"default": {"retry_config": {"max_attempts": 0}}}, "['default']['retry_config']['max_attempts']", "a whole number >= 1, or -1"),
        ({"default": {"retry_config": {"min_backoff": -1}}}, "['default']['retry_config']['min_backoff']", "a number of seconds > 0"),
        ({"default": {"rate_limits": {"max_dispatches_per_second": 501}}}, "['default']['rate_limits']['max_dispatches_per_second']", "<= 500"),
        ({"default": {"rate_limits": {"max_concurrent_dispatches": True}}}, "['default']['rate_limits']['max_concurrent_dispatches']", "from 1 to 5000"),
        ({"*": {"dispatch_deadline": 10}}, "['*']['dispatch_deadline']", "from 15 to 1800"),
        ({"*": {"retry_config": {"max_doublings": 0}}}, "['*']['retry_config']['max_doublings']", "a whole number >= 1"),
    ],
)  # fmt: skip
def test_an_invalid_value_names_where_and_what_is_expected(
    raw: dict[str, Any], where: str, expected: str
) -> None:
    found, (issue,) = queues(raw)
    assert issue.where == where
    assert expected in issue.message
    assert found.remote("default") == {}  # an invalid value is never applied


def test_unknown_names_and_settings_list_the_valid_ones() -> None:
    _, issues = queues(
        {"billing": {}, "default": {"retry_config": {"max_atempts": 3}, "state": "PAUSED"}}
    )
    by_where = {i.where: i for i in issues}
    assert "not a queue of this backend" in by_where["['billing']"].message
    assert "'default', 'mail-q'" in by_where["['billing']"].hint
    assert (
        "retry_config/max_attempts" in by_where["['default']['retry_config']['max_atempts']"].hint
    )
    assert "changes only by pausing or resuming" in by_where["['default']['state']"].message
    _, (burst,) = queues({"*": {"rate_limits": {"max_burst_size": 10}}})
    assert burst.message.startswith("is output only")
    _, (unknown,) = queues({"*": {"retry_config": {"max_tries": 10}}})
    assert unknown.message == "is not a setting this library manages."


def test_a_queue_declared_twice_or_backoffs_inverted() -> None:
    _, issues = queues(
        {
            "emails": {"retry_config": {"min_backoff": 60}},
            "mail-q": {},
            "default": {"retry_config": {"min_backoff": 10, "max_backoff": 5}},
        }
    )
    messages = sorted(f"{i.where} {i.message}" for i in issues)
    assert messages == [
        "['default']['retry_config'] has min_backoff 10s above max_backoff 5s.",
        "['mail-q'] declares 'mail-q' again (already declared as 'emails').",
    ]


def test_job_settings_map_to_the_job_template() -> None:
    found, issues = parse(
        {"*": {"max_retries": 0}, "batch": {"timeout": 3600, "parallelism": 2}},
        jobs=True,
        names={"batch": "batch"},
    )
    assert issues == []
    assert found.remote("batch") == {
        "template.template.max_retries": 0,
        "template.template.timeout": timedelta(hours=1),
        "template.parallelism": 2,
    }
    _, (issue,) = parse({"*": {"max_retries": 11}}, jobs=True, names={"batch": "batch"})
    assert "from 0 to 10" in issue.message


# -- the checks -------------------------------------------------------------------------


def test_a_bad_declaration_fails_the_system_checks() -> None:
    backend = CloudTasksBackend(
        "cloud",
        {
            "QUEUES": ["default"],
            "OPTIONS": {
                **GOOD,
                "queue_settings": {"default": {"retry_config": {"max_attempts": 0}}},
            },
        },
    )
    (message,) = backend.check()
    assert message.id == "django_tasks_fs.E040"
    assert message.msg == (
        "TASKS['cloud']['OPTIONS']['queue_settings']['default']['retry_config']"
        "['max_attempts'] is 0; expected a whole number >= 1, or -1 for unlimited."
    )
    assert message.hint is not None
    assert "remove it to leave the live value" in message.hint


def test_the_other_backends_option_is_refused() -> None:
    jobs = CloudRunJobsBackend("batch", {"OPTIONS": {**GOOD, "queue_settings": {"*": {}}}})
    (message,) = jobs.check()
    assert message.id == "django_tasks_fs.E041"
    assert "CloudRunJobsBackend sends to Cloud Run jobs" in message.msg
    tasks = CloudTasksBackend("cloud", {"OPTIONS": {**GOOD, "job_settings": {"*": {}}}})
    assert [m.id for m in tasks.check()] == ["django_tasks_fs.E041"]


def test_settings_must_be_a_dict() -> None:
    (message,) = CloudTasksBackend("c", {"OPTIONS": {**GOOD, "queue_settings": [1]}}).check()
    assert message.id == "django_tasks_fs.E002"


def test_declared_resources_cover_every_required_queue() -> None:
    backend = CloudTasksBackend(
        "cloud",
        {
            "QUEUES": ["default", "emails"],
            "OPTIONS": {
                **GOOD,
                "queue_aliases": {"emails": "mail-q"},
                "queue_settings": {"emails": {"rate_limits": {"max_concurrent_dispatches": 4}}},
            },
        },
    )
    assert [(r.name, dict(s)) for r, s in backend.declared_resources()] == [
        ("default", {}),
        ("mail-q", {"rate_limits.max_concurrent_dispatches": 4}),
    ]


def test_a_queues_dispatch_deadline_applies_to_tasks_without_a_timeout() -> None:
    backend = CloudTasksBackend(
        "cloud",
        {"OPTIONS": {**GOOD, "queue_settings": {"default": {"dispatch_deadline": 1200}}}},
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    base: dict[str, Any] = {"task_path": "t.f", "backend": "cloud", "queue_name": "default"}
    base.update(enqueued_at=now, run_after=now)
    plain = TaskExecution(id="e1", **base)
    timed = TaskExecution(id="e2", timeout_seconds=60, **base)
    assert backend.dispatch_deadline(plain, "default") == timedelta(seconds=1200)
    assert backend.dispatch_deadline(timed, "default") == timedelta(seconds=60)
    assert backend.dispatch_deadline(plain, "other") is None


def test_forget_max_attempts_drops_the_cached_limit(settings: Any) -> None:
    locmem = "django.core.cache.backends.locmem.LocMemCache"
    settings.CACHES = {"default": {"BACKEND": locmem, "LOCATION": "test-forget-max-attempts"}}
    limits = iter([5, 7])

    class Reading(CloudTasksBackend):
        def platform_max_attempts(self, queue: str) -> int | None:
            return next(limits)

    backend = Reading("cloud", {"OPTIONS": GOOD})
    caches["default"].clear()
    assert backend.max_attempts_for("default") == 5
    assert backend.max_attempts_for("default") == 5
    backend.forget_max_attempts("default")
    assert backend.max_attempts_for("default") == 7


# -- the diff and the plan -----------------------------------------------------------------


def test_diff_lists_only_declared_fields_that_differ() -> None:
    live = {
        "retry_config.max_attempts": 100,
        "retry_config.min_backoff": timedelta(seconds=0.1),
        "rate_limits.max_dispatches_per_second": 500.0,
    }
    declared_ = {
        "retry_config.max_attempts": 5,
        "retry_config.min_backoff": timedelta(seconds=0.1),
        "rate_limits.max_dispatches_per_second": 500,
    }
    assert diff(live, declared_) == [Change(path="retry_config.max_attempts", live=100, declared=5)]
    assert diff(live, {}) == []
    assert [str(c) for c in diff(None, declared_)] == [
        "rate_limits.max_dispatches_per_second: 500",
        "retry_config.max_attempts: 5",
        "retry_config.min_backoff: 0.1s",
    ]


def test_float_rates_compare_as_numbers() -> None:
    live = {"rate_limits.max_dispatches_per_second": 0.1 + 0.2}
    assert diff(live, {"rate_limits.max_dispatches_per_second": 0.3}) == []
    assert diff(live, {"rate_limits.max_dispatches_per_second": 0.31}) != []


def test_values_are_shown_as_google_writes_them() -> None:
    assert show(timedelta(minutes=5)) == "300s"
    assert show(timedelta(milliseconds=100)) == "0.1s"
    assert show(2.5) == "2.5"
    assert show(-1) == "-1"
    assert str(Change(path="a.b", live=100, declared=5)) == "a.b: 100 -> 5"


def test_nested_builds_the_message() -> None:
    assert nested({"retry_config.max_attempts": 5, "rate_limits.max_concurrent_dispatches": 2}) == {
        "retry_config": {"max_attempts": 5},
        "rate_limits": {"max_concurrent_dispatches": 2},
    }


def step(kind: Kind, action: Action, *changes: Change) -> Step:
    resource = CloudResource(kind=kind, project="p", location="l", name="q", job_args=("x",))
    wanted = Wanted(resource=resource, settings={}, aliases=("a", "b"))
    return Step(wanted=wanted, action=action, changes=changes)


def test_plan_lines() -> None:
    change = Change(path="retry_config.max_attempts", live=100, declared=5)
    queue = "Cloud Tasks queue projects/p/locations/l/queues/q (TASKS['a'], TASKS['b'])"
    assert step(Kind.QUEUE, Action.UPDATE, change).lines() == [
        f"~ {queue}: update",
        "      retry_config.max_attempts: 100 -> 5",
    ]
    assert step(Kind.QUEUE, Action.NONE).lines() == [f"  {queue}: up to date"]
    created = step(Kind.QUEUE, Action.CREATE, Change(path="x", live=None, declared=1))
    assert created.lines() == [f"+ {queue}: create (Google's defaults for the rest)", "      x: 1"]
    (missing,) = step(Kind.JOB, Action.MISSING).lines()
    assert missing.startswith("! Cloud Run job projects/p/locations/l/jobs/q")
    assert "gcloud run jobs create q --image=IMAGE" in missing
    steps = [step(Kind.QUEUE, Action.UPDATE), step(Kind.QUEUE, Action.NONE)]
    assert summary(steps) == (
        "0 to create, 1 to update, 0 missing (create those yourself), 1 up to date."
    )


def test_manage_py_check_fails_on_a_bad_declaration(settings: Any) -> None:
    declared = {"default": {"timeout": 0}}
    settings.TASKS = {
        "batch": {
            "BACKEND": "django_tasks_fs.backends.CloudRunJobsBackend",
            "OPTIONS": {**GOOD, "store": "memory", "job_settings": declared},
        }
    }
    with pytest.raises(SystemCheckError) as failure:
        call_command("check", stdout=StringIO(), stderr=StringIO())
    assert (
        "TASKS['batch']: (django_tasks_fs.E040) TASKS['batch']['OPTIONS']['job_settings']"
        "['default']['timeout'] is 0; expected a number of seconds from 1 to 604800"
    ) in str(failure.value)
