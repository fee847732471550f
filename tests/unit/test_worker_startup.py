"""The pure parts of how run_tasks starts children and prints logs (no process started)."""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from django_tasks_fs.worker.logs import PrintedOnce
from django_tasks_fs.worker.startup import (
    MAX_FAILED_STARTS,
    START_BACKOFF_MAX,
    StartFailures,
    import_path,
    settings_module,
    start_delay,
)


def test_start_delay_doubles_up_to_its_maximum() -> None:
    delays = [start_delay(n) for n in range(1, 10)]
    assert delays[:5] == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert max(delays) == START_BACKOFF_MAX == delays[-1]


def test_start_failures_give_up_after_the_maximum_in_a_row() -> None:
    failures = StartFailures("worker process")
    for _ in range(MAX_FAILED_STARTS - 1):
        failures.failed("exited with status 1 before it started", "ImportError: x")
    assert not failures.exhausted
    assert not failures.due()  # backing off
    failures.started()  # one start in between: the count starts again
    assert failures.count == 0
    assert failures.due()
    for _ in range(MAX_FAILED_STARTS):
        failures.failed("exited with status 1 before it started", "ImportError: x")
    assert failures.exhausted
    message = failures.give_up_message()
    assert message.startswith(f"{MAX_FAILED_STARTS} failed starts in a row: the worker process")
    assert "ImportError: x" in message
    assert "'tests.settings'" in message


def test_settings_made_with_configure_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings_module() == "tests.settings"
    monkeypatch.setattr(settings, "SETTINGS_MODULE", None)
    with pytest.raises(ImproperlyConfigured, match=r"settings\.configure\(\)"):
        settings_module()


def test_import_path_is_absolute_and_keeps_the_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", ["", "relative", "/b", "/a", "/b"])
    cwd = os.getcwd()
    assert import_path() == [cwd, os.path.join(cwd, "relative"), "/b", "/a"]


class RequireFlag(logging.Filter):
    """Like Django's RequireDebugTrue, with the flag in the test's hands."""

    flag = True

    def filter(self, record: logging.LogRecord) -> bool:
        return self.flag


@pytest.fixture
def django_logger() -> Iterator[tuple[logging.Logger, io.StringIO, io.StringIO, RequireFlag]]:
    """A ``django``-like logger with a console handler (on a flag) below a root handler
    that carries PrintedOnce; what each of them printed."""
    parent = logging.getLogger("printed_once_test")
    child = logging.getLogger("printed_once_test.tasks")
    console, root = io.StringIO(), io.StringIO()
    flag = RequireFlag()
    django_console = logging.StreamHandler(console)
    django_console.addFilter(flag)
    ours = logging.StreamHandler(root)
    ours.addFilter(PrintedOnce())
    parent.addHandler(django_console)
    parent.setLevel(logging.INFO)
    root_logger = logging.getLogger()
    root_logger.addHandler(ours)
    try:
        yield child, console, root, flag
    finally:
        parent.removeHandler(django_console)
        root_logger.removeHandler(ours)


def test_printed_once_skips_what_a_console_handler_below_printed(
    django_logger: tuple[logging.Logger, io.StringIO, io.StringIO, RequireFlag],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    child, console, root, flag = django_logger
    monkeypatch.setattr(sys, "stderr", console)  # that handler now writes on the console
    flag.flag = True  # DEBUG=True: Django's console prints it, ours does not
    child.info("one")
    flag.flag = False  # DEBUG=False: Django's console filters it out, ours prints it
    child.info("two")
    assert console.getvalue() == "one\n"
    assert root.getvalue() == "two\n"


def test_printed_once_ignores_handlers_that_are_not_consoles(
    django_logger: tuple[logging.Logger, io.StringIO, io.StringIO, RequireFlag],
) -> None:
    child, console, root, _ = django_logger
    # That handler does not write on the console (like a file or mail_admins): it
    # prints, and so does ours.
    child.info("both")
    assert console.getvalue() == "both\n"
    assert root.getvalue() == "both\n"


def test_the_worker_command_imports_no_cron_library_and_checks_only_its_own() -> None:
    """Start-up cost (benchmarks/startup.py): croniter is imported once a schedule needs
    it, the Google Cloud backends' modules and OpenTelemetry's propagators once they are
    used, and run_tasks runs this library's system checks (and its backends'), not
    Django's whole set (the migration autodetector check imports the migrations)."""
    import subprocess

    probe = (
        "import sys, django; django.setup(); "
        "from django.core.management import load_command_class; "
        "command = load_command_class('django_tasks_fs', 'run_tasks'); "
        "from django_tasks_fs.backends import ProcessBackend; "
        "print(command.requires_system_checks, 'croniter' in sys.modules, "
        "'django_tasks_fs.backends.google_cloud' in sys.modules, "
        "'opentelemetry.propagate' in sys.modules)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["['django_tasks_fs']", "False", "False", "False"]
