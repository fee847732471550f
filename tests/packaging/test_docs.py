"""The documentation site builds with Sphinx in strict mode (warnings are errors)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


def test_docs_build_without_warnings(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            str(REPO_ROOT / "docs"),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    index = (tmp_path / "html" / "index.html").read_text()
    for page in (
        "howto/worker.html",
        "explanation/data-model.html",
        "reference/options.html",
        "howto/admin.html",
    ):
        assert page in index, page
    assert (tmp_path / "html" / "_images" / "admin-list.png").exists()
