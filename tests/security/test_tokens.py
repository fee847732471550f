"""Token forgery, replay and audience / issuer / key confusion on all three endpoints
(the basic hostile tokens of tests/integration/test_endpoints.py are not repeated)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.tasks import TaskResultStatus
from django.test import Client

from django_tasks_fs.emulators.gcloud.oidc import TokenIssuer
from django_tasks_fs.store import DispatchState, ScheduledTask
from tests import tokens
from tests.integration.test_endpoints import ISSUER_CASES, post, stored

from .conftest import OTHER_ACCOUNT, OTHER_AUDIENCE, Callers, snapshot

ENDPOINTS = ["execute", "schedule", "sweep"]
DEEP = "[" * 3000 + "]" * 3000


def now() -> int:
    """This instant, when the token is made (not when the module was imported)."""
    return int(time.time())


def hour_ago() -> datetime:
    """Enqueued long enough ago for the sweeper to pick it up if PENDING."""
    return datetime.now(UTC) - timedelta(hours=1)


#: name, token maker (issuer, other_issuer) -> Authorization header value or None.
HOSTILE: list[tuple[str, Callable[[TokenIssuer, TokenIssuer], str | None]]] = [
    ("unknown key, unknown kid", lambda i, o: f"Bearer {tokens.unknown_key('0' * 40)}"),
    ("unknown key, no kid", lambda i, o: f"Bearer {tokens.unknown_key(None)}"),
    ("the other caller's key, our claims", lambda i, o: f"Bearer {tokens.sign(o)}"),
    (
        "our key, the other caller's audience",
        lambda i, o: f"Bearer {tokens.sign(i, aud=OTHER_AUDIENCE)}",
    ),
    ("audience as a list", lambda i, o: f"Bearer {tokens.sign(i, aud=[tokens.AUDIENCE])}"),
    (
        "audience with a path",
        lambda i, o: f"Bearer {tokens.sign(i, aud=tokens.AUDIENCE + '/tasks/')}",
    ),
    (
        "issuer look-alike",
        lambda i, o: f"Bearer {tokens.sign(i, iss='https://accounts.google.com.evil.example')}",
    ),
    ("issuer over http", lambda i, o: f"Bearer {tokens.sign(i, iss='http://accounts.google.com')}"),
    ("issuer missing", lambda i, o: f"Bearer {tokens.sign(i, iss=None)}"),
    (
        "issued in the future",
        lambda i, o: f"Bearer {tokens.sign(i, iat=now() + 3600, exp=now() + 7200)}",
    ),
    ("no expiry", lambda i, o: f"Bearer {tokens.sign(i, exp=None)}"),
    ("expiry as a string", lambda i, o: f"Bearer {tokens.sign(i, exp=str(now() + 3600))}"),
    ("email of the other caller", lambda i, o: f"Bearer {tokens.sign(i, email=OTHER_ACCOUNT)}"),
    ("email_verified as a string", lambda i, o: f"Bearer {tokens.sign(i, email_verified='true')}"),
    ("signature stripped", lambda i, o: "Bearer " + tokens.sign(i).rsplit(".", 1)[0] + "."),
    (
        "signature of another token",
        lambda i, o: (
            "Bearer "
            + tokens.sign(i, sub="1").rsplit(".", 1)[0]
            + "."
            + tokens.sign(i, sub="2").rsplit(".", 1)[1]
        ),
    ),
    (
        "RS512 header",
        lambda i, o: f"Bearer {tokens.raw({'alg': 'RS512', 'kid': i.key_id}, tokens.claims())}",
    ),
    ("alg NONE", lambda i, o: f"Bearer {tokens.raw({'alg': 'NONE'}, tokens.claims(), b'')}"),
    (
        "kid is a list",
        lambda i, o: f"Bearer {tokens.raw({'alg': 'RS256', 'kid': [i.key_id]}, tokens.claims())}",
    ),
    ("header is a list", lambda i, o: f"Bearer {tokens.raw(['RS256'], tokens.claims())}"),
    ("payload is a string", lambda i, o: f"Bearer {tokens.raw({'alg': 'RS256'}, 'claims')}"),
    ("deeply nested header", lambda i, o: f"Bearer {tokens.raw(DEEP.encode(), tokens.claims())}"),
    ("deeply nested payload", lambda i, o: f"Bearer {tokens.raw({'alg': 'RS256'}, DEEP.encode())}"),
    ("header not UTF-8", lambda i, o: f"Bearer {tokens.raw(b'\xff\xfe{', tokens.claims())}"),
    ("five segments (JWE)", lambda i, o: f"Bearer {tokens.sign(i)}.a.b"),
    ("lowercase scheme", lambda i, o: f"bearer {tokens.sign(i)}"),
    ("Basic scheme", lambda i, o: "Basic aW52b2tlcjpwYXNzd29yZA=="),
    ("two tokens", lambda i, o: f"Bearer {tokens.sign(i)}, Bearer {tokens.sign(i)}"),
    ("token then CR LF and a header", lambda i, o: f"Bearer {tokens.sign(i)}\r\nX-Injected: 1"),
    ("token then NUL", lambda i, o: f"Bearer {tokens.sign(i)}\x00"),
    ("9 kB header", lambda i, o: f"Bearer {tokens.sign(i, padding='x' * 9000)}"),
    ("empty", lambda i, o: ""),
]
#: A validly signed token from the right key, for the wrong caller: 403; the rest 401.
FORBIDDEN = {"email of the other caller", "email_verified as a string"}


def _request(endpoint: str, authorization: str | None, body: dict[str, str], **extra: str) -> Any:
    headers = dict(extra)
    if authorization is not None:
        headers["HTTP_AUTHORIZATION"] = authorization
    return Client().post(
        f"/tasks/{endpoint}/",
        "&".join(f"{k}={v}" for k, v in body.items()),
        content_type="application/x-www-form-urlencoded",
        **headers,
    )


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_hostile_tokens_are_refused_and_change_nothing(
    callers: Callers, issuer: TokenIssuer, other_issuer: TokenIssuer, tmp_path: Path, endpoint: str
) -> None:
    log = tmp_path / "ran.txt"
    execution = stored(callers.a, str(log))
    stored(callers.a, str(log), dispatch_state=DispatchState.PENDING, enqueued_at=hour_ago())
    callers.a.schedules.create(
        ScheduledTask(
            name="minutely",
            task_path="tests.tasks.noop",
            schedule="* * * * *",
            backend="cloud",
            created_at=datetime(2020, 1, 1, tzinfo=UTC),
        )
    )
    before = snapshot(callers.a)
    slot = datetime.now(UTC).replace(second=0, microsecond=0).isoformat()
    wrong = []
    for case, make in HOSTILE:
        response = _request(
            endpoint,
            make(issuer, other_issuer),
            {"execution_id": execution.id, "task_id": "minutely", "backend": "cloud"},
            HTTP_X_CLOUDSCHEDULER_JOBNAME="minutely",
            HTTP_X_CLOUDSCHEDULER_SCHEDULETIME=slot,
        )
        if response.status_code != (403 if case in FORBIDDEN else 401):
            wrong.append((case, response.status_code, response.content))
    assert wrong == []
    assert snapshot(callers.a) == before  # and forbid_dispatch: nothing was sent
    assert not log.exists()


def test_hostile_tokens_cannot_sweep(callers: Callers, issuer: TokenIssuer, tmp_path: Path) -> None:
    """sweep/ with the hostile tokens execute/ and schedule/ are tested with elsewhere."""
    stored(
        callers.a, str(tmp_path / "x"), dispatch_state=DispatchState.PENDING, enqueued_at=hour_ago()
    )
    before = snapshot(callers.a)
    wrong = []
    for case, make_token, status in ISSUER_CASES:
        token = make_token(issuer)
        response = _request("sweep", None if token is None else f"Bearer {token}", {})
        if response.status_code != status:
            wrong.append((case, response.status_code, response.content))
    assert wrong == []
    assert snapshot(callers.a) == before  # and forbid_dispatch: nothing was sent


def test_the_sweep_control_does_dispatch_with_a_valid_token(
    cloud: Any, issuer: TokenIssuer, tmp_path: Path
) -> None:
    """Control for the sweep tests above: the same request with a valid token dispatches."""
    old = stored(
        cloud, str(tmp_path / "x"), dispatch_state=DispatchState.PENDING, enqueued_at=hour_ago()
    )
    response = _request("sweep", f"Bearer {tokens.sign(issuer)}", {})
    assert response.status_code == 200, response.content
    assert old.id in cloud.sent


def test_a_callers_token_is_refused_for_the_other_callers_backend(
    callers: Callers, issuer: TokenIssuer, other_issuer: TokenIssuer, tmp_path: Path
) -> None:
    """Audience confusion between two backends of one app: each token opens only its own."""
    log = tmp_path / "ran.txt"
    mine, theirs = stored(callers.a, str(log)), stored(callers.b, str(log), backend="cloud_b")
    token_a = f"Bearer {tokens.sign(issuer)}"
    token_b = f"Bearer {tokens.sign(other_issuer, aud=OTHER_AUDIENCE, email=OTHER_ACCOUNT)}"
    before = snapshot(callers.a)
    cases = [
        (token_a, theirs.id, "cloud_b", 403),  # A's token, B's backend
        (token_b, mine.id, "cloud", 403),  # B's token, A's backend
        (token_b, mine.id, "cloud_b", 404),  # B's token, A's execution through B's backend
        (token_a, theirs.id, "cloud", 404),  # A's token, B's execution through A's backend
    ]
    for token, execution_id, alias, status in cases:
        response = _request("execute", token, {"execution_id": execution_id, "backend": alias})
        assert response.status_code == status, (token, alias, response.content)
    assert snapshot(callers.a) == before
    assert not log.exists()
    # Control: each token does open its own backend.
    response = _request("execute", token_b, {"execution_id": theirs.id, "backend": "cloud_b"})
    assert response.status_code == 200, response.content
    assert log.read_text() == "ran\n"


def test_a_callers_token_sweeps_only_its_own_backends(
    callers: Callers, issuer: TokenIssuer, tmp_path: Path
) -> None:
    stored(
        callers.b,
        str(tmp_path / "x"),
        backend="cloud_b",
        dispatch_state=DispatchState.PENDING,
        enqueued_at=hour_ago(),
    )
    before = snapshot(callers.a)
    response = _request("sweep", f"Bearer {tokens.sign(issuer)}", {})
    assert response.status_code == 200, response.content
    assert "cloud_b" not in response.json()["dispatched"]
    assert "cloud_b" not in response.json()["redispatched"]
    assert snapshot(callers.a) == before  # and forbid_dispatch: cloud_b sent nothing


def test_a_replayed_token_reruns_nothing(cloud: Any, issuer: TokenIssuer, tmp_path: Path) -> None:
    """One captured token, replayed on the same execution, on another one already
    finished, and on an execution of another backend: the body ran once in all."""
    log = tmp_path / "ran.txt"
    token = f"Bearer {tokens.sign(issuer)}"
    first = stored(cloud, str(log))
    assert (
        _request("execute", token, {"execution_id": first.id, "backend": "cloud"}).status_code
        == 200
    )
    finished = stored(
        cloud, str(log), status=TaskResultStatus.SUCCESSFUL, finished_at=first.enqueued_at
    )
    foreign = stored(cloud, str(log), backend="default")
    before = snapshot(cloud)
    for execution_id, status in [
        (first.id, 200),
        (first.id, 200),
        (finished.id, 200),
        (foreign.id, 404),
    ]:
        response = _request("execute", token, {"execution_id": execution_id, "backend": "cloud"})
        assert response.status_code == status, response.content
    assert snapshot(cloud) == before
    assert log.read_text() == "ran\n"


def test_an_execute_token_replayed_on_schedule_cannot_invent_slots(
    cloud: Any, issuer: TokenIssuer
) -> None:
    """The audience is the app's origin, so a Cloud Tasks token also opens schedule/:
    it can only fire real slots, once, of a schedule that existed then."""
    created = datetime.now(UTC) - timedelta(days=1)
    cloud.schedules.create(
        ScheduledTask(
            name="hourly",
            task_path="tests.tasks.noop",
            schedule="0 * * * *",
            backend="cloud",
            created_at=created,
        )
    )
    token = f"Bearer {tokens.sign(issuer)}"
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    before = snapshot(cloud)
    for slot in [
        hour + timedelta(minutes=1),  # not a slot
        hour + timedelta(hours=2),  # the future
        created - timedelta(days=30),  # before the schedule existed
        datetime(1970, 1, 1, tzinfo=UTC),
    ]:
        response = _request(
            "schedule",
            token,
            {"task_id": "hourly", "backend": "cloud"},
            HTTP_X_CLOUDSCHEDULER_JOBNAME="hourly",
            HTTP_X_CLOUDSCHEDULER_SCHEDULETIME=slot.isoformat(),
        )
        assert response.status_code == 400, (slot, response.content)
    assert snapshot(cloud) == before
    # Control: a real slot fires, once.
    headers = {
        "X-CloudScheduler-JobName": "hourly",
        "X-CloudScheduler-ScheduleTime": hour.isoformat(),
    }
    body = {"task_id": "hourly", "backend": "cloud"}
    assert (
        post("/tasks/schedule/", tokens.sign(issuer), body, **headers).json()["outcome"]
        == "enqueued"
    )
    assert (
        post("/tasks/schedule/", tokens.sign(issuer), body, **headers).json()["outcome"]
        == "duplicate"
    )
