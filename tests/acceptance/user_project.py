"""A Django project of a user's own, outside this repository, that runs ``run_tasks``.

Written into a temporary folder: ``manage.py``, a launcher script without an
``if __name__ == "__main__":`` guard, and the package ``mysite`` (settings and tasks).
Only its launching script puts the project on ``sys.path`` (as ``manage.py`` does with
its own folder): it is not on ``PYTHONPATH`` and the worker may run from anywhere.

The settings module can be told to refuse to load in any process but the first one
that loaded it, i.e. in every child of the worker: ``USER_PROJECT_BREAK_CHILDREN`` is
``always``, or a file (it refuses while the file exists). It then appends one line to
``USER_PROJECT_STARTS`` each time a child tries to load it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django_tasks_fs.store import ExecutionStore, StoreSettings, TaskExecution
from tests.factories import write_execution

#: Collection prefix of each backend of the project (the alias is the key).
PREFIXES = {"default": "u_", "jobs": "uj_"}
#: What ``mysite.tasks.fails`` raises.
FAILURE = "ValueError: the sample failure"
#: What a child of the worker raises when USER_PROJECT_BREAK_CHILDREN says so.
REFUSAL = "RuntimeError: mysite.settings refuses to load in a child process"

MANAGE = """\
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"""

# No main guard: a multiprocessing "spawn" child re-runs this whole file.
LAUNCHER = """\
import os
import sys

import django
from django.core.management import call_command

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
django.setup()
call_command("run_tasks", *sys.argv[1:])
"""

SETTINGS = """\
import os
import sys

_break = os.environ.get("USER_PROJECT_BREAK_CHILDREN")
if _break == "always" or (_break and os.path.exists(_break)):
    first = os.environ.setdefault("USER_PROJECT_FIRST_PID", str(os.getpid()))
    if first != str(os.getpid()):
        with open(os.environ["USER_PROJECT_STARTS"], "a") as starts:
            starts.write(f"{os.getpid()} {sys.argv}\\n")
        raise RuntimeError("mysite.settings refuses to load in a child process")

SECRET_KEY = "user-project-not-secret"
DEBUG = os.environ.get("USER_PROJECT_DEBUG") == "1"
USE_TZ = True
INSTALLED_APPS = ["django_tasks_fs"]
_options = {
    "project_id": os.environ["USER_PROJECT_FIRESTORE"],
    "max_attempts": 2,
    "retry_backoff_seconds": 0.05,
    "retry_backoff_max_seconds": 0.2,
    "poll_interval_seconds": 0.1,
    "max_workers": 2,
    "heartbeat_interval_seconds": 0.3,
    "heartbeat_timeout_seconds": 5.0,
}
TASKS = {
    "default": {
        "BACKEND": "django_tasks_fs.backends.ProcessBackend",
        "OPTIONS": {**_options, "collection_prefix": "u_"},
    },
    "jobs": {
        "BACKEND": "django_tasks_fs.backends.ProcessBackend",
        "OPTIONS": {**_options, "mode": "cloud_run_jobs", "collection_prefix": "uj_"},
    },
}
"""

TASKS = """\
import os

from django.tasks import task


@task
def succeeds():
    return "done"


@task
def fails():
    raise ValueError("the sample failure")


@task
def python_path():
    return os.environ.get("PYTHONPATH")
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserProject:
    root: Path  #: holds manage.py, run_worker.py (no main guard) and mysite/
    firestore_project: str
    starts: Path  #: one line per child process that loaded (or refused) the settings

    def store(self, backend: str) -> ExecutionStore:
        return ExecutionStore(
            StoreSettings(project=self.firestore_project, collection_prefix=PREFIXES[backend])
        )

    def enqueue(self, backend: str, task: str) -> TaskExecution:
        """Write a due execution of ``mysite.tasks.<task>``, as ``task.enqueue()`` would."""
        return write_execution(
            self.store(backend), task_path=f"mysite.tasks.{task}", backend=backend, max_attempts=2
        )

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        # A user's shell: no settings module of ours; only what the test run itself needs
        # on PYTHONPATH (e.g. the shifted-clock run's sitecustomize), never the project.
        env.pop("DJANGO_SETTINGS_MODULE", None)
        env.update(USER_PROJECT_FIRESTORE=self.firestore_project, **extra)
        return env

    def start(
        self, script: str, *args: str, cwd: Path, output: IO[str], **env: str
    ) -> subprocess.Popen[str]:
        """``python <root>/<script> ARGS`` from ``cwd``, all output to ``output``."""
        return subprocess.Popen(
            [sys.executable, str(self.root / script), *args],
            cwd=cwd,
            env=self.env(**env),
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # killpg() reaches the worker and its children
        )


def write_user_project(folder: Path, firestore_project: str) -> UserProject:
    root = folder / "site"
    (root / "mysite").mkdir(parents=True)
    (root / "manage.py").write_text(MANAGE)
    (root / "run_worker.py").write_text(LAUNCHER)
    (root / "mysite" / "__init__.py").write_text("")
    (root / "mysite" / "settings.py").write_text(SETTINGS)
    (root / "mysite" / "tasks.py").write_text(TASKS)
    return UserProject(root=root, firestore_project=firestore_project, starts=folder / "starts")


def stop(process: subprocess.Popen[Any]) -> None:
    """Kill a worker still running at the end of a test (and its children)."""
    import signal

    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
