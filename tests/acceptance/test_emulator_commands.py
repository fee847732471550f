"""The emulator commands as a user runs them: they start, refuse a busy port, and stop
everything they started (the Firestore emulator's JVM included) on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import pytest

from django_tasks_fs.emulators.service import free_port
from django_tasks_fs.gcp.clients import jobs_client, tasks_client
from tests.background import Background, firestore_jvms
from tests.conftest import REPO_ROOT, subprocess_env, wait_until
from tests.factories import LOCATION

PYTHON = sys.executable


class _Answers200(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def someone_elses_server() -> Iterator[int]:
    """An HTTP server that answers 200 to anything, on a port of its own: what a
    readiness probe that only asks "does the port answer?" mistakes for the emulator."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers200)
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.mark.firestore
def test_the_firestore_launcher_stops_java_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    command = Background(
        [PYTHON, "-m", "django_tasks_fs.emulators.firestore", "--port", str(port)],
        tmp_path / "out.txt",
    )
    try:
        command.wait_for(f"export FIRESTORE_EMULATOR_HOST=127.0.0.1:{port}")
        assert len(firestore_jvms(port)) == 1
        assert command.terminate() == 0
        wait_until(lambda: not firestore_jvms(port), timeout=30)
    finally:
        command.kill_leftovers(port)


@pytest.mark.firestore
def test_the_firestore_launcher_refuses_a_busy_port(
    tmp_path: Path, someone_elses_server: int
) -> None:
    port = someone_elses_server
    command = Background(
        [PYTHON, "-m", "django_tasks_fs.emulators.firestore", "--port", str(port)],
        tmp_path / "out.txt",
    )
    try:
        assert command.process.wait(timeout=60) == 1
        assert "Firestore emulator ready" not in command.output
        assert f"cannot listen on 127.0.0.1:{port}" in command.output
        assert "choose another port with --port" in command.output
        assert firestore_jvms(port) == []
    finally:
        command.kill_leftovers(port)


@pytest.mark.firestore
def test_a_port_taken_after_the_check_is_not_mistaken_for_the_emulator(
    someone_elses_server: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The race: the port was free when checked, then another server took it. Java
    fails to bind; the other server answers HTTP; start() must still refuse."""
    from django_tasks_fs.emulators import firestore

    monkeypatch.setattr(firestore, "ensure_port_free", lambda *a, **k: None)
    emulator = firestore.FirestoreEmulator(port=someone_elses_server, log_path=tmp_path / "l")
    try:
        with pytest.raises(firestore.PortInUse, match=f"127.0.0.1:{someone_elses_server}"):
            emulator.start()
    finally:
        emulator.stop()  # a no-op, unless start() wrongly succeeded
    assert emulator.process is not None
    assert emulator.process.poll() is not None  # its JVM is gone
    assert "java.net.BindException" in emulator.read_log()


@pytest.mark.firestore
def test_a_free_port_taken_before_java_binds_it_is_replaced(
    someone_elses_server: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from django_tasks_fs.emulators import firestore

    offered = iter([someone_elses_server, free_port()])  # the first is taken "meanwhile"
    monkeypatch.setattr(firestore, "free_port", lambda: next(offered))
    with firestore.FirestoreEmulator(log_path=tmp_path / "l") as emulator:
        assert emulator.port != someone_elses_server
        assert emulator.is_running()
        assert len(firestore_jvms(emulator.port)) == 1
    assert firestore_jvms(emulator.port) == []


@pytest.mark.firestore
@pytest.mark.gcloud
def test_python_m_emulators_starts_both_and_stops_both_on_sigterm(tmp_path: Path) -> None:
    ports = [free_port(), free_port(), free_port()]
    command = Background(
        [
            PYTHON,
            "-m",
            "django_tasks_fs.emulators",
            *("--firestore-port", str(ports[0])),
            *("--gcloud-port", str(ports[1])),
            *("--gcloud-http-port", str(ports[2])),
            *("--log-dir", str(tmp_path / "logs")),
        ],
        tmp_path / "out.txt",
    )
    try:
        command.wait_for("Emulators running")
        out = command.output
        assert f"export FIRESTORE_EMULATOR_HOST=127.0.0.1:{ports[0]}" in out
        assert f"export DJANGO_TASKS_FS_EMULATOR_HOST=127.0.0.1:{ports[1]}" in out
        assert f'"oidc_certs_url": "http://127.0.0.1:{ports[2]}/oauth2/v1/certs"' in out
        assert len(firestore_jvms(ports[0])) == 1
        assert command.terminate() == 0
        assert firestore_jvms(ports[0]) == []
        for port in ports:  # every port is free again
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(("127.0.0.1", port))
    finally:
        command.kill_leftovers(ports[0])


@pytest.mark.gcloud
def test_a_busy_gcloud_port_is_refused_before_anything_starts(
    tmp_path: Path, someone_elses_server: int
) -> None:
    firestore_port = free_port()
    command = Background(
        [
            PYTHON,
            "-m",
            "django_tasks_fs.emulators",
            *("--firestore-port", str(firestore_port)),
            *("--gcloud-port", str(free_port())),
            *("--gcloud-http-port", str(someone_elses_server)),
        ],
        tmp_path / "out.txt",
    )
    try:
        assert command.process.wait(timeout=60) == 1
        assert (
            f"The Google Cloud emulator (OIDC certs) cannot listen on "
            f"127.0.0.1:{someone_elses_server}" in command.output
        )
        assert "choose another port with --gcloud-http-port" in command.output
        assert firestore_jvms(firestore_port) == []  # refused before Java started
    finally:
        command.kill_leftovers(firestore_port)


def test_without_cryptography_the_command_says_which_extra_to_install(tmp_path: Path) -> None:
    # None in sys.modules makes "import cryptography" fail, as on an install without it.
    script = (
        "import sys; sys.modules['cryptography'] = None\n"
        "from django_tasks_fs.emulators.__main__ import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    firestore_port = free_port()
    command = Background(
        [
            PYTHON,
            "-c",
            script,
            *("--firestore-port", str(firestore_port)),
            *("--gcloud-port", str(free_port())),
            *("--gcloud-http-port", str(free_port())),
        ],
        tmp_path / "out.txt",
    )
    try:
        assert command.process.wait(timeout=60) == 1
        assert "pip install 'django-tasks-fs[emulators]'" in command.output
        assert "Traceback" not in command.output
        assert firestore_jvms(firestore_port) == []
    finally:
        command.kill_leftovers(firestore_port)


@pytest.mark.firestore
@pytest.mark.gcloud
def test_manage_py_tasks_emulators_creates_what_tasks_names(tmp_path: Path) -> None:
    ports = [free_port(), free_port(), free_port()]
    grpc_host, certs = f"127.0.0.1:{ports[1]}", f"http://127.0.0.1:{ports[2]}/oauth2/v1/certs"
    env = subprocess_env(
        "cmd-project",
        TEST_CERTS_URL=certs,
        TEST_GCLOUD_HOST=grpc_host,
        TEST_BASE_URL="http://127.0.0.1:8000/tasks/",
    )
    command = Background(
        [
            PYTHON,
            "-m",
            "django",
            "tasks_emulators",
            *("--firestore-port", str(ports[0])),
            *("--gcloud-port", str(ports[1])),
            *("--gcloud-http-port", str(ports[2])),
            *("--max-attempts", "4"),
        ],
        tmp_path / "out.txt",
        env=env,
        cwd=REPO_ROOT,
    )
    try:
        command.wait_for("Emulators running")
        where = f"projects/cmd-project/locations/{LOCATION}"
        assert f"Cloud Tasks queue {where}/queues/default  (TASKS['cloud'])" in command.output
        assert f"Cloud Run job {where}/jobs/e2e-job  (TASKS['cloudjobs'])" in command.output
        assert "Warning" not in command.output
        queue = tasks_client(grpc_host).get_queue(name=f"{where}/queues/default")
        assert queue.retry_config.max_attempts == 4
        job = jobs_client(grpc_host).get_job(name=f"{where}/jobs/e2e-job")
        assert job.template.template.max_retries == 3
        env_vars = {e.name: e.value for e in job.template.template.containers[0].env}
        assert env_vars == {
            "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{ports[0]}",
            "DJANGO_TASKS_FS_EMULATOR_HOST": grpc_host,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
        }
        assert command.terminate() == 0
        assert firestore_jvms(ports[0]) == []
        assert command.output.rstrip().endswith("Stopped.")
    finally:
        command.kill_leftovers(ports[0])


@pytest.mark.gcloud
@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("FIRESTORE_EMULATOR_JAR", "/nowhere/cloud-firestore-emulator.jar", "is not a file"),
        ("JAVA", "/nowhere/java", "is not an executable program"),
    ],
)
def test_a_missing_firestore_emulator_or_java_gets_the_install_hint(
    tmp_path: Path, variable: str, value: str, problem: str
) -> None:
    env = {**subprocess_env("cmd-project"), variable: value}
    ports = [str(free_port()) for _ in range(3)]
    command = Background(
        [
            PYTHON,
            "-m",
            "django",
            "tasks_emulators",
            *("--firestore-port", ports[0]),
            *("--gcloud-port", ports[1]),
            *("--gcloud-http-port", ports[2]),
        ],
        tmp_path / "out.txt",
        env=env,
        cwd=REPO_ROOT,
    )
    try:
        assert command.process.wait(timeout=60) == 1
        assert f"CommandError: ${variable}={value!r} {problem}." in command.output
        assert "gcloud components install cloud-firestore-emulator" in command.output
        assert "Traceback" not in command.output
    finally:
        command.kill_leftovers()


@pytest.mark.firestore
@pytest.mark.gcloud
def test_the_command_exits_1_when_the_firestore_emulator_dies(tmp_path: Path) -> None:
    ports = [free_port(), free_port(), free_port()]
    command = Background(
        [
            PYTHON,
            "-m",
            "django_tasks_fs.emulators",
            *("--firestore-port", str(ports[0])),
            *("--gcloud-port", str(ports[1])),
            *("--gcloud-http-port", str(ports[2])),
        ],
        tmp_path / "out.txt",
    )
    try:
        command.wait_for("Emulators running")
        (jvm,) = firestore_jvms(ports[0])
        os.kill(jvm, signal.SIGKILL)
        assert command.process.wait(timeout=60) == 1
        assert "The Firestore emulator exited unexpectedly" in command.output
    finally:
        command.kill_leftovers(ports[0])
