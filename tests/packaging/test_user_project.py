"""A user's own project, from the installed wheel alone: ``pip install
'django-tasks-fs[emulators]'`` into a fresh venv, ``django-admin startproject`` outside
the checkout with ``DATABASES = {}``, then the documented local loop
(docs/howto/local-development.md): ``manage.py tasks_emulators``, enqueue, the local
worker (with task policies, a unique key and a group), ``tasks_check``, Cloud Tasks
delivering to ``runserver``, a Cloud Run job, the admin and its dashboard behind the
IAP stand-in (docs/howto/admin.md), the pytest fixtures, and a clean stop on SIGTERM."""

from __future__ import annotations

import http.cookiejar
import importlib.metadata
import os
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from textwrap import dedent

import pytest

from django_tasks_fs.emulators.service import free_port
from tests.background import Background, firestore_jvms
from tests.conftest import wait_until
from tests.packaging.conftest import uv

pytestmark = [pytest.mark.slow, pytest.mark.firestore, pytest.mark.gcloud]

#: What a user installs next to the library for the test step.
TEST_TOOLS = ("pytest", "pytest-django")
#: Variables of our own environment a user's shell would not have.
NOT_THE_USERS = (
    "PYTHONPATH",
    "DJANGO_SETTINGS_MODULE",
    "FIRESTORE_EMULATOR_HOST",
    "DJANGO_TASKS_FS_EMULATOR_HOST",
    "VIRTUAL_ENV",
    "PYTEST_ADDOPTS",
    "PYTEST_CURRENT_TEST",
)

TASKS_MODULE = """
from datetime import timedelta

from django.tasks import task


@task
def add(a, b):
    return a + b


@task(max_attempts=2, backoff=timedelta(0))
def fails():
    raise ValueError("boom")


@task
def summarize(group_id, summary):
    return summary
"""

#: Task policies, a unique key and a group (docs/howto/task-policies.md,
#: unique-enqueue.md, groups.md), enqueued for the local worker.
FEATURES = """
from django_tasks_fs import enqueue_group
from shop.tasks import add, fails, summarize
group = enqueue_group(add, [((1, 2), {}), ((3, 4), {})], on_complete=summarize)
first = add.using(unique_key="nightly").enqueue(5, 5)
second = add.using(unique_key="nightly").enqueue(6, 6)
print("IDS", group.id, first.id == second.id, fails.enqueue().id)
"""
FEATURES_DONE = """
from django_tasks_fs import get_group
from shop.tasks import fails, summarize
group = get_group({group!r})
callback = summarize.get_result(group.callback_ids[0])
failed = fails.get_result({failing!r})
print("DONE", group.status, callback.status, callback.return_value, failed.status, failed.attempts)
"""

USER_TEST = """
from shop.tasks import add


def test_add_runs(task_runner):
    result = add.enqueue(20, 22)
    (done,) = task_runner.run_all()
    assert done.id == result.id
    assert done.status == "SUCCESSFUL"
    assert done.return_value == 42
"""

#: Enqueue on one backend, then poll (with a deadline) until the result is final.
ENQUEUE_AND_WAIT = """
import time
from shop.tasks import add
result = add.using(backend={backend!r}, queue_name={queue!r}).enqueue(2, 3)
deadline = time.monotonic() + 60
while not result.is_finished and time.monotonic() < deadline:
    time.sleep(0.2)
    result.refresh()
print("RESULT", result.status, result.return_value, result.worker_ids)
"""


def settings_addition(*, http_port: int, certs_url: str, iap_port: int) -> str:
    """Appended to the generated settings.py: what the how-to tells a user to add."""
    google = {
        "project_id": "local-project",
        "location": "us-central1",
        "base_url": f"http://127.0.0.1:{http_port}/tasks/",
        "oidc_service_account": "tasks@local-project.iam.gserviceaccount.com",
        "oidc_certs_url": certs_url,
    }
    return dedent(f"""

        DATABASES = {{}}
        INSTALLED_APPS += ["django_tasks_fs", "shop"]
        # The admin with no SQL database, behind IAP (docs/howto/admin.md).
        INSTALLED_APPS[INSTALLED_APPS.index("django.contrib.admin")] = (
            "django_tasks_fs.admin_site.FirestoreAdminConfig"
        )
        MIDDLEWARE[MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware")] = (
            "django_tasks_fs.iap.IAPAuthenticationMiddleware"
        )
        SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
        TASKS_FS_IAP = {{
            "AUDIENCE": "/projects/0/apps/local-dev",
            "CERTS_URL": "http://127.0.0.1:{iap_port}/_iap/public_key",
            "GRANTS": {{"you@example.com": ["all"]}},
        }}
        TASKS = {{
            "default": {{
                "BACKEND": "django_tasks_fs.backends.ProcessBackend",
                "OPTIONS": {{"project_id": "local-project"}},
            }},
            "cloud": {{
                "BACKEND": "django_tasks_fs.backends.CloudTasksBackend",
                "OPTIONS": {google!r},
            }},
            "jobs": {{
                "BACKEND": "django_tasks_fs.backends.CloudRunJobsBackend",
                "QUEUES": ["reports"],
                "OPTIONS": {google!r},
            }},
        }}
        """)


def constraints(path: Path) -> Path:
    """Pin what pip resolves to the versions of this environment (the uv cache has them)."""
    pins = {
        dist.metadata["Name"].lower(): dist.version
        for dist in importlib.metadata.distributions()
        if dist.metadata["Name"] and dist.metadata["Name"].lower() != "django-tasks-fs"
    }
    path.write_text("".join(f"{name}=={version}\n" for name, version in sorted(pins.items())))
    return path


@pytest.fixture(scope="module")
def venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel, its emulators extra and the test tools: a user's."""
    root = tmp_path_factory.mktemp("user-venv")
    (wheel,) = dist.glob("*.whl")
    venv = root / "venv"
    subprocess.run([*uv(), "venv", "--python", sys.executable, str(venv)], check=True)
    subprocess.run(
        [
            *uv(),
            "pip",
            "install",
            "--python",
            str(venv / "bin" / "python"),
            "-c",
            str(constraints(root / "constraints.txt")),
            f"django-tasks-fs[emulators,iap] @ {wheel.as_uri()}",
            *TEST_TOOLS,
        ],
        check=True,
        capture_output=True,
    )
    return venv


@pytest.fixture
def user_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in NOT_THE_USERS}


@pytest.fixture
def project(venv: Path, tmp_path: Path, user_env: dict[str, str]) -> Path:
    """``django-admin startproject mysite`` plus an app ``shop`` with a task, far from
    the checkout, configured as the how-to says; the ports are free ones."""
    root = tmp_path / "mysite"
    root.mkdir()
    bin_dir = venv / "bin"
    subprocess.run(
        [str(bin_dir / "django-admin"), "startproject", "mysite", str(root)],
        check=True,
        env=user_env,
    )
    subprocess.run(
        [str(bin_dir / "python"), "manage.py", "startapp", "shop"],
        check=True,
        cwd=root,
        env=user_env,
    )
    (root / "shop" / "tasks.py").write_text(TASKS_MODULE)
    return root


def run(venv: Path, cwd: Path, env: dict[str, str], *args: str) -> str:
    """``python manage.py ARGS`` in the user's venv; its output (it must succeed)."""
    done = subprocess.run(
        [str(venv / "bin" / "python"), "manage.py", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


class AdminBrowser:
    """Cookies and CSRF as a browser keeps them, over real HTTP."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def status(self, path: str) -> int:
        try:
            with self.opener.open(self.base + path, timeout=30) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=30) as response:
            return str(response.read().decode())

    def post(self, path: str) -> None:
        """GET the confirmation page, then POST it with its CSRF token."""
        page = self.get(path)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token, page
        data = urllib.parse.urlencode({"csrfmiddlewaretoken": token.group(1)}).encode()
        request = urllib.request.Request(self.base + path, data=data, method="POST")
        request.add_header("Referer", self.base + path)
        with self.opener.open(request, timeout=30) as response:
            assert response.status == 200  # the redirect, followed


def accepts_connections(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_a_new_project_runs_everything_locally_from_the_wheel(
    venv: Path, project: Path, user_env: dict[str, str], tmp_path: Path
) -> None:
    firestore_port, gcloud_port, certs_port, http_port, iap_port = (free_port() for _ in range(5))
    certs_url = f"http://127.0.0.1:{certs_port}/oauth2/v1/certs"
    settings = project / "mysite" / "settings.py"
    settings.write_text(
        settings.read_text()
        + settings_addition(http_port=http_port, certs_url=certs_url, iap_port=iap_port)
    )
    urls = project / "mysite" / "urls.py"
    urls.write_text(
        urls.read_text()
        .replace("from django.urls import path", "from django.urls import include, path")
        .replace(
            "urlpatterns = [",
            'urlpatterns = [\n    path("tasks/", include("django_tasks_fs.urls")),',
        )
    )
    python = str(venv / "bin" / "python")
    where = run(
        venv,
        project,
        user_env,
        "shell",
        "-c",
        "import django_tasks_fs; print(django_tasks_fs.__file__)",
    )
    assert where.splitlines()[-1].startswith(str(venv)), where  # the wheel, not the checkout

    emulators = Background(
        [
            python,
            "manage.py",
            "tasks_emulators",
            *("--firestore-port", str(firestore_port)),
            *("--gcloud-port", str(gcloud_port)),
            *("--gcloud-http-port", str(certs_port)),
        ],
        tmp_path / "emulators.txt",
        cwd=project,
        env=user_env,
    )
    server: Background | None = None
    stand_in: Background | None = None
    try:
        emulators.wait_for("Emulators running")
        assert "Warning" not in emulators.output, emulators.output
        assert "Cloud Tasks queue projects/local-project/locations/us-central1/queues/default" in (
            emulators.output
        )
        assert "Cloud Run job projects/local-project/locations/us-central1/jobs/reports" in (
            emulators.output
        )
        exported = dict(re.findall(r"^  export (\w+)=(\S+)$", emulators.output, re.M))
        assert exported == {
            "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{firestore_port}",
            "DJANGO_TASKS_FS_EMULATOR_HOST": f"127.0.0.1:{gcloud_port}",
        }
        env = {**user_env, **exported}  # the user's shell after the exports

        # ProcessBackend: enqueue, then the local worker drains it.
        enqueued = run(
            venv,
            project,
            env,
            "shell",
            "-c",
            "from shop.tasks import add; print(add.enqueue(2, 3).id)",
        ).splitlines()[-1]
        run(venv, project, env, "run_tasks", "--burst")
        check = f"from shop.tasks import add; r = add.get_result({enqueued!r}); print(r.status, r.return_value)"
        assert run(venv, project, env, "shell", "-c", check).splitlines()[-1] == "SUCCESSFUL 5"

        # Task policies, unique keys and groups, from the wheel, run by the local worker.
        ids = run(venv, project, env, "shell", "-c", FEATURES).splitlines()[-1].split()
        assert ids[0] == "IDS", ids
        assert ids[2] == "True", ids  # the key was held: the second call got the first's
        run(venv, project, env, "run_tasks", "--burst")
        done = FEATURES_DONE.format(group=ids[1], failing=ids[3])
        assert run(venv, project, env, "shell", "-c", done).splitlines()[-1] == (
            "DONE COMPLETE SUCCESSFUL {'size': 2, 'succeeded': 2, 'failed': 0} FAILED 2"
        )
        # The monitoring command (docs/howto/operations.md): nothing waits.
        checked = run(venv, project, env, "tasks_check", "--max-backlog", "10").splitlines()
        assert checked, checked
        assert all(line.startswith("tasks_check: OK ") for line in checked), checked

        # Cloud Tasks: the emulated queue POSTs to execute/ on runserver, with a token.
        server = Background(
            [python, "manage.py", "runserver", f"127.0.0.1:{http_port}", "--noreload"],
            tmp_path / "runserver.txt",
            cwd=project,
            env=env,
        )
        wait_until(lambda: accepts_connections(http_port), timeout=60)
        cloud = run(
            venv,
            project,
            env,
            "shell",
            "-c",
            ENQUEUE_AND_WAIT.format(backend="cloud", queue="default"),
        )
        assert re.search(r"^RESULT SUCCESSFUL 5 \['cloud-tasks:[\w-]+'\]$", cloud, re.M), (
            cloud + server.output
        )
        assert 'POST /tasks/execute/ HTTP/1.1" 200' in server.output

        # Cloud Run Jobs: the created job runs `python manage.py execute_task <id>` here.
        job = run(
            venv,
            project,
            env,
            "shell",
            "-c",
            ENQUEUE_AND_WAIT.format(backend="jobs", queue="reports"),
        )
        assert "RESULT SUCCESSFUL 5" in job, job

        # The admin, with no SQL database, through the IAP stand-in (as behind IAP).
        assert "no issues" in run(venv, project, env, "check")
        stand_in = Background(
            [python, "manage.py", "tasks_iap_proxy", "--upstream", f"127.0.0.1:{http_port}"],
            tmp_path / "iap.txt",
            cwd=project,
            env=env,
        )
        stand_in.wait_for("Local IAP stand-in running", timeout=60)
        waiting = run(
            venv,
            project,
            env,
            "shell",
            "-c",
            "from shop.tasks import add; print(add.enqueue(1, 1).id)",
        ).splitlines()[-1]
        admin = AdminBrowser(f"http://127.0.0.1:{iap_port}")
        assert "you@example.com" in admin.get("/admin/")
        assert enqueued in admin.get("/admin/django_tasks_fs/taskexecution/")
        assert "shop.tasks.add" in admin.get("/admin/django_tasks_fs/taskexecution/dashboard/")
        admin.post(f"/admin/django_tasks_fs/taskexecution/default/{waiting}/cancel/")
        status = f"from shop.tasks import add; print(add.get_result({waiting!r}).status)"
        assert run(venv, project, env, "shell", "-c", status).splitlines()[-1] == "FAILED"
        assert AdminBrowser(f"http://127.0.0.1:{http_port}").status("/admin/") == 401  # past IAP

        # The user's own tests, with the plugin's fixtures (pytest-django, settings in ini).
        (project / "pytest.ini").write_text("[pytest]\nDJANGO_SETTINGS_MODULE = mysite.settings\n")
        (project / "test_shop.py").write_text(USER_TEST)
        tests = subprocess.run(
            [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_shop.py"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert tests.returncode == 0, tests.stdout + tests.stderr
        assert "1 passed" in tests.stdout
        # The same test on the in-memory store: no emulator, and no Java to start one.
        no_java = {**user_env, "PATH": str(venv / "bin"), "JAVA_HOME": str(tmp_path / "none")}
        in_memory = subprocess.run(
            [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o",
             "tasks_fs_store=memory", "test_shop.py"],
            cwd=project,
            env=no_java,
            capture_output=True,
            text=True,
            timeout=120,
        )  # fmt: skip
        assert in_memory.returncode == 0, in_memory.stdout + in_memory.stderr
        assert "1 passed" in in_memory.stdout

        # Ctrl-C / SIGTERM stops everything: the command exits at once, no JVM is left.
        assert emulators.terminate(timeout=30) == 0
        assert firestore_jvms(firestore_port) == []
    finally:
        for process in (server, stand_in):
            if process is not None:
                process.kill_leftovers()
        emulators.kill_leftovers(firestore_port)
