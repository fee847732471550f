"""Hostile requests that carry a valid token: malformed, oversize and non-UTF-8 bodies,
JSON and form, wrong methods, hostile ids, header injection, absurd schedule times."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django.tasks import TaskResultStatus
from django.test import Client

from django_tasks_fs.emulators.gcloud.oidc import TokenIssuer
from django_tasks_fs.store import ScheduledTask
from tests import tokens
from tests.integration.test_endpoints import stored

from .conftest import Callers, firestore_forbidden, snapshot

FORM = "application/x-www-form-urlencoded"


def deliver(
    issuer: TokenIssuer | None,
    body: str | bytes,
    content_type: str = FORM,
    endpoint: str = "execute",
    method: str = "post",
    **meta: str,
) -> Any:
    if issuer is not None:
        meta["HTTP_AUTHORIZATION"] = f"Bearer {tokens.sign(issuer)}"
    client = Client()
    if method == "post":
        return client.post(f"/tasks/{endpoint}/", body, content_type=content_type, **meta)
    return client.generic(method.upper(), f"/tasks/{endpoint}/", body, content_type, **meta)


@pytest.mark.parametrize("with_token", [True, False], ids=["valid token", "no token"])
def test_every_method_but_post_is_refused_before_anything_else(
    cloud: Any, issuer: TokenIssuer, tmp_path: Path, with_token: bool
) -> None:
    execution = stored(cloud, str(tmp_path / "ran.txt"))
    body = urlencode({"execution_id": execution.id, "backend": "cloud"})
    wrong = []
    with firestore_forbidden():
        for endpoint in ("execute", "schedule", "sweep"):
            for method in ("get", "head", "put", "patch", "delete", "options", "trace", "brew"):
                response = deliver(
                    issuer if with_token else None, body, endpoint=endpoint, method=method
                )
                if response.status_code != 405:
                    wrong.append((endpoint, method, response.status_code))
    assert wrong == []
    assert not (tmp_path / "ran.txt").exists()


HOSTILE_IDS = [
    "EXEC\n",  # '$' in a regex also matches before a final newline
    "EXEC\r\n",
    "\nEXEC",
    "EXEC\r\nX-Injected: 1",
    "EXEC\x00",
    "EXEC/../EXEC",
    "../EXEC",
    "..",
    ".",
    "/",
    "EXEC/",
    " EXEC",
    "EXEC ",
    "EXEC\t",
    "\uff25\uff38\uff25\uff23",  # EXEC in fullwidth letters
    "EXEC\u200b",  # zero-width space
    "é",
    "\ud800",
    "__EXEC__",  # Firestore reserves __.*__ ids: a read fails with InvalidArgument
    "x" * 501,
    "x" * 10_000,
    "",
    "<script>alert(1)</script>",
    "$(touch /tmp/pwned)",
    "EXEC;EXEC",
    "EXEC%0A",
]


@pytest.mark.parametrize("field", ["execution_id", "backend"])
def test_hostile_ids_are_refused_before_firestore(
    cloud: Any, issuer: TokenIssuer, tmp_path: Path, field: str
) -> None:
    log = tmp_path / "ran.txt"
    execution = stored(cloud, str(log))
    before = snapshot(cloud)
    wrong = []
    with firestore_forbidden():
        for hostile in HOSTILE_IDS:
            value = hostile.replace("EXEC", execution.id if field == "execution_id" else "cloud")
            fields = {"execution_id": execution.id, "backend": "cloud", field: value}
            as_form = urlencode(fields, encoding="utf-8", errors="surrogatepass")
            as_json = json.dumps(fields)
            for body, content_type in [(as_form, FORM), (as_json, "application/json")]:
                response = deliver(issuer, body, content_type)
                if response.status_code != 400:
                    wrong.append((hostile, content_type, response.status_code))
    assert wrong == []
    assert snapshot(cloud) == before
    assert not log.exists()


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


BODIES: list[tuple[str, bytes | str, str, int]] = [
    ("form, not UTF-8", b"execution_id=\xff\xfe&backend=cloud", FORM, 400),
    ("JSON, not UTF-8", b'{"execution_id": "\xff", "backend": "cloud"}', "application/json", 400),
    ("JSON, deeply nested", deep(5000), "application/json", 400),
    ("JSON object, deeply nested", '{"":' * 2500 + '""' + "}" * 2500, "application/json", 400),
    ("JSON array", '["EXEC", "cloud"]', "application/json", 400),
    ("JSON string", '"execution_id=EXEC&backend=cloud"', "application/json", 400),
    ("JSON null", "null", "application/json", 400),
    ("JSON NaN", "NaN", "application/json", 400),
    ("JSON number values", '{"execution_id": 1, "backend": "cloud"}', "application/json", 400),
    (
        "JSON nested values",
        '{"execution_id": ["EXEC"], "backend": "cloud"}',
        "application/json",
        400,
    ),
    (
        "JSON duplicated key",
        '{"execution_id": "EXEC", "backend": "x", "backend": "cloud"}',
        "application/json",
        400,
    ),
    (
        "JSON trailing garbage",
        '{"execution_id": "EXEC", "backend": "cloud"} x',
        "application/json",
        400,
    ),
    ("JSON, empty", "", "application/json", 400),
    ("form as JSON content type", "execution_id=EXEC&backend=cloud", "application/json", 400),
    ("JSON as form content type", '{"execution_id": "EXEC", "backend": "cloud"}', FORM, 400),
    (
        "multipart",
        "--b\r\nContent-Disposition: form-data; name=execution_id\r\n\r\nEXEC\r\n--b--",
        "multipart/form-data; boundary=b",
        400,
    ),
    (
        "form, 11 fields",
        "&".join(f"f{i}=1" for i in range(9)) + "&execution_id=EXEC&backend=cloud",
        FORM,
        400,
    ),
    ("form, field without '='", "execution_id=EXEC&backend=cloud&flag", FORM, 400),
    ("form, ';' separator", "execution_id=EXEC;backend=cloud", FORM, 400),
    ("form, encoded newline in id", "execution_id=EXEC%0A&backend=cloud", FORM, 400),
    ("form, encoded NUL in backend", "execution_id=EXEC&backend=cloud%00", FORM, 400),
    (
        "oversize JSON",
        json.dumps({"execution_id": "EXEC", "backend": "cloud", "pad": "x" * 20_000}),
        "application/json",
        413,
    ),
    ("1 MB of zeros", b"\x00" * 1_000_000, FORM, 413),
]


@pytest.mark.parametrize(
    ("case", "body", "content_type", "status"), BODIES, ids=[b[0] for b in BODIES]
)
def test_hostile_bodies_are_refused_before_firestore(
    cloud: Any,
    issuer: TokenIssuer,
    tmp_path: Path,
    case: str,
    body: bytes | str,
    content_type: str,
    status: int,
) -> None:
    log = tmp_path / "ran.txt"
    execution = stored(cloud, str(log))
    body = body.replace("EXEC", execution.id) if isinstance(body, str) else body
    with firestore_forbidden():
        response = deliver(issuer, body, content_type)
    assert response.status_code == status, response.content
    assert cloud.executions.get(execution.id).update_time == execution.update_time
    assert not log.exists()


@pytest.mark.parametrize(
    ("content_length", "status"),
    [("999999999", 413), ("-1", 400), ("abc", 400), ("1e3", 400), ("0x10", 400)],
)
def test_a_lying_content_length_is_refused(
    cloud: Any, issuer: TokenIssuer, tmp_path: Path, content_length: str, status: int
) -> None:
    execution = stored(cloud, str(tmp_path / "ran.txt"))
    body = urlencode({"execution_id": execution.id, "backend": "cloud"})
    with firestore_forbidden():
        response = deliver(issuer, body, CONTENT_LENGTH=content_length)
    assert response.status_code == status, response.content
    assert not (tmp_path / "ran.txt").exists()


def test_a_json_body_delivers_like_a_form_body(
    cloud: Any, issuer: TokenIssuer, tmp_path: Path
) -> None:
    """Control for the JSON refusals above: a well-formed JSON body runs the task once."""
    log = tmp_path / "ran.txt"
    execution = stored(cloud, str(log))
    body = json.dumps({"execution_id": execution.id, "backend": "cloud"})
    response = deliver(issuer, body, "application/json; charset=utf-8")
    assert response.status_code == 200, response.content
    assert log.read_text() == "ran\n"
    assert cloud.executions.get(execution.id).status == TaskResultStatus.SUCCESSFUL


HOSTILE_HEADERS = {
    "X-CloudTasks-TaskName": [
        "task\r\nX-Injected: 1",
        "task\nSet-Cookie: session=evil",
        "task\x00nul",
        "<script>alert(1)</script>",
        "../../etc/passwd",
        "projects/p/locations/l/queues/q/tasks/" + "t" * 500,
        "ünïcödé-ΤΑΣΚ-任务",
        "x" * 100_000,
        "",
    ],
    "traceparent": ["00-" + "0" * 32 + "-" + "0" * 16 + "-01", "garbage\r\n", "x" * 100_000],
    "tracestate": ["a=" + "b" * 100_000, "\x00\r\n"],
    "X-CloudTasks-TaskRetryCount": ["-1", "9" * 1000, "\r\n"],
}


@pytest.mark.parametrize(
    ("header", "value"),
    [(h, v) for h, values in HOSTILE_HEADERS.items() for v in values],
    ids=lambda v: repr(v)[:40],
)
def test_hostile_headers_of_a_valid_delivery_are_neutralised(
    cloud: Any, issuer: TokenIssuer, tmp_path: Path, header: str, value: str
) -> None:
    """The task runs once; the worker id recorded from the task name is [A-Za-z0-9_-]{0,100};
    nothing of the header comes back in the response."""
    log = tmp_path / "ran.txt"
    execution = stored(cloud, str(log))
    meta = {f"HTTP_{header.upper().replace('-', '_')}": value}
    response = deliver(
        issuer, urlencode({"execution_id": execution.id, "backend": "cloud"}), **meta
    )
    assert response.status_code == 200, response.content
    assert log.read_text() == "ran\n"
    (worker,) = cloud.executions.get(execution.id).worker_ids
    assert re.fullmatch(r"cloud-tasks:[A-Za-z0-9_-]{1,100}", worker), worker
    assert response.json() == {"outcome": "succeeded", "reason": ""}
    assert "X-Injected" not in response.headers
    assert "Set-Cookie" not in response.headers


ABSURD_TIMES = [
    "0001-01-01T00:00:00+14:00",  # UTC would be in year 0
    "9999-12-31T23:59:59-14:00",  # UTC would be in year 10000
    "0001-01-01T00:00:00+00:00",  # in range, but the schedule's zone is not
    "1969-12-31T23:00:00Z",
    "2020-01-01T00:00:00+00:00",  # a slot, long before the schedule existed
    "2024-02-30T00:00:00Z",
    "2024-01-01T00:00:00",  # no zone
    "2024-01-01T00:00:00+24:00",
    "2024-01-01 00:00:00Z\r\nX-Injected: 1",
    "+002024-01-01T00:00:00Z",
    "nan",
    "x" * 10_000,
    "",
]


def test_absurd_schedule_times_are_refused(
    cloud: Any, issuer: TokenIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .conftest import forbid_dispatch

    forbid_dispatch(cloud, monkeypatch)
    for name, zone in [("hourly", "UTC"), ("hourly-ny", "America/New_York")]:
        cloud.schedules.create(
            ScheduledTask(
                name=name,
                task_path="tests.tasks.noop",
                schedule="0 * * * *",
                time_zone=zone,
                backend="cloud",
            )
        )
    before = snapshot(cloud)
    wrong = []
    for name in ("hourly", "hourly-ny"):
        for value in ABSURD_TIMES:
            response = deliver(
                issuer,
                urlencode({"task_id": name, "backend": "cloud"}),
                endpoint="schedule",
                HTTP_X_CLOUDSCHEDULER_JOBNAME=name,
                HTTP_X_CLOUDSCHEDULER_SCHEDULETIME=value,
            )
            if response.status_code != 400:
                wrong.append((name, value[:40], response.status_code))
    assert wrong == []
    assert snapshot(cloud) == before


def test_reserved_or_malformed_schedule_names_are_refused(cloud: Any, issuer: TokenIssuer) -> None:
    slot = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    wrong = []
    with firestore_forbidden():
        for name in ["__hourly__", "hourly\n", "../hourly", "hourly/..", "x" * 501, ""]:
            response = deliver(
                issuer,
                urlencode({"task_id": name, "backend": "cloud"}),
                endpoint="schedule",
                HTTP_X_CLOUDSCHEDULER_JOBNAME="hourly",
                HTTP_X_CLOUDSCHEDULER_SCHEDULETIME=slot.isoformat(),
            )
            if response.status_code != 400:
                wrong.append((name, response.status_code))
    assert wrong == []


def test_the_body_backend_must_be_one_the_token_opens(
    callers: Callers, issuer: TokenIssuer, tmp_path: Path
) -> None:
    """A valid token names backends by the body's 'backend' field: not a local one, not
    one of another caller, not an unknown one; always before any read."""
    log = tmp_path / "ran.txt"
    execution = stored(callers.a, str(log))
    wrong = []
    with firestore_forbidden():
        for alias in ("default", "jobs", "once", "cloud_b", "nope", "Cloud"):
            body = urlencode({"execution_id": execution.id, "backend": alias})
            response = deliver(issuer, body)
            if response.status_code != 403:
                wrong.append((alias, response.status_code))
    assert wrong == []
    assert not log.exists()
