"""Cloud Scheduler through the official client: jobs fire on cron, on demand, with retries."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from google.api_core import exceptions
from google.auth.transport.requests import Request
from google.cloud import scheduler_v1
from google.oauth2 import id_token

from django_tasks_fs.emulators.gcloud import GoogleCloudEmulator

from .support import RecordingTarget, wait_for

EMAIL = "scheduler@test.iam.gserviceaccount.com"
EVERY_SECOND = "* * * * * *"  # emulator-only seconds field (seconds_cron=True)
State = scheduler_v1.Job.State


def http_job(location: str, url: str, schedule: str = "0 3 * * *", **fields: Any) -> Any:
    return {
        "name": f"{location}/jobs/nightly",
        "schedule": schedule,
        "time_zone": "Europe/Paris",
        "http_target": {
            "uri": url,
            "http_method": scheduler_v1.HttpMethod.POST,
            "body": b"task_id=abc",
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            "oidc_token": {"service_account_email": EMAIL, "audience": "https://app"},
        },
        **fields,
    }


def parse_rfc3339(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_create_job_plans_the_next_slot_in_its_time_zone(scheduler: Any, location: str) -> None:
    created = scheduler.create_job(parent=location, job=http_job(location, "http://x/"))

    assert created.state == State.ENABLED
    paris_3am = created.schedule_time.astimezone(UTC)
    assert paris_3am.minute == 0
    assert paris_3am.hour in (1, 2)  # 03:00 Paris is 01:00 or 02:00 UTC
    assert created.retry_config.retry_count == 0
    assert created.attempt_deadline == timedelta(minutes=3)
    assert [j.name for j in scheduler.list_jobs(parent=location)] == [created.name]
    with pytest.raises(exceptions.AlreadyExists):
        scheduler.create_job(parent=location, job=http_job(location, "http://x/"))


def test_invalid_schedules_are_refused(scheduler: Any, location: str) -> None:
    with pytest.raises(exceptions.InvalidArgument):
        scheduler.create_job(parent=location, job=http_job(location, "http://x/", "every day"))
    with pytest.raises(exceptions.InvalidArgument):
        scheduler.create_job(
            parent=location, job=http_job(location, "http://x/", time_zone="Nowhere/Land")
        )


def test_job_fires_each_slot_with_scheduler_headers(
    gcloud: GoogleCloudEmulator, scheduler: Any, location: str, target: RecordingTarget
) -> None:
    job = scheduler.create_job(
        parent=location, job=http_job(location, f"{target.url}/schedule/", EVERY_SECOND)
    )

    first, second = target.received(2, timeout=5)[:2]
    scheduler.delete_job(name=job.name)
    assert (first.method, first.path, first.body) == ("POST", "/schedule/", b"task_id=abc")
    assert first.headers["X-CloudScheduler-JobName"] == "nightly"
    assert first.headers["Content-Type"] == "application/x-www-form-urlencoded"
    slots = [parse_rfc3339(r.headers["X-CloudScheduler-ScheduleTime"]) for r in (first, second)]
    assert slots[0].microsecond == 0
    assert slots[0] < slots[1]  # the next slot, or a later one when the machine lagged
    assert first.at >= slots[0].timestamp()  # never before its slot
    token = first.headers["Authorization"].removeprefix("Bearer ")
    with requests.Session() as session:
        claims = id_token.verify_token(
            token, Request(session=session), audience="https://app", certs_url=gcloud.certs_url
        )
    assert claims["email"] == EMAIL


def test_run_job_fires_now_and_records_the_attempt(
    scheduler: Any, location: str, target: RecordingTarget
) -> None:
    job = scheduler.create_job(parent=location, job=http_job(location, target.url))

    scheduler.run_job(name=job.name)

    [got] = target.received(1)
    stamp = parse_rfc3339(got.headers["X-CloudScheduler-ScheduleTime"])
    assert abs(stamp.timestamp() - got.at) < 2

    def attempted() -> Any:
        found = scheduler.get_job(name=job.name)
        return found if "last_attempt_time" in found else None

    found = wait_for(attempted, what="last_attempt_time")
    assert found.status.code == 0


def test_pause_and_resume(scheduler: Any, location: str, target: RecordingTarget) -> None:
    job = scheduler.create_job(parent=location, job=http_job(location, target.url, EVERY_SECOND))
    paused = scheduler.pause_job(name=job.name)
    assert paused.state == State.PAUSED
    with pytest.raises(exceptions.FailedPrecondition):
        scheduler.pause_job(name=job.name)
    count = len(target.requests)

    time.sleep(1.3)  # a slot passes while paused
    assert len(target.requests) <= count + 1  # at most one already in flight

    before = len(target.requests)
    assert scheduler.resume_job(name=job.name).state == State.ENABLED
    target.received(before + 1, timeout=5)
    scheduler.delete_job(name=job.name)
    with pytest.raises(exceptions.NotFound):
        scheduler.get_job(name=job.name)


def test_update_job_with_mask(scheduler: Any, location: str) -> None:
    job = scheduler.create_job(parent=location, job=http_job(location, "http://x/"))

    updated = scheduler.update_job(
        job={"name": job.name, "schedule": "30 4 * * *", "description": "new"},
        update_mask={"paths": ["schedule"]},
    )

    assert updated.schedule == "30 4 * * *"
    assert updated.description == ""
    assert updated.http_target.uri == "http://x/"
    assert updated.schedule_time.astimezone(UTC).minute == 30
    with pytest.raises(exceptions.NotFound):
        scheduler.update_job(
            job={"name": f"{location}/jobs/missing", "schedule": "* * * * *"},
            update_mask={"paths": ["schedule"]},
        )


def test_failed_attempt_is_retried_retry_count_times(
    scheduler: Any, location: str, target: RecordingTarget
) -> None:
    target.statuses = [500, 500, 500, 500]
    retry = {"retry_count": 2, "min_backoff_duration": timedelta(seconds=0.1)}
    job = scheduler.create_job(
        parent=location, job=http_job(location, target.url, retry_config=retry)
    )

    scheduler.run_job(name=job.name)

    got = target.received(3)
    time.sleep(0.6)  # a 4th attempt would have come by now
    assert len(target.requests) == 3
    slots = {r.headers["X-CloudScheduler-ScheduleTime"] for r in got}
    assert len(slots) == 1  # retries are of the same run
    found = scheduler.get_job(name=job.name)
    assert found.status.code != 0
