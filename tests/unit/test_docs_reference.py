"""The configuration reference documents every option, with the code's default."""

from __future__ import annotations

import re
from dataclasses import MISSING, fields

from django_tasks_fs.options import OPTION_NAMES, BackendOptions
from tests.conftest import REPO_ROOT

PAGE = REPO_ROOT / "docs" / "reference" / "options.md"
ROW = re.compile(r"^\| `([a-z_]+)`(?: / `([a-z_]+)`)? \| ([^|]+) \|", re.M)


def documented() -> dict[str, str]:
    rows: dict[str, str] = {}
    for first, second, default in ROW.findall(PAGE.read_text()):
        defaults = [d.strip() for d in default.split(" / ")]
        for name, value in zip(
            [first, second] if second else [first], defaults if second else [default], strict=False
        ):
            rows[name] = value.strip()
    return rows


def test_every_option_is_documented_and_nothing_else() -> None:
    assert set(documented()) == set(OPTION_NAMES)


def test_documented_defaults_match_the_code() -> None:
    rows = documented()
    for field in fields(BackendOptions):
        default = field.default if field.default is not MISSING else field.default_factory()  # type: ignore[misc]
        text = rows[field.name]
        if isinstance(default, bool | int | float) and not isinstance(default, bool):
            assert str(default).rstrip("0").rstrip(".") in text or f"{default}" in text, (
                field.name,
                text,
            )
        elif isinstance(default, bool):
            assert str(default) in text, (field.name, text)
        elif isinstance(default, str) and default:
            assert default in text, (field.name, text)


CHECK_ID = re.compile(r"django_tasks_fs\.[EW]\d{3}")


def test_every_check_id_is_in_the_checks_reference() -> None:
    """docs/reference/checks.md has one row per id the package can report."""
    package = REPO_ROOT / "django_tasks_fs"
    used = {m for f in package.rglob("*.py") for m in CHECK_ID.findall(f.read_text())}
    rows = re.findall(
        r"^\| `(django_tasks_fs\.[EW]\d{3})` \|",
        (REPO_ROOT / "docs" / "reference" / "checks.md").read_text(),
        re.M,
    )
    assert sorted(rows) == sorted(used)
