"""The deployment guide's commands, checked where something can answer them.

* Every ``gcloud`` command of its console blocks, and every command the library prints
  for a user to run (``firestore_indexes --gcloud``, the E008 hints), is accepted by
  the installed Google Cloud CLI: the command exists, each flag is one of its flags,
  each enumerated value is allowed (``tests/gcloud_cli.py``; offline, through --help).
* Its ``manage.py`` commands run: ``firestore_indexes`` (both forms), and
  ``check --deploy`` reporting the missing queue and job against the Google Cloud
  emulator.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from django_tasks_fs.emulators.gcloud.server import GoogleCloudEmulator
from tests import gcloud_cli
from tests.factories import LOCATION, REPO_ROOT
from tests.markers import on_ci

GUIDE = REPO_ROOT / "docs" / "howto" / "deploy-google-cloud.md"
GUIDE_COMMANDS = gcloud_cli.console_commands(GUIDE.read_text())
MANAGE = re.compile(r"^python manage\.py (\S+)(.*)$", re.M)


def test_the_guide_has_the_commands_of_every_step() -> None:
    groups = {" ".join(gcloud_cli.command_path(c)[:2]) for c in GUIDE_COMMANDS}
    assert {
        "services enable",
        "firestore databases",
        "firestore fields",
        "iam service-accounts",
        "projects add-iam-policy-binding",
        "tasks queues",
        "run jobs",
        "run deploy",
        "scheduler jobs",
        "beta run",
        "beta iap",
    } <= groups
    # The manage.py lines of its console blocks: the tests below run each of them.
    assert sorted(MANAGE.findall(GUIDE.read_text())) == [
        ("check", " --deploy"),
        ("firestore_indexes", " --gcloud > firestore-indexes.sh"),
        ("firestore_indexes", " > firestore.indexes.json"),
        ("tasks_resources", " apply"),
        ("tasks_resources", " plan"),
    ]


@pytest.fixture(scope="module")
def helps(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, ...], gcloud_cli.Help]:
    """The --help of every guide command, read once, in parallel."""
    if shutil.which("gcloud") is None:
        return {}  # the gcloud_cli marker skips (or fails on CI) each test
    return gcloud_cli.read_helps(
        [gcloud_cli.command_path(c) for c in GUIDE_COMMANDS], tmp_path_factory.mktemp("gcloud")
    )


def check(command: str, found: gcloud_cli.Help) -> None:
    path = gcloud_cli.command_path(command)
    if found.returncode != 0 and path[0] in {"alpha", "beta"} and "component" in found.text:
        reason = (
            f"gcloud's {path[0]} component is not installed: gcloud components install {path[0]}"
        )
        if on_ci():
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    assert gcloud_cli.problems(command, found) == []


@pytest.mark.gcloud_cli
@pytest.mark.parametrize("command", GUIDE_COMMANDS)
def test_gcloud_accepts_the_guide_command(
    command: str, helps: dict[tuple[str, ...], gcloud_cli.Help]
) -> None:
    check(command, helps[gcloud_cli.command_path(command)])


@pytest.mark.gcloud_cli
def test_the_checker_catches_what_gcloud_would_refuse(tmp_path: Path) -> None:
    wrong = [
        "gcloud run jobs creat reports",
        "gcloud run deploy app --iap",
        "gcloud beta iap web add-iam-policy-binding --resource-type=cloudrun",
    ]
    found = gcloud_cli.read_helps([gcloud_cli.command_path(c) for c in wrong], tmp_path)
    creat, iap, resource_type = (
        gcloud_cli.problems(c, found[gcloud_cli.command_path(c)]) for c in wrong
    )
    assert creat[0].startswith(
        "gcloud rejects the command: ERROR: (gcloud.run.jobs) Invalid choice: 'creat'."
    )
    assert iap == ["gcloud run deploy has no flag --iap"]  # GA has no --iap (beta has)
    assert resource_type == [
        "--resource-type=cloudrun: gcloud beta iap web add-iam-policy-binding accepts one of "
        "app-engine, backend-services, forwarding-rule, cloud-run"
    ]


@pytest.mark.gcloud_cli
def test_gcloud_accepts_the_commands_the_library_prints(
    bare_project: str, gcloud: GoogleCloudEmulator, tmp_path: Path
) -> None:
    """firestore_indexes --gcloud (a composite index, an exemption, the TTL policies), and
    the E008 hints of check --deploy."""
    out = StringIO()
    call_command("firestore_indexes", "--gcloud", "--backend", "cloud", stdout=out)
    printed = out.getvalue().splitlines()
    hints = [
        (m.hint or "").removeprefix("Create it with: ").split(" (this backend")[0]
        for m in checks.run_checks(include_deployment_checks=True, tags=["django_tasks_fs"])
        if m.id == "django_tasks_fs.E008"
    ]
    assert [h.split()[:4] for h in hints] == [
        ["gcloud", "tasks", "queues", "create"],
        ["gcloud", "run", "jobs", "create"],
    ]
    exemption = next(p for p in printed if " --disable-indexes " in p)
    commands = [
        *dict.fromkeys([printed[0], exemption, *(p for p in printed if " ttls " in p)]),
        *hints,
    ]
    found = gcloud_cli.read_helps([gcloud_cli.command_path(c) for c in commands], tmp_path)
    assert {c: gcloud_cli.problems(c, found[gcloud_cli.command_path(c)]) for c in commands} == {
        c: [] for c in commands
    }


def test_firestore_indexes_as_the_guide_runs_it(bare_project: str) -> None:
    out = StringIO()
    call_command("firestore_indexes", stdout=out)
    document = json.loads(out.getvalue())
    groups = {i["collectionGroup"] for i in document["indexes"]}
    assert groups == {
        f"{prefix}{collection}"
        for prefix in ("t_", "c_", "j_", "r_", "o_")
        for collection in ("executions", "groups")
    }
    out = StringIO()
    call_command("firestore_indexes", "--gcloud", stdout=out)
    lines = out.getvalue().splitlines()
    assert all(line.startswith("gcloud firestore ") for line in lines)
    assert f"--project={bare_project}" in lines[0]


def test_check_deploy_reports_the_missing_queue_and_job(bare_project: str) -> None:
    """The emulator settings are refused too: that is what the check is for."""
    err = StringIO()
    with pytest.raises(SystemCheckError) as failure:
        call_command("check", "--deploy", "--tag", "django_tasks_fs", stderr=err)
    report = str(failure.value)
    assert (
        f"TASKS['cloud']: (django_tasks_fs.E008) The Cloud Tasks queue 'default' needed by "
        f"backend 'cloud' does not exist (projects/{bare_project}/locations/{LOCATION}/queues/default)."
    ) in report
    assert (
        f"TASKS['cloudjobs']: (django_tasks_fs.E008) The Cloud Run job 'e2e-job' needed by "
        f"backend 'cloudjobs' does not exist (projects/{bare_project}/locations/{LOCATION}/jobs/e2e-job)."
    ) in report
    for check_id in ("E009", "E011", "E012", "E013"):
        assert f"(django_tasks_fs.{check_id})" in report


def test_tasks_resources_as_the_guide_runs_it(cloud_project: str, settings: Any) -> None:
    """Step 4 on the emulator: the queue and the job exist (created as the gcloud
    commands would), TASKS declares settings; plan, apply, and a plan that finds nothing."""
    declared = {"*": {"retry_config": {"max_attempts": 4, "min_backoff": 5, "max_backoff": 300}}}
    tasks = copy.deepcopy(settings.TASKS)
    tasks["cloud"]["OPTIONS"]["queue_settings"] = declared
    tasks["cloudjobs"]["OPTIONS"]["job_settings"] = {"*": {"timeout": 3600}}
    settings.TASKS = tasks
    runs = {}
    for action in ("plan", "apply", "plan"):
        out = StringIO()
        call_command("tasks_resources", action, stdout=out)
        runs.setdefault(action, []).append(out.getvalue())
    first_plan, second_plan = runs["plan"]
    assert "retry_config.max_attempts: 3 -> 4" in first_plan
    assert "template.template.timeout: 600s -> 3600s" in first_plan
    assert "Apply complete" in runs["apply"][0]
    assert "No changes: the live queues and jobs match TASKS." in second_plan
