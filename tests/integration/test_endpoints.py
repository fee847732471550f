"""The execute/ and schedule/ endpoints through Django's test client: every hostile
request gets the right status and changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.tasks import TaskResultStatus, task_backends
from django.test import Client

from django_tasks_fs.auth import certificate_cache
from django_tasks_fs.emulators.gcloud.oidc import TokenIssuer
from django_tasks_fs.store import DispatchState, ScheduledTask, TaskExecution
from emulator.faultproxy import FaultProxy
from tests import tokens
from tests.factories import write_execution
from tests.settings import tasks_setting


@pytest.fixture
def cloud(
    test_store: tuple[str, str], settings: Any, certs: tokens.CertsServer, monkeypatch: Any
) -> Any:
    """The Cloud Tasks backend of this test's store, its Google Cloud calls replaced by a
    recording fake (the endpoints are under test here; tests/e2e drives the real clients)."""
    project, store = test_store
    settings.TASKS = tasks_setting(project, certs_url=certs.url, store=store)
    backend = task_backends["cloud"]
    backend.sent = []

    def send(execution: TaskExecution, *, resend: bool = False) -> dict[str, str]:
        backend.sent.append(execution.id)
        return {"cloud_task_name": f"projects/p/locations/l/queues/q/tasks/{execution.id}"}

    monkeypatch.setattr(backend, "send", send)
    monkeypatch.setattr(backend, "platform_max_attempts", lambda queue: 3)
    return backend


def stored(cloud: Any, record: str, **changes: Any) -> TaskExecution:
    """An execution written directly (no dispatch): the endpoint is what is under test."""
    values: dict[str, Any] = {
        "task_path": "tests.tasks.record",
        "backend": "cloud",
        "args": [record, "ran"],
        "dispatch_state": DispatchState.DISPATCHED,
    }
    return write_execution(cloud.executions, **{**values, **changes})


def post(path: str, token: str | None, data: Any, **headers: str) -> Any:
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    if token is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    content_type = "application/x-www-form-urlencoded"
    body = data if isinstance(data, (str, bytes)) else "&".join(f"{k}={v}" for k, v in data.items())
    return Client().post(path, body, content_type=content_type, **extra)


def test_a_valid_delivery_runs_the_task(cloud: Any, issuer: TokenIssuer, tmp_path: Path) -> None:
    log = tmp_path / "ran.txt"
    execution = stored(cloud, str(log))
    response = post(
        "/tasks/execute/",
        tokens.sign(issuer),
        {"execution_id": execution.id, "backend": "cloud"},
        **{"X-CloudTasks-TaskName": execution.id, "X-CloudTasks-TaskRetryCount": "0"},
    )
    assert response.status_code == 200, response.content
    assert response.json()["outcome"] == "succeeded"
    after = cloud.executions.get(execution.id)
    assert after.status == TaskResultStatus.SUCCESSFUL
    assert after.worker_ids == [f"cloud-tasks:{execution.id}"]
    assert log.read_text() == "ran\n"
    # A redelivery of a finished execution is acknowledged and changes nothing.
    again = post(
        "/tasks/execute/", tokens.sign(issuer), {"execution_id": execution.id, "backend": "cloud"}
    )
    assert again.status_code == 200
    assert cloud.executions.get(execution.id).update_time == after.update_time


def test_the_delivery_records_the_dispatch_with_its_task_name(
    cloud: Any, issuer: TokenIssuer, tmp_path: Path
) -> None:
    execution = stored(
        cloud, str(tmp_path / "x"), dispatch_state=DispatchState.PENDING, dispatch_error="lost"
    )
    response = post(
        "/tasks/execute/",
        tokens.sign(issuer),
        {"execution_id": execution.id, "backend": "cloud"},
        **{"X-CloudTasks-QueueName": "default", "X-CloudTasks-TaskName": execution.id},
    )
    assert response.status_code == 200, response.content
    after = cloud.executions.get(execution.id)
    assert (after.status, after.dispatch_state) == (
        TaskResultStatus.SUCCESSFUL,
        DispatchState.DISPATCHED,
    )
    assert after.dispatch_error is None  # the delivery proves an earlier send went through
    assert after.cloud_task_name == (
        f"projects/{cloud.cloud.project_id}/locations/{cloud.cloud.location}"
        f"/queues/default/tasks/{execution.id}"
    )


def test_a_delivery_with_malformed_task_headers_records_no_name(
    cloud: Any, issuer: TokenIssuer, tmp_path: Path
) -> None:
    execution = stored(cloud, str(tmp_path / "x"), dispatch_state=DispatchState.PENDING)
    response = post(
        "/tasks/execute/",
        tokens.sign(issuer),
        {"execution_id": execution.id, "backend": "cloud"},
        **{"X-CloudTasks-QueueName": "a/b", "X-CloudTasks-TaskName": execution.id},
    )
    assert response.status_code == 200, response.content
    after = cloud.executions.get(execution.id)
    assert (after.dispatch_state, after.cloud_task_name) == (DispatchState.DISPATCHED, None)


def test_retryable_failure_asks_cloud_tasks_to_retry(cloud: Any, issuer: TokenIssuer) -> None:
    execution = stored(cloud, "", task_path="tests.tasks.failing", args=[], max_attempts=2)
    body = {"execution_id": execution.id, "backend": "cloud"}
    assert post("/tasks/execute/", tokens.sign(issuer), body).status_code == 500
    assert cloud.executions.get(execution.id).status == TaskResultStatus.READY
    final = post("/tasks/execute/", tokens.sign(issuer), body)
    assert final.status_code == 200  # the final failure is recorded: stop retrying
    assert cloud.executions.get(execution.id).status == TaskResultStatus.FAILED


def test_a_live_lease_elsewhere_gets_retry_later(
    cloud: Any, issuer: TokenIssuer, tmp_path: Path
) -> None:
    execution = stored(cloud, str(tmp_path / "x"))
    cloud.executions.claim(execution.id, worker_id="other", lease_duration=timedelta(seconds=60))
    response = post(
        "/tasks/execute/", tokens.sign(issuer), {"execution_id": execution.id, "backend": "cloud"}
    )
    assert response.status_code == 503
    assert response["Retry-After"] == "10"
    assert response.json()["reason"] == "lease_held"


@pytest.mark.timeout(60)
def test_a_delivery_during_a_firestore_outage_gets_retry_later_in_seconds(
    cloud: Any, issuer: TokenIssuer, proxy: FaultProxy, tmp_path: Path
) -> None:
    """Not a hang in the client's 5-minute retries: 503 after firestore_timeout_seconds,
    naming the Firestore tried; Cloud Tasks delivers again later."""
    execution = stored(cloud, str(tmp_path / "x"))
    proxy.cut()
    response = post(
        "/tasks/execute/", tokens.sign(issuer), {"execution_id": execution.id, "backend": "cloud"}
    )
    assert response.status_code == 503
    assert response["Retry-After"] == "10"
    error = response.json()["error"]
    assert error.startswith("Firestore is unreachable (ServiceUnavailable: ")
    assert f"the Firestore emulator at {proxy.host!r} (FIRESTORE_EMULATOR_HOST)" in error
    proxy.restore()


ISSUER_CASES: list[tuple[str, Any, int]] = [
    ("no token", lambda i: None, 401),
    ("expired", lambda i: tokens.sign(i, iat=1_600_000_000, exp=1_600_003_600), 401),
    ("forged signature", lambda i: tokens.forged(i), 401),
    ("wrong audience", lambda i: tokens.sign(i, aud="https://evil.example"), 401),
    ("wrong issuer", lambda i: tokens.sign(i, iss="https://evil.example"), 401),
    ("alg none", lambda i: tokens.unsigned(), 401),
    ("HS256 keyed with the public cert", lambda i: tokens.hs256_with_public_cert(i), 401),
    ("garbage", lambda i: "not-a-jwt", 401),
    ("wrong email", lambda i: tokens.sign(i, email="attacker@evil.iam.gserviceaccount.com"), 403),
    ("unverified email", lambda i: tokens.sign(i, email_verified=False), 403),
    ("email_verified missing", lambda i: tokens.sign(i, email_verified=None), 403),
]


@pytest.mark.parametrize(
    ("case", "make_token", "status"), ISSUER_CASES, ids=[c[0] for c in ISSUER_CASES]
)
@pytest.mark.parametrize("endpoint", ["execute", "schedule"])
def test_hostile_tokens(
    cloud: Any,
    issuer: TokenIssuer,
    tmp_path: Path,
    endpoint: str,
    case: str,
    make_token: Any,
    status: int,
) -> None:
    log = tmp_path / "ran.txt"
    execution = stored(cloud, str(log))
    cloud.schedules.create(
        ScheduledTask(
            name="every-minute", task_path="tests.tasks.noop", schedule="* * * * *", backend="cloud"
        )
    )
    body = {"execution_id": execution.id, "task_id": "every-minute", "backend": "cloud"}
    slot = datetime.now(UTC).replace(second=0, microsecond=0).isoformat()
    response = post(
        f"/tasks/{endpoint}/",
        make_token(issuer),
        body,
        **{"X-CloudScheduler-JobName": "every-minute", "X-CloudScheduler-ScheduleTime": slot},
    )
    assert response.status_code == status, (case, response.content)
    assert cloud.executions.get(execution.id).update_time == execution.update_time
    assert cloud.executions.count() == 1  # the schedule enqueued nothing
    assert not log.exists()


BODY_CASES: list[tuple[str, Any, int]] = [
    ("empty", "", 400),
    ("not a form", "%%%===&&&", 400),
    ("missing execution_id", {"backend": "cloud"}, 400),
    ("injected id", {"execution_id": "../../x", "backend": "cloud"}, 400),
    ("unknown execution", {"execution_id": "nope", "backend": "cloud"}, 404),
    ("backend of another caller", {"execution_id": "EXEC", "backend": "default"}, 403),
    ("duplicated field", "execution_id=EXEC&execution_id=EXEC&backend=cloud", 400),
    ("oversize", "execution_id=" + "a" * 20_000 + "&backend=cloud", 413),
]


@pytest.mark.parametrize(("case", "body", "status"), BODY_CASES, ids=[c[0] for c in BODY_CASES])
def test_hostile_execute_bodies(
    cloud: Any, issuer: TokenIssuer, tmp_path: Path, case: str, body: Any, status: int
) -> None:
    log = tmp_path / "ran.txt"
    execution = stored(cloud, str(log))
    if isinstance(body, dict):
        body = {k: v.replace("EXEC", execution.id) for k, v in body.items()}
    else:
        body = body.replace("EXEC", execution.id)
    response = post("/tasks/execute/", tokens.sign(issuer), body)
    assert response.status_code == status, (case, response.content)
    assert cloud.executions.get(execution.id).update_time == execution.update_time
    assert not log.exists()


def test_another_backends_execution_is_not_found_and_untouched(
    cloud: Any, issuer: TokenIssuer, tmp_path: Path
) -> None:
    log = tmp_path / "ran.txt"
    execution = stored(cloud, str(log), backend="elsewhere")
    response = post(
        "/tasks/execute/", tokens.sign(issuer), {"execution_id": execution.id, "backend": "cloud"}
    )
    assert response.status_code == 404
    assert cloud.executions.get(execution.id).update_time == execution.update_time
    assert not log.exists()


def test_get_is_refused(cloud: Any) -> None:
    assert Client().get("/tasks/execute/").status_code == 405


def test_schedule_slot_enqueues_once_and_replays_change_nothing(
    cloud: Any, issuer: TokenIssuer
) -> None:
    cloud.schedules.create(
        ScheduledTask(
            name="every-minute", task_path="tests.tasks.noop", schedule="* * * * *", backend="cloud"
        )
    )
    slot = datetime.now(UTC).replace(second=0, microsecond=0)
    headers = {
        "X-CloudScheduler-JobName": "every-minute",
        "X-CloudScheduler-ScheduleTime": slot.isoformat(),
    }
    body = {"task_id": "every-minute", "backend": "cloud"}
    first = post("/tasks/schedule/", tokens.sign(issuer), body, **headers)
    assert first.status_code == 200, first.content
    assert first.json()["outcome"] == "enqueued"
    for _ in range(3):
        replay = post("/tasks/schedule/", tokens.sign(issuer), body, **headers)
        assert replay.status_code == 200
        assert replay.json()["outcome"] == "duplicate"
    assert cloud.executions.count() == 1
    execution = cloud.executions.get(first.json()["execution_id"])
    assert execution.scheduled_task == "every-minute"
    # Sent once, replays sent nothing; nothing written after the send (its delivery
    # records the dispatch).
    assert execution.dispatch_state == DispatchState.PENDING
    assert cloud.sent == [execution.id]


def test_a_slot_of_a_task_the_backend_refuses_enqueues_nothing(
    cloud: Any, issuer: TokenIssuer
) -> None:
    # The schedule's queue left QUEUES after it was made: the one enqueue path's
    # validation refuses it; retrying cannot help, so Cloud Scheduler gets a 200.
    cloud.schedules.create(
        ScheduledTask(
            name="stale", task_path="tests.tasks.noop", schedule="* * * * *", backend="cloud"
        ).evolve(queue_name="gone")
    )
    slot = datetime.now(UTC).replace(second=0, microsecond=0)
    response = post(
        "/tasks/schedule/",
        tokens.sign(issuer),
        {"task_id": "stale", "backend": "cloud"},
        **{"X-CloudScheduler-JobName": "stale", "X-CloudScheduler-ScheduleTime": slot.isoformat()},
    )
    assert response.status_code == 200, response.content
    assert response.json()["outcome"] == "invalid task"
    assert "Queue 'gone' is not valid" in response.json()["error"]
    assert cloud.executions.count() == 0
    assert cloud.sent == []


@pytest.mark.parametrize(
    ("case", "headers", "body", "status"),
    [
        ("no job header", {"X-CloudScheduler-ScheduleTime": "SLOT"}, {"task_id": "hourly"}, 400),
        ("no time header", {"X-CloudScheduler-JobName": "hourly"}, {"task_id": "hourly"}, 400),
        (
            "bad time",
            {"X-CloudScheduler-JobName": "hourly", "X-CloudScheduler-ScheduleTime": "yesterday"},
            {"task_id": "hourly"},
            400,
        ),
        (
            "not a slot",
            {"X-CloudScheduler-JobName": "hourly", "X-CloudScheduler-ScheduleTime": "OFFSLOT"},
            {"task_id": "hourly"},
            400,
        ),
        (
            "far future slot",
            {"X-CloudScheduler-JobName": "hourly", "X-CloudScheduler-ScheduleTime": "FUTURE"},
            {"task_id": "hourly"},
            400,
        ),
        (
            "unknown schedule",
            {"X-CloudScheduler-JobName": "x", "X-CloudScheduler-ScheduleTime": "SLOT"},
            {"task_id": "nope"},
            404,
        ),
    ],
)
def test_hostile_schedule_requests(
    cloud: Any,
    issuer: TokenIssuer,
    case: str,
    headers: dict[str, str],
    body: dict[str, str],
    status: int,
) -> None:
    cloud.schedules.create(
        ScheduledTask(
            name="hourly", task_path="tests.tasks.noop", schedule="0 * * * *", backend="cloud"
        )
    )
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    values = {
        "SLOT": hour.isoformat(),
        "OFFSLOT": (hour + timedelta(minutes=7)).isoformat(),
        "FUTURE": (hour + timedelta(days=2)).isoformat(),
    }
    headers = {k: values.get(v, v) for k, v in headers.items()}
    before = cloud.schedules.get("hourly")
    response = post(
        "/tasks/schedule/", tokens.sign(issuer), {**body, "backend": "cloud"}, **headers
    )
    assert response.status_code == status, (case, response.content)
    assert cloud.executions.count() == 0
    assert cloud.schedules.get("hourly").update_time == before.update_time


def test_certificates_are_cached(
    cloud: Any, issuer: TokenIssuer, tmp_path: Path, monkeypatch: Any
) -> None:
    from django_tasks_fs import auth

    calls: list[str] = []
    real = auth._fetch

    def counting(url: str) -> Any:
        calls.append(url)
        return real(url)

    monkeypatch.setattr(auth, "_fetch", counting)
    monkeypatch.setattr(certificate_cache, "_certs", {})
    for _ in range(3):
        execution = stored(cloud, str(tmp_path / "log"))
        post(
            "/tasks/execute/",
            tokens.sign(issuer),
            {"execution_id": execution.id, "backend": "cloud"},
        )
    assert len(calls) == 1


def test_each_delivery_is_logged_with_the_executions_attributes(
    cloud: Any, issuer: TokenIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    execution = stored(cloud, "", task_path="tests.tasks.failing", args=[], max_attempts=2)
    body = {"execution_id": execution.id, "backend": "cloud"}
    with caplog.at_level("INFO", logger="django_tasks_fs"):
        post("/tasks/execute/", tokens.sign(issuer), body, **{"X-CloudTasks-TaskName": "t1"})
    ours = [r for r in caplog.records if r.name.startswith("django_tasks_fs")]
    assert [r.getMessage().split(" execution_id")[0] for r in ours] == [
        "attempt failed, will retry",
        "executed",
    ]
    for record in ours:
        assert record.execution_id == execution.id  # type: ignore[attr-defined]
        assert record.task_path == "tests.tasks.failing"  # type: ignore[attr-defined]
        assert (record.backend, record.queue) == ("cloud", "default")  # type: ignore[attr-defined]
        assert record.attempt == 1  # type: ignore[attr-defined]
        assert record.worker_id == "cloud-tasks:t1"  # type: ignore[attr-defined]
        assert record.outcome == "retry"  # type: ignore[attr-defined]
        assert record.error_class == "builtins.ValueError"  # type: ignore[attr-defined]
        assert record.duration >= 0  # type: ignore[attr-defined]
