"""Fixtures of the acceptance tests: a user's own Django project (see user_project.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.acceptance.user_project import UserProject, write_user_project


@pytest.fixture
def user_project(tmp_path: Path, project_id: str) -> UserProject:
    """A Django project outside this repository, on this test's Firestore project."""
    return write_user_project(tmp_path, project_id)
