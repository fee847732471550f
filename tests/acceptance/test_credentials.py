"""No FIRESTORE_EMULATOR_HOST and no Google credentials: a clear error saying how to
fix it (emulator variable, or gcloud auth / a service account), at first use, from the
worker and from ``manage.py check``; never a bare DefaultCredentialsError nor a worker
retrying forever."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, subprocess_env

ENQUEUE = "import django; django.setup(); from tests import tasks; tasks.noop.enqueue()"
EMULATOR_HINT = "set FIRESTORE_EMULATOR_HOST=HOST:PORT"
GCLOUD_HINT = "run 'gcloud auth application-default login'"


def no_credentials(tmp_path: Path, *, key_file: bool) -> dict[str, str]:
    """No emulator, no gcloud configuration, no ADC file; GOOGLE_APPLICATION_CREDENTIALS
    pointing nowhere (``key_file``) or unset, and no metadata server to ask."""
    home = tmp_path / "home"
    gcloud = tmp_path / "gcloud"
    home.mkdir()
    gcloud.mkdir()
    env = subprocess_env("no-credentials", HOME=str(home), CLOUDSDK_CONFIG=str(gcloud))
    env.pop("FIRESTORE_EMULATOR_HOST", None)
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    if key_file:
        env["GOOGLE_APPLICATION_CREDENTIALS"] = str(tmp_path / "nowhere" / "key.json")
    else:
        env["NO_GCE_CHECK"] = "true"  # off Google Cloud: don't wait for a metadata server
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("key_file", [True, False], ids=["key file missing", "no credentials"])
def test_enqueue_without_credentials_says_how_to_fix_it(tmp_path: Path, key_file: bool) -> None:
    done = run(["-c", ENQUEUE], no_credentials(tmp_path, key_file=key_file))
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "django_tasks_fs.exceptions.StoreNotConfigured: Cannot use Firestore at "
        "firestore.googleapis.com, project 'no-credentials', database '(default)': "
        "no Google credentials were found ("
    )
    assert EMULATOR_HINT in last
    assert GCLOUD_HINT in last
    assert "GOOGLE_APPLICATION_CREDENTIALS to a service account key file" in last
    if key_file:
        assert str(tmp_path / "nowhere" / "key.json") in last
    assert "During handling of the above exception" not in done.stderr


@pytest.mark.parametrize("key_file", [True, False], ids=["key file missing", "no credentials"])
def test_the_worker_stops_at_once_with_the_hint(tmp_path: Path, key_file: bool) -> None:
    env = no_credentials(tmp_path, key_file=key_file)
    done = run(["-m", "django", "run_tasks", "--skip-checks"], env)
    assert done.returncode == 1, done.stderr
    assert "CommandError: Cannot use Firestore at firestore.googleapis.com" in done.stderr
    assert EMULATOR_HINT in done.stderr
    assert GCLOUD_HINT in done.stderr
    assert "Traceback" not in done.stderr


def test_the_system_check_reports_a_key_file_that_is_not_there(tmp_path: Path) -> None:
    env = no_credentials(tmp_path, key_file=True)
    done = run(["-m", "django", "check"], env)
    assert done.returncode == 1
    key = str(tmp_path / "nowhere" / "key.json")
    assert (
        f"django_tasks_fs.E007) GOOGLE_APPLICATION_CREDENTIALS is {key!r}, which is not a file"
        in (done.stderr)
    )
    assert "HINT: Point GOOGLE_APPLICATION_CREDENTIALS at a service account key file" in done.stderr
    # With the emulator, the variable does not matter.
    env["FIRESTORE_EMULATOR_HOST"] = "127.0.0.1:9"
    assert run(["-m", "django", "check"], env).returncode == 0
