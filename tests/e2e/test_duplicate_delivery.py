"""The same execution delivered 20 times at once, over real HTTP: the body runs once."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from django.tasks import TaskResultStatus, task_backends

from django_tasks_fs.store import DispatchState, TaskExecution, new_execution_id
from emulator.gcloud.oidc import TokenIssuer
from tests import tokens
from tests.live_server import LiveServer
from tests.settings import tasks_setting

DELIVERIES = 20


def deliver(url: str, token: str, execution_id: str) -> tuple[int, str]:
    request = urllib.request.Request(
        url,
        data=f"execution_id={execution_id}&backend=cloud".encode(),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/x-www-form-urlencoded",
            "X-CloudTasks-TaskName": execution_id,
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_twenty_concurrent_deliveries_run_the_body_once(
    project_id: str,
    settings: Any,
    http_server: LiveServer,
    certs: tokens.CertsServer,
    issuer: TokenIssuer,
    tmp_path: Path,
) -> None:
    settings.TASKS = tasks_setting(
        project_id, base_url=f"{http_server.url}/tasks/", certs_url=certs.url
    )
    cloud: Any = task_backends["cloud"]
    log = tmp_path / "ran.txt"
    now = cloud.executions.clock.now()
    execution = cloud.executions.create(
        TaskExecution(
            id=new_execution_id(),
            task_path="tests.tasks.record_and_sleep",
            backend="cloud",
            queue_name="default",
            args=[str(log), "body", 1.5],
            enqueued_at=now,
            run_after=now,
            max_attempts=3,
            dispatch_state=DispatchState.DISPATCHED,
        )
    )
    token = tokens.sign(issuer, aud=cloud.audience)
    results: list[tuple[int, str]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(DELIVERIES)

    def one() -> None:
        barrier.wait()
        outcome = deliver(f"{http_server.url}/tasks/execute/", token, execution.id)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=one) for _ in range(DELIVERIES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    statuses = Counter(status for status, _ in results)
    assert len(results) == DELIVERIES
    assert log.read_text().splitlines() == ["start body", "end body"]  # the body ran once
    succeeded = [body for status, body in results if status == 200 and '"succeeded"' in body]
    assert len(succeeded) == 1
    # Every other delivery met the live lease and was told to retry later (not a 2xx),
    # or arrived after the end and found it finished.
    for status, body in results:
        if status == 503:
            assert '"lease_held"' in body
        else:
            assert status == 200, body
    assert statuses[503] >= 1
    final = cloud.executions.get(execution.id)
    assert final.status == TaskResultStatus.SUCCESSFUL
    assert final.attempts == 1
