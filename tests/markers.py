"""Infrastructure markers: what a test needs outside Python, and what happens when it is missing.

=============  ==============================================================
``firestore``  the official Cloud Firestore emulator (Java + gcloud component)
``gcloud``     this project's Google Cloud emulator (``django_tasks_fs/emulators/gcloud``)
``browser``    Debian's ``chromium`` and ``chromium-driver`` (the admin in a browser)
``faketime``   Debian's ``faketime`` (libfaketime: workers with skewed clocks)
``gcloud_cli`` the Google Cloud CLI, ``gcloud`` (the deployment guide's commands, offline)
``slow``       nothing to install: a long run (deselect with ``-m "not slow"``)
=============  ==============================================================

Tests that use the ``firestore_emulator`` or ``gcloud`` fixture are marked for them
automatically; the others carry the marker. A test whose package is missing is skipped
with a reason naming the package and its install command — except under ``CI=true``,
where it fails: CI must never go green by skipping.

Loaded by ``tests/conftest.py`` (``pytest_plugins``); it imports nothing of Django.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
from collections.abc import Callable

import pytest

from django_tasks_fs.emulators.firestore import EmulatorNotFound, find_emulator_jar, find_java

#: Marker -> its help line (registered for ``--strict-markers``).
MARKERS = {
    "firestore": "needs the official Cloud Firestore emulator (Java + gcloud component)",
    "gcloud": "needs this project's Google Cloud emulator (django_tasks_fs.emulators.gcloud)",
    "browser": "needs Debian's chromium and chromium-driver (the admin in a real browser)",
    "faketime": "needs Debian's faketime (libfaketime)",
    "gcloud_cli": "needs the Google Cloud CLI, gcloud (checks the guide's commands offline)",
    "slow": "long-running (campaigns, benchmarks); deselect with -m 'not slow'",
}

#: Tests that use one of these fixtures are marked automatically.
FIXTURE_MARKERS = {"firestore_emulator": "firestore", "gcloud": "gcloud"}

APT_INSTALL = "sudo apt-get install -y"


def _commands(package: str, *commands: str) -> str | None:
    missing = [c for c in commands if shutil.which(c) is None]
    if not missing:
        return None
    return (
        f"needs Debian's {package} (missing on PATH: {', '.join(missing)}); "
        f"install it with: {APT_INSTALL} {package}"
    )


def _firestore() -> str | None:
    try:
        find_java()
        find_emulator_jar()
    except EmulatorNotFound as exc:
        return "needs the official Cloud Firestore emulator. " + " ".join(str(exc).split())
    return None


def _gcloud() -> str | None:
    missing = [m for m in ("grpc", "cryptography") if importlib.util.find_spec(m) is None]
    if not missing:
        return None
    return (
        f"needs the Google Cloud emulator's Python packages ({', '.join(missing)}), "
        "which are in the dev dependencies: uv sync"
    )


def _gcloud_cli() -> str | None:
    if shutil.which("gcloud") is not None:
        return None
    return (
        "needs the Google Cloud CLI (missing on PATH: gcloud); install Debian's "
        f"google-cloud-cli from Google's apt repository ({APT_INSTALL} google-cloud-cli, "
        "see https://cloud.google.com/sdk/docs/install#deb)"
    )


#: Marker -> a check returning why the test cannot run here (None: it can).
CHECKS: dict[str, Callable[[], str | None]] = {
    "firestore": _firestore,
    "gcloud": _gcloud,
    "browser": lambda: _commands("chromium chromium-driver", "chromium", "chromedriver"),
    "faketime": lambda: _commands("faketime", "faketime"),
    "gcloud_cli": _gcloud_cli,
}


def on_ci() -> bool:
    """True when ``$CI`` says this is a CI run (where a missing package is a failure)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@functools.cache
def missing(marker: str) -> str | None:
    """Why tests marked ``marker`` cannot run on this machine, or None (checked once)."""
    check = CHECKS.get(marker)
    return check() if check else None


def pytest_configure(config: pytest.Config) -> None:
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by the infrastructure fixtures they use (before ``-m`` selects)."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        for fixture, marker in FIXTURE_MARKERS.items():
            if fixture in fixtures and item.get_closest_marker(marker) is None:
                item.add_marker(marker)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip (or, under CI=true, fail) a test whose infrastructure is not installed."""
    for marker in MARKERS:
        if item.get_closest_marker(marker) is None:
            continue
        reason = missing(marker)
        if reason is None:
            continue
        if on_ci():
            pytest.fail(f"CI=true and this test {reason}", pytrace=False)
        pytest.skip(f"{marker}: {reason}")
