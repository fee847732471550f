"""Cloud Tasks through the official client: queues, task names, delivery, retries."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from google.api_core import exceptions
from google.auth.transport.requests import Request
from google.cloud import tasks_v2
from google.oauth2 import id_token

from django_tasks_fs.emulators.gcloud import GoogleCloudEmulator

from .support import RecordingTarget, wait_for

EMAIL = "invoker@test.iam.gserviceaccount.com"
FAST_RETRY = {"max_attempts": 3, "min_backoff": timedelta(seconds=0.1), "max_doublings": 1}


@pytest.fixture
def queue(tasks: Any, location: str) -> Any:
    return tasks.create_queue(
        parent=location, queue={"name": f"{location}/queues/work", "retry_config": FAST_RETRY}
    )


def http_task(url: str, **fields: Any) -> dict[str, Any]:
    return {
        "http_request": {
            "url": url,
            "http_method": tasks_v2.HttpMethod.POST,
            "headers": {"Content-Type": "application/json"},
            "body": b'{"n": 1}',
            "oidc_token": {"service_account_email": EMAIL},
        },
        **fields,
    }


def gone(tasks: Any, name: str) -> bool:
    try:
        tasks.get_task(name=name)
    except exceptions.NotFound:
        return True
    return False


# Queues ----------------------------------------------------------------------


def test_queue_gets_googles_defaults(tasks: Any, location: str) -> None:
    created = tasks.create_queue(parent=location, queue={"name": f"{location}/queues/plain"})

    found = tasks.get_queue(name=created.name)
    assert found.state == tasks_v2.Queue.State.RUNNING
    assert found.retry_config.max_attempts == 100
    assert found.retry_config.min_backoff == timedelta(seconds=0.1)
    assert found.retry_config.max_backoff == timedelta(hours=1)
    assert found.retry_config.max_doublings == 16
    assert [q.name for q in tasks.list_queues(parent=location)] == [created.name]


def test_queue_errors(tasks: Any, location: str, queue: Any) -> None:
    with pytest.raises(exceptions.AlreadyExists):
        tasks.create_queue(parent=location, queue={"name": queue.name})
    with pytest.raises(exceptions.NotFound):
        tasks.get_queue(name=f"{location}/queues/missing")
    with pytest.raises(exceptions.InvalidArgument):
        tasks.create_queue(parent=location, queue={"name": "not/a/queue"})


def test_update_queue_retry_config(tasks: Any, queue: Any) -> None:
    updated = tasks.update_queue(
        queue={"name": queue.name, "retry_config": {"max_attempts": -1}},
        update_mask={"paths": ["retry_config.max_attempts"]},
    )

    assert updated.retry_config.max_attempts == -1
    assert updated.retry_config.min_backoff == timedelta(seconds=0.1)
    assert tasks.get_queue(name=queue.name).retry_config.max_attempts == -1


def test_update_queue_changes_exactly_the_masked_fields(tasks: Any, queue: Any) -> None:
    """A leaf path keeps its siblings; a message path replaces the whole message (what
    it leaves unset gets Google's defaults); fields outside the mask are ignored."""
    tasks.update_queue(
        queue={"name": queue.name, "rate_limits": {"max_concurrent_dispatches": 7}},
        update_mask={"paths": ["rate_limits.max_concurrent_dispatches"]},
    )
    updated = tasks.update_queue(
        queue={
            "name": queue.name,
            "rate_limits": {"max_dispatches_per_second": 3.0, "max_concurrent_dispatches": 1},
            "retry_config": {"max_backoff": timedelta(seconds=9)},
        },
        update_mask={"paths": ["rate_limits.max_dispatches_per_second", "retry_config"]},
    )

    assert updated.rate_limits.max_dispatches_per_second == 3.0
    assert updated.rate_limits.max_concurrent_dispatches == 7  # not in this mask
    assert updated.retry_config.max_backoff == timedelta(seconds=9)
    assert updated.retry_config.max_attempts == 100  # replaced message: default again
    assert updated.retry_config.min_backoff == timedelta(seconds=0.1)
    assert tasks.get_queue(name=queue.name) == updated


def test_update_queue_refuses_a_bad_mask(tasks: Any, queue: Any) -> None:
    for path in ("rate_limits.max_concurrent", "state", "name"):
        with pytest.raises(exceptions.InvalidArgument):
            tasks.update_queue(queue={"name": queue.name}, update_mask={"paths": [path]})
    assert tasks.get_queue(name=queue.name).retry_config.max_attempts == 3


# Names -------------------------------------------------------------------------


def test_create_task_in_unknown_queue_is_not_found(tasks: Any, location: str) -> None:
    with pytest.raises(exceptions.NotFound):
        tasks.create_task(parent=f"{location}/queues/missing", task=http_task("http://x/"))


def test_duplicate_task_name_already_exists_even_after_completion(
    tasks: Any, queue: Any, target: RecordingTarget
) -> None:
    name = f"{queue.name}/tasks/exec-1"
    tasks.create_task(parent=queue.name, task=http_task(target.url, name=name))
    with pytest.raises(exceptions.AlreadyExists):
        tasks.create_task(parent=queue.name, task=http_task(target.url, name=name))

    target.received(1)
    wait_for(lambda: gone(tasks, name), what="the delivered task to be deleted")
    with pytest.raises(exceptions.AlreadyExists):
        tasks.create_task(parent=queue.name, task=http_task(target.url, name=name))


def test_unnamed_tasks_get_generated_names(tasks: Any, queue: Any, target: RecordingTarget) -> None:
    first = tasks.create_task(parent=queue.name, task=http_task(target.url))
    second = tasks.create_task(parent=queue.name, task=http_task(target.url))

    assert first.name.startswith(f"{queue.name}/tasks/")
    assert first.name != second.name


def test_dispatch_deadline_outside_googles_range_is_refused(tasks: Any, queue: Any) -> None:
    with pytest.raises(exceptions.InvalidArgument):
        tasks.create_task(
            parent=queue.name,
            task=http_task("http://x/", dispatch_deadline=timedelta(seconds=5)),
        )


# Delivery ----------------------------------------------------------------------


def test_task_is_posted_with_cloud_tasks_headers_and_a_valid_token(
    gcloud: GoogleCloudEmulator, tasks: Any, queue: Any, target: RecordingTarget
) -> None:
    url = f"{target.url}/tasks/execute/"
    created = tasks.create_task(
        parent=queue.name, task=http_task(url, name=f"{queue.name}/tasks/first")
    )

    assert created.dispatch_count == 0
    assert created.create_time <= created.schedule_time
    [got] = target.received(1)
    assert (got.method, got.path, got.body) == ("POST", "/tasks/execute/", b'{"n": 1}')
    headers = got.headers
    assert headers["Content-Type"] == "application/json"
    assert headers["X-CloudTasks-QueueName"] == "work"
    assert headers["X-CloudTasks-TaskName"] == "first"
    assert headers["X-CloudTasks-TaskRetryCount"] == "0"
    assert headers["X-CloudTasks-TaskExecutionCount"] == "0"
    assert float(headers["X-CloudTasks-TaskETA"]) == pytest.approx(
        created.schedule_time.timestamp(), abs=1e-5
    )
    scheme, token = headers["Authorization"].split(" ")
    assert scheme == "Bearer"
    with requests.Session() as session:
        claims = id_token.verify_token(
            token, Request(session=session), audience=url, certs_url=gcloud.certs_url
        )
    assert claims["email"] == EMAIL
    wait_for(lambda: gone(tasks, created.name), what="the task to be deleted after a 200")


def test_oidc_audience_is_used_when_given(
    gcloud: GoogleCloudEmulator, tasks: Any, queue: Any, target: RecordingTarget
) -> None:
    task = http_task(target.url)
    task["http_request"]["oidc_token"]["audience"] = "https://aud.example.com"
    tasks.create_task(parent=queue.name, task=task)

    [got] = target.received(1)
    token = got.headers["Authorization"].removeprefix("Bearer ")
    with requests.Session() as session:
        claims = id_token.verify_token(
            token,
            Request(session=session),
            audience="https://aud.example.com",
            certs_url=gcloud.certs_url,
        )
    assert claims["email"] == EMAIL


def test_failures_are_retried_with_backoff_until_max_attempts(
    tasks: Any, queue: Any, target: RecordingTarget
) -> None:
    target.statuses = [500, 503, 500, 500]
    name = f"{queue.name}/tasks/flaky"
    tasks.create_task(parent=queue.name, task=http_task(target.url, name=name))

    got = target.received(3)
    wait_for(lambda: gone(tasks, name), what="the task to be dropped after max_attempts")
    time.sleep(0.5)  # a 4th attempt would have come by now (backoff is 0.2 s)
    assert len(target.requests) == 3
    assert [r.headers["X-CloudTasks-TaskRetryCount"] for r in got] == ["0", "1", "2"]
    assert [r.headers["X-CloudTasks-TaskExecutionCount"] for r in got] == ["0", "1", "2"]
    assert [r.headers.get("X-CloudTasks-TaskPreviousResponse") for r in got] == [
        None,
        "500",
        "503",
    ]
    gaps = [b.at - a.at for a, b in itertools.pairwise(got)]
    assert gaps[0] >= 0.09  # min_backoff
    assert gaps[1] >= 0.19  # doubled once


def test_a_retry_that_succeeds_completes_the_task(
    tasks: Any, queue: Any, target: RecordingTarget
) -> None:
    target.statuses = [429]
    created = tasks.create_task(parent=queue.name, task=http_task(target.url))

    target.received(2)
    wait_for(lambda: gone(tasks, created.name), what="the task to complete")


def test_unreachable_target_is_retried(tasks: Any, queue: Any) -> None:
    created = tasks.create_task(parent=queue.name, task=http_task("http://127.0.0.1:9/"))

    def attempted_twice() -> bool:
        try:
            return bool(tasks.get_task(name=created.name).dispatch_count >= 2)
        except exceptions.NotFound:
            return True

    wait_for(attempted_twice, what="two attempts")
    wait_for(lambda: gone(tasks, created.name), what="the task to be dropped")


def test_schedule_time_delays_delivery(tasks: Any, queue: Any, target: RecordingTarget) -> None:
    eta = datetime.now(UTC) + timedelta(seconds=1)
    created = tasks.create_task(parent=queue.name, task=http_task(target.url, schedule_time=eta))

    assert created.schedule_time == eta
    [got] = target.received(1, timeout=5)
    assert got.at >= eta.timestamp()
    assert float(got.headers["X-CloudTasks-TaskETA"]) == pytest.approx(eta.timestamp(), abs=1e-5)


def test_paused_queue_holds_tasks_until_resumed(
    tasks: Any, queue: Any, target: RecordingTarget
) -> None:
    tasks.pause_queue(name=queue.name)
    created = tasks.create_task(parent=queue.name, task=http_task(target.url))

    time.sleep(0.3)  # give the dispatcher a chance to (wrongly) deliver
    assert target.requests == []
    assert tasks.get_task(name=created.name).dispatch_count == 0
    tasks.resume_queue(name=queue.name)
    target.received(1)


def test_list_get_and_delete_tasks(tasks: Any, queue: Any) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    created = tasks.create_task(
        parent=queue.name, task=http_task("http://127.0.0.1:9/", schedule_time=later)
    )

    assert [t.name for t in tasks.list_tasks(parent=queue.name)] == [created.name]
    full = tasks.get_task(request={"name": created.name, "response_view": tasks_v2.Task.View.FULL})
    assert full.http_request.body == b'{"n": 1}'
    assert tasks.get_task(name=created.name).http_request.body == b""
    tasks.delete_task(name=created.name)
    with pytest.raises(exceptions.NotFound):
        tasks.delete_task(name=created.name)
    with pytest.raises(exceptions.AlreadyExists):
        tasks.create_task(parent=queue.name, task=http_task("http://x/", name=created.name))


def test_purge_queue_deletes_its_tasks(tasks: Any, queue: Any) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    for _ in range(3):
        tasks.create_task(parent=queue.name, task=http_task("http://x/", schedule_time=later))

    tasks.purge_queue(name=queue.name)

    assert list(tasks.list_tasks(parent=queue.name)) == []
