"""The user docs hold for a project that only installed the package: every command runs
from the user's own project, the settings they show pass the system checks, and the
ports and URLs they name are the code's (tests/packaging/test_user_project.py then
walks the same path for real)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.utils.module_loading import import_string

from django_tasks_fs import urls
from django_tasks_fs.emulators.gcloud.__main__ import parse_args
from django_tasks_fs.emulators.iap import urls as iap_urls
from django_tasks_fs.emulators.local import Ports
from tests.conftest import REPO_ROOT

DOCS = REPO_ROOT / "docs"
#: The pages of the local loop, which must not send readers into the repository at all.
LOCAL_LOOP = [
    DOCS / "tutorial" / "first-task.md",
    DOCS / "howto" / "local-development.md",
    DOCS / "howto" / "testing.md",
    DOCS / "howto" / "cron.md",
    DOCS / "howto" / "cancellation.md",
    DOCS / "reference" / "emulators.md",
]
LOCAL_DEVELOPMENT = DOCS / "howto" / "local-development.md"
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def ids(pages: list[Path]) -> list[str]:
    return [str(p.relative_to(DOCS)) for p in pages]


#: Pages about working on this repository; every other page is for a pip user.
CONTRIBUTOR_PAGES = {
    "development.md",
    "reliability.md",
    "benchmarks.md",
    "changelog.md",
}
#: What exists only in a checkout: its folders, and the modules in them.
REPOSITORY_ONLY = re.compile(
    r"(?<![\w./-])(?:tests|benchmarks|emulator|\.ci)/"
    r"|(?<![\w./-])(?:tests\.|benchmarks\.(?!md\b)|emulator\.(?:demo|faultproxy|firestore|gcloud)\b)"
)


def test_user_pages_send_pip_users_nowhere_outside_the_installed_package() -> None:
    """A reader who installed the wheel has no tests/, benchmarks/ or emulator/ folder."""
    found = []
    for page in sorted(DOCS.rglob("*.md")):
        relative = page.relative_to(DOCS)
        if "_build" in relative.parts or str(relative) in CONTRIBUTOR_PAGES:
            continue
        for number, line in enumerate(page.read_text().splitlines(), start=1):
            if REPOSITORY_ONLY.search(line):
                found.append(f"docs/{relative}:{number}: {line.strip()}")
    assert found == []


@pytest.mark.parametrize(
    ("line", "repository_only"),
    [
        ("see `tests/conftest.py`", True),
        ("$ uv run python -m emulator.firestore --port 8086", True),
        ("`benchmarks/chaos.py`", True),
        ("python -m django_tasks_fs.emulators", False),
        ("curl -X DELETE http://127.0.0.1:8086/emulator/v1/projects/P", False),
        ("from myapp.tests.factories import x", False),
        ("see [the benchmarks](benchmarks.md)", False),
        ("log: /tmp/firestore-emulator-1/emulator.log", False),
        ("emulator.faults.clear()  # an instance named emulator", False),
        ("python -m emulator.demo", True),
    ],
)
def test_repository_only_references_are_recognised(line: str, repository_only: bool) -> None:
    assert bool(REPOSITORY_ONLY.search(line)) is repository_only


@pytest.mark.parametrize("page", LOCAL_LOOP, ids=ids(LOCAL_LOOP))
def test_the_local_loop_never_points_into_the_repository(page: Path) -> None:
    text = page.read_text()
    assert not re.search(r"`tests/|\buv run\b|in a checkout", text), page.name


def settings_blocks() -> list[str]:
    return [b for b in PYTHON_BLOCK.findall(LOCAL_DEVELOPMENT.read_text()) if "TASKS = " in b]


@pytest.mark.parametrize("debug", [True, False], ids=["DEBUG", "production"])
def test_the_settings_of_local_development_pass_the_checks(debug: bool) -> None:
    blocks = settings_blocks()
    assert len(blocks) >= 2  # the local worker, and the Google Cloud path
    for block in blocks:
        namespace: dict[str, Any] = {"DEBUG": debug}
        exec(block, namespace)
        for alias, params in namespace["TASKS"].items():
            backend = import_string(params["BACKEND"])(alias, params)
            assert backend.problems == [], (alias, backend.problems)


def test_local_development_mounts_the_endpoints_where_base_url_points() -> None:
    text = LOCAL_DEVELOPMENT.read_text()
    include = 'path("tasks/", include("django_tasks_fs.urls"))'
    assert include in text
    assert include in (urls.__doc__ or "")
    namespace: dict[str, Any] = {"DEBUG": True}
    exec(settings_blocks()[-1], namespace)
    for params in namespace["TASKS"].values():
        assert params["OPTIONS"]["base_url"] == "http://127.0.0.1:8000/tasks/"
        assert params["OPTIONS"]["oidc_certs_url"] == "http://127.0.0.1:8124/oauth2/v1/certs"


def test_the_documented_ports_are_the_defaults() -> None:
    defaults = Ports()
    assert (defaults.firestore, defaults.gcloud, defaults.gcloud_http) == (8086, 8123, 8124)
    # The Google Cloud emulator alone serves its certs on a fixed port too (not a random one).
    args = parse_args([])
    assert (args.port, args.http_port) == (8123, 8124)
    for page in (LOCAL_DEVELOPMENT, DOCS / "reference" / "emulators.md"):
        text = page.read_text()
        for port in (8086, 8123, 8124):
            assert str(port) in text, (page.name, port)
        assert "http://127.0.0.1:8124/oauth2/v1/certs" in text


def test_the_iap_stand_in_is_documented_with_the_codes_defaults_and_paths() -> None:
    text = (DOCS / "reference" / "emulators.md").read_text()
    assert f"| `--port` | `{iap_urls.DEFAULT_PORT}`" in text
    assert f"| `--upstream` | `{iap_urls.DEFAULT_UPSTREAM}` |" in text
    for path in (iap_urls.CERTS_PATH, iap_urls.LOGIN_PATH, iap_urls.LOGOUT_PATH):
        assert f"`GET {path}" in text, path
    assert f"?{iap_urls.MODE_PARAMETER}={iap_urls.LOGOUT_MODE}" in text
    assert f'"CERTS_URL": "http://127.0.0.1:{iap_urls.DEFAULT_PORT}{iap_urls.CERTS_PATH}"' in text


def test_the_testing_page_says_what_a_project_needs() -> None:
    text = (DOCS / "howto" / "testing.md").read_text()
    assert "no configuration needed" not in text
    assert "pip install pytest pytest-django" in text
    assert 'DJANGO_SETTINGS_MODULE = "mysite.settings"' in text
    assert "django.setup()" in text
