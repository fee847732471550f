"""What ``tasks_emulators`` reads from TASKS: the queues and jobs to create, and advice
on OPTIONS that would miss the emulators (no I/O: only the plan)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django_tasks_fs.backends import CloudRunJobsBackend, CloudTasksBackend, ProcessBackend
from django_tasks_fs.emulators.provisioning import MAX_BACKOFF, MIN_BACKOFF, plan, queue_defaults

CERTS = "http://127.0.0.1:8124/oauth2/v1/certs"
GRPC = "127.0.0.1:8123"
GOOD = {
    "project_id": "shop",
    "location": "europe-west1",
    "base_url": "http://127.0.0.1:8000/tasks/",  # tests/urls.py mounts the endpoints there
    "oidc_service_account": "tasks@shop.iam.gserviceaccount.com",
    "oidc_certs_url": CERTS,
}


def backends(**configs: tuple[type, dict[str, Any]]) -> dict[str, Any]:
    return {alias: cls(alias, params) for alias, (cls, params) in configs.items()}


def test_queues_and_jobs_come_from_queues_and_aliases() -> None:
    found = plan(
        backends(
            local=(ProcessBackend, {"OPTIONS": {"project_id": "shop"}}),
            cloud=(
                CloudTasksBackend,
                {
                    "QUEUES": ["default", "emails"],
                    "OPTIONS": {**GOOD, "queue_aliases": {"emails": "mail-queue"}},
                },
            ),
            again=(CloudTasksBackend, {"OPTIONS": GOOD}),  # shares "default"
            jobs=(CloudRunJobsBackend, {"QUEUES": ["reports"], "OPTIONS": GOOD}),
        ),
        certs_url=CERTS,
        grpc_host=GRPC,
    )
    where = "projects/shop/locations/europe-west1"
    assert [(r.path, r.aliases) for r in found.resources] == [
        (f"{where}/queues/default", ("cloud", "again")),
        (f"{where}/queues/mail-queue", ("cloud",)),
        (f"{where}/jobs/reports", ("jobs",)),
    ]
    assert found.commands[f"{where}/jobs/reports"] == (
        "python",
        "manage.py",
        "execute_task",
        "<execution id>",
    )
    assert found.advice == ()


def test_options_that_would_miss_the_emulators_are_pointed_out() -> None:
    found = plan(
        backends(
            cloud=(
                CloudTasksBackend,
                {
                    "OPTIONS": {
                        **GOOD,
                        "base_url": "https://shop.example.com/api/tasks/",
                        "oidc_certs_url": "https://www.googleapis.com/oauth2/v1/certs",
                        "emulator_host": "127.0.0.1:9999",
                    }
                },
            )
        ),
        certs_url=CERTS,
        grpc_host=GRPC,
    )
    where = "TASKS['cloud']['OPTIONS']"
    assert list(found.advice) == [
        f"{where}['oidc_certs_url'] is 'https://www.googleapis.com/oauth2/v1/certs': the app "
        f"would refuse the emulator's tokens (403). Set it to {CERTS!r} locally.",
        f"{where}['emulator_host'] is '127.0.0.1:9999', not this emulator ('127.0.0.1:8123'): "
        "the backend would send elsewhere. Remove it and export "
        "DJANGO_TASKS_FS_EMULATOR_HOST=127.0.0.1:8123, or set it to '127.0.0.1:8123'.",
        f"{where}['base_url'] is 'https://shop.example.com/api/tasks/': the emulator delivers "
        "tasks and scheduled jobs to that host. Locally, use the address runserver listens on, e.g. "
        "'http://127.0.0.1:8000/tasks/'.",
        f"{where}['base_url'] is 'https://shop.example.com/api/tasks/', but no URL pattern "
        "matches its execute/ path '/api/tasks/execute/'. Mount the endpoints with "
        'path("tasks/", include("django_tasks_fs.urls")) in your ROOT_URLCONF (base_url '
        "ends with that path).",
    ]


def test_a_misconfigured_backend_gets_nothing_created() -> None:
    found = plan(
        backends(cloud=(CloudTasksBackend, {"OPTIONS": {"project_id": "shop"}})),
        certs_url=CERTS,
        grpc_host=GRPC,
    )
    assert found.resources == ()
    assert found.advice == (
        "TASKS['cloud'] is misconfigured (see 'manage.py check'): nothing was created for it.",
    )


def test_declared_settings_travel_with_the_resources() -> None:
    declared = {"*": {"retry_config": {"max_attempts": 4}}}
    found = plan(
        backends(
            cloud=(CloudTasksBackend, {"OPTIONS": {**GOOD, "queue_settings": declared}}),
            again=(CloudTasksBackend, {"OPTIONS": GOOD}),  # shares "default", declares nothing
        ),
        certs_url=CERTS,
        grpc_host=GRPC,
    )
    (resource,) = found.resources
    assert resource.aliases == ("cloud", "again")
    assert resource.settings == {"retry_config.max_attempts": 4}


def test_local_queue_defaults_give_way_to_declared_backoffs() -> None:
    assert queue_defaults({}, 3) == {
        "retry_config.max_attempts": 3,
        "retry_config.min_backoff": MIN_BACKOFF,
        "retry_config.max_backoff": MAX_BACKOFF,
    }
    # A declared min_backoff of 60 s must not meet the local max_backoff of 10 s.
    declared = {"retry_config.min_backoff": timedelta(seconds=60)}
    assert queue_defaults(declared, 3) == {"retry_config.max_attempts": 3}
