"""Fuzzing execute/, schedule/ and sweep/ through Django's test client: whatever the
method, token, headers, content type and body, no 500, no Firestore change, no task body."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from django.tasks import TaskResultStatus
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_tasks_fs.emulators.gcloud.oidc import TokenIssuer
from django_tasks_fs.store import ScheduledTask
from tests import tokens
from tests.integration.test_endpoints import stored

from .conftest import OTHER_AUDIENCE, Callers, firestore_forbidden, forbid_dispatch, snapshot
from .test_requests import HOSTILE_IDS

FORM = "application/x-www-form-urlencoded"


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,  # the project ids change per test: replays would mean nothing
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


#: Header values: arbitrary text, CR/LF injections, very long values.
header_values = st.one_of(
    st.text(max_size=60),
    st.text(st.characters(codec="latin-1"), max_size=300),
    st.sampled_from(["x\r\nX-Injected: 1", "\r\n\r\n", "\x00", "x" * 20_000, "é" * 1000, ""]),
)
methods = st.sampled_from(["POST"] * 8 + ["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
endpoints = st.sampled_from(["execute", "schedule", "sweep"])
content_types = st.one_of(
    st.sampled_from(
        [
            FORM,
            "application/json",
            "application/json; charset=utf-16",
            "text/plain",
            "multipart/form-data; boundary=b",
            "application/x-www-form-urlencoded; charset=latin-1",
            "",
        ]
    ),
    st.text(st.characters(codec="ascii"), max_size=40),
)
scalar_json = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
any_json = st.recursive(
    scalar_json,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


def ids(known: list[str]) -> st.SearchStrategy[str]:
    """Execution ids / schedule names: the stored ones, well-formed ones, hostile ones."""
    return st.one_of(
        st.sampled_from(known),
        st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True),
        st.sampled_from(HOSTILE_IDS).map(lambda v: v.replace("EXEC", known[0])),
        st.text(max_size=40),
    )


def bodies(known: list[str], aliases: list[str]) -> st.SearchStrategy[bytes | str]:
    fields = st.dictionaries(
        st.sampled_from(["execution_id", "task_id", "backend"]) | st.text(max_size=10),
        ids(known) | st.sampled_from(aliases),
        max_size=5,
    )
    complete = st.fixed_dictionaries(
        {"execution_id": ids(known), "task_id": ids(known), "backend": st.sampled_from(aliases)}
    )
    return st.one_of(
        (fields | complete).map(lambda d: urlencode(d, errors="surrogatepass")),
        (fields | complete).map(json.dumps),
        complete.map(
            lambda d: "&".join(f"{k}={v}" for k, v in d.items()).encode("utf-8", "surrogatepass")
        ),  # unescaped
        any_json.map(json.dumps),
        st.binary(max_size=300),
        st.text(max_size=300),
        st.sampled_from(
            [
                "[" * 5000 + "]" * 5000,
                '{"":' * 2500 + '""' + "}" * 2500,
                "execution_id=" + "a" * 20_000 + "&backend=cloud",
                b"\xff\xfe" * 100,
            ]
        ),
    )


def send(method: str, endpoint: str, body: bytes | str, content_type: str, **meta: str) -> Any:
    return Client().generic(method, f"/tasks/{endpoint}/", body, content_type, **meta)


def authorizations(rejected: list[str]) -> st.SearchStrategy[str | None]:
    jwt_shaped = r"[A-Za-z0-9_-]{1,60}\.[A-Za-z0-9_-]{1,60}\.[A-Za-z0-9_-]{0,60}"
    return st.one_of(
        st.none(),
        header_values,
        st.sampled_from(rejected),
        st.from_regex(jwt_shaped, fullmatch=True).map("Bearer {}".format),
    )


#: Headers the endpoints read, plus tracing ones; any subset, any values.
extra_headers = st.dictionaries(
    st.sampled_from(
        [
            "HTTP_X_CLOUDTASKS_TASKNAME",
            "HTTP_X_CLOUDTASKS_TASKRETRYCOUNT",
            "HTTP_X_CLOUDSCHEDULER_JOBNAME",
            "HTTP_X_CLOUDSCHEDULER_SCHEDULETIME",
            "HTTP_TRACEPARENT",
            "HTTP_TRACESTATE",
            "HTTP_X_FORWARDED_FOR",
        ]
    ),
    header_values,
)


def test_fuzzed_requests_without_a_valid_token_never_reach_firestore(
    callers: Callers, issuer: TokenIssuer, other_issuer: TokenIssuer, tmp_path: Path
) -> None:
    """1,500 requests: 405 unless POST, else 401 / 403 (a validly signed token for
    another service account), with Firestore unreachable: it is never even read."""
    marker = tmp_path / "ran.txt"
    execution = stored(callers.a, str(marker))
    schedule_slots(callers.a)
    before = snapshot(callers.a)
    known = [execution.id, "minutely"]

    @fuzz(1500)
    @given(
        method=methods,
        endpoint=endpoints,
        authorization=authorizations(rejected_tokens(issuer, other_issuer)),
        headers=extra_headers,
        content_type=content_types,
        body=bodies(known, ["cloud", "cloud_b", "cloudjobs", "default"]),
    )
    def check(
        method: str,
        endpoint: str,
        authorization: str | None,
        headers: dict[str, str],
        content_type: str,
        body: bytes | str,
    ) -> None:
        if authorization is not None:
            headers = {**headers, "HTTP_AUTHORIZATION": authorization}
        response = send(method, endpoint, body, content_type, **headers)
        if method != "POST":
            assert response.status_code == 405
        else:
            assert response.status_code in {401, 403}, response.content
            assert set(response.json()) == {"error"}

    with firestore_forbidden():  # any read or write raises in the view: the test fails
        check()
    assert snapshot(callers.a) == before
    assert not marker.exists()


def test_fuzzed_execute_requests_with_a_valid_token_change_nothing(
    cloud: Any, issuer: TokenIssuer, tmp_path: Path, monkeypatch: Any
) -> None:
    """800 deliveries with a valid token and fuzzed bodies, ids and headers, against
    executions that must not run (finished, leased elsewhere, deferred, another
    backend's): only 2xx/4xx/503 that change nothing; 200 only to acknowledge."""
    forbid_dispatch(cloud, monkeypatch)
    marker = tmp_path / "ran.txt"
    now = cloud.executions.clock.now()
    later = now + timedelta(days=1)
    seeded = [
        stored(cloud, str(marker), status=TaskResultStatus.SUCCESSFUL, finished_at=now),
        stored(cloud, str(marker), status=TaskResultStatus.FAILED, finished_at=now),
        stored(
            cloud,
            str(marker),
            status=TaskResultStatus.RUNNING,
            attempts=1,
            started_at=now,
            lease_owner="elsewhere:1",
            lease_expires_at=later,
            heartbeat_at=now,
        ),
        stored(cloud, str(marker), run_after=later),
        stored(cloud, str(marker), backend="default"),
    ]
    before = snapshot(cloud)
    authorization = f"Bearer {tokens.sign(issuer)}"
    statuses: set[int] = set()
    fields = {
        "execution_id": st.sampled_from([e.id for e in seeded]),
        "backend": st.sampled_from(["cloud", "cloudjobs"]),
    }
    plausible = st.tuples(  # half the cases get as far as the claim
        st.sampled_from([FORM, "application/json"]),
        st.fixed_dictionaries(fields),
    ).map(lambda c: (c[0], json.dumps(c[1]) if c[0] != FORM else urlencode(c[1])))
    arbitrary = st.tuples(
        content_types, bodies([e.id for e in seeded], ["cloud", "cloudjobs", "cloud_b", "default"])
    )

    @fuzz(800)
    @given(headers=extra_headers, request=plausible | arbitrary)
    def check(headers: dict[str, str], request: tuple[str, bytes | str]) -> None:
        content_type, body = request
        response = send(
            "POST", "execute", body, content_type, HTTP_AUTHORIZATION=authorization, **headers
        )
        statuses.add(response.status_code)
        assert response.status_code in {200, 400, 403, 404, 413, 503}, response.content
        if response.status_code == 200:
            assert response.json()["outcome"] == "refused", response.content

    check()
    assert snapshot(cloud) == before
    assert not marker.exists()
    assert {200, 400, 404, 503} <= statuses  # the fuzzer did reach the stored executions


def test_fuzzed_schedule_requests_with_a_valid_token_enqueue_nothing(
    cloud: Any, issuer: TokenIssuer, monkeypatch: Any
) -> None:
    """500 Cloud Scheduler deliveries with fuzzed schedule times, job names and bodies,
    for schedules none of whose slots may fire now: only 200 'disabled' or 4xx."""
    forbid_dispatch(cloud, monkeypatch)
    schedule_slots(cloud)
    before = snapshot(cloud)
    authorization = f"Bearer {tokens.sign(issuer)}"
    now = datetime.now(UTC)
    offsets = st.timedeltas(
        min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)
    )
    times = st.one_of(
        st.datetimes(timezones=st.builds(timezone, offsets)).map(datetime.isoformat),
        st.integers(-3600, 3600).map(lambda s: (now + timedelta(seconds=s)).isoformat()),
        st.sampled_from(
            [
                "0001-01-01T00:00:00+14:00",
                "9999-12-31T23:59:59-14:00",
                "0001-01-01T00:00:00Z",
                "2020-01-01T00:00:00Z",
            ]
        ),
        header_values,
    )
    names = ["daily", "daily-ny", "off"]
    well_formed = st.fixed_dictionaries(
        {"task_id": st.sampled_from(names), "backend": st.sampled_from(["cloud", "cloudjobs"])}
    ).map(urlencode)
    seen: set[tuple[int, str]] = set()
    near = st.integers(-3600, 3600).map(lambda s: (now + timedelta(seconds=s)).isoformat())
    plausible = st.tuples(st.sampled_from(names), near, well_formed, st.just(FORM))
    arbitrary = st.tuples(
        st.sampled_from(names) | header_values,
        times,
        well_formed | bodies(names, ["cloud", "cloudjobs", "default"]),
        st.just(FORM) | content_types,
    )

    @fuzz(500)
    @given(request=plausible | arbitrary)  # half the cases get as far as the cron check
    def check(request: tuple[str, str, bytes | str, str]) -> None:
        job, slot, body, content_type = request
        response = send(
            "POST",
            "schedule",
            body,
            content_type,
            HTTP_AUTHORIZATION=authorization,
            HTTP_X_CLOUDSCHEDULER_JOBNAME=job,
            HTTP_X_CLOUDSCHEDULER_SCHEDULETIME=slot,
        )
        assert response.status_code in {200, 400, 403, 404, 413}, response.content
        if response.status_code == 200:
            assert response.json() == {"outcome": "disabled"}, response.content
        seen.add((response.status_code, next(iter(response.json().values()))))

    check()
    assert snapshot(cloud) == before
    # The fuzzer got past every check up to the last one, for the enabled schedules too.
    assert (400, "The schedule time is not a slot of this schedule.") in seen
    assert (200, "disabled") in seen


def schedule_slots(backend: Any) -> None:
    """Schedules whose slots are all far from now: daily, 12 hours away (in UTC and in
    New York), and a disabled one that would fire every minute."""
    away = datetime.now(UTC) + timedelta(hours=12)
    cron = f"{away.minute} {away.hour} * * *"
    for name, zone, expression, enabled in [
        ("daily", "UTC", cron, True),
        ("daily-ny", "America/New_York", cron, True),
        ("off", "UTC", "* * * * *", False),
    ]:
        backend.schedules.create(
            ScheduledTask(
                name=name,
                task_path="tests.tasks.record",
                args=["/nonexistent", "x"],
                schedule=expression,
                time_zone=zone,
                enabled=enabled,
                backend="cloud",
            )
        )


def rejected_tokens(issuer: TokenIssuer, other_issuer: TokenIssuer) -> list[str]:
    now = int(datetime.now(UTC).timestamp())
    return [
        f"Bearer {token}"
        for token in [
            tokens.forged(issuer),
            tokens.unsigned(),
            tokens.hs256_with_public_cert(issuer),
            tokens.unknown_key(None),
            tokens.sign(issuer, aud=OTHER_AUDIENCE),
            tokens.sign(issuer, iat=now - 7200, exp=now - 3600),
            tokens.sign(issuer, email="attacker@evil.iam.gserviceaccount.com"),  # 403
            tokens.sign(other_issuer),
            tokens.raw({"alg": "RS256", "kid": issuer.key_id}, tokens.claims()),
            tokens.raw({"alg": "RS256"}, ("[" * 3000 + "]" * 3000).encode()),
        ]
    ]
