"""The configuration reference documents every option, with the code's default."""

from __future__ import annotations

import ast
import re
from dataclasses import fields
from typing import Any

import pytest

from django_tasks_fs.option_spec import default_of, spec_of
from django_tasks_fs.options import BackendOptions, CloudOptions, Kind, names_for
from tests.conftest import REPO_ROOT

PAGE = REPO_ROOT / "docs" / "reference" / "options.md"
ROW = re.compile(r"^\| `([a-z_]+)`(?: / `([a-z_]+)`)? \| ([^|]+) \|", re.M)
SECTION = re.compile(r"^## (.+)$", re.M)
#: Which backends each section of the page is about.
SECTIONS = {
    "Firestore (all backends)": Kind.ALL,
    "Attempts and leases (all backends)": Kind.ALL,
    "Local worker (`ProcessBackend`)": Kind.LOCAL,
    "Google Cloud (`CloudTasksBackend`, `CloudRunJobsBackend`)": Kind.CLOUD,
}
OPTIONS = fields(BackendOptions)


def documented() -> list[tuple[str, str, str]]:
    """(section, option, default cell) for each row of the option tables."""
    text = PAGE.read_text()
    heads = [(m.start(), m.group(1)) for m in SECTION.finditer(text)]
    rows: list[tuple[str, str, str]] = []
    for match in ROW.finditer(text):
        section = [name for start, name in heads if start < match.start()][-1]
        first, second, cell = match.groups()
        names = [first, second] if second else [first]
        cells = [c.strip() for c in cell.split(" / ")] if second else [cell.strip()]
        rows.extend((section, name, c) for name, c in zip(names, cells, strict=True))
    return rows


def literal(cell: str) -> Any:
    """The value of a cell such as ``"(default)"`` or ``["python", "manage.py"]``."""
    code = re.fullmatch(r"`([^`]+)`", cell)
    assert code, f"{cell!r} is not one `literal`"
    return ast.literal_eval(code.group(1))


def test_every_option_is_documented_and_nothing_else() -> None:
    assert {name for _, name, _ in documented()} == {f.name for f in OPTIONS}


@pytest.mark.parametrize("declared", OPTIONS, ids=lambda f: f.name)
def test_documented_defaults_match_the_code(declared: Any) -> None:
    """Each row shows the default: the literal, the spec's ``shown`` text, or required."""
    spec = spec_of(declared)
    cells = [cell for _, name, cell in documented() if name == declared.name]
    for cell in cells:
        if cell == "**required**":
            assert declared.name in {f.name for f in fields(CloudOptions)}
        elif spec.shown is not None:
            assert spec.shown in cell, (declared.name, cell)
        else:
            assert literal(cell) == default_of(declared), (declared.name, cell)


def test_documented_sections_match_the_backends_that_accept_each_option() -> None:
    """An option in a ProcessBackend or Google Cloud table is accepted by those backends
    (the ones in the all-backends tables that only ProcessBackend accepts are named in
    the paragraph that follows the Google Cloud table)."""
    only_local = names_for(Kind.LOCAL) - names_for(Kind.CLOUD)
    text = PAGE.read_text()
    note = text[text.index("are `ProcessBackend` only") - 300 :]
    for section, name, _ in documented():
        kinds = spec_of(next(f for f in OPTIONS if f.name == name)).kinds
        assert kinds & SECTIONS[section], (section, name)
        if SECTIONS[section] is Kind.ALL and kinds is not Kind.ALL:
            assert name in only_local, name
            assert f"`{name}`" in note or "retry_backoff_" in name, name


def test_required_google_cloud_options_are_documented_as_required() -> None:
    required = {name for section, name, cell in documented() if cell == "**required**"}
    assert required == {f.name for f in fields(CloudOptions)}


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
