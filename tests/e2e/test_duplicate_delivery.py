"""The same execution delivered 20 times at once, over real HTTP: the body runs once."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

from django.tasks import TaskResultStatus, task_backends

from django_tasks_fs.emulators.gcloud.oidc import TokenIssuer
from django_tasks_fs.store import DispatchState
from tests import tokens
from tests.factories import write_execution
from tests.live_server import LiveServer, deliver
from tests.settings import tasks_setting

DELIVERIES = 20


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
    execution = write_execution(
        cloud.executions,
        task_path="tests.tasks.record_and_sleep",
        backend="cloud",
        args=[str(log), "body", 1.5],
        dispatch_state=DispatchState.DISPATCHED,
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
