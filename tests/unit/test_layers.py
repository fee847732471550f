"""The architecture as code: the import-linter layers contract, no import cycle, and the
two doors to Google Cloud (store/ for Firestore, gcp/ for the other APIs)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "django_tasks_fs"
#: Who may import which Google client; the emulators serve these APIs themselves.
DOORS = {
    "google.cloud.firestore": ("store", "emulators"),
    "google.cloud.tasks_v2": ("gcp", "emulators"),
    "google.cloud.run_v2": ("gcp", "emulators"),
    "google.cloud.scheduler_v1": ("gcp", "emulators"),
}


def test_the_layers_contract_is_kept() -> None:
    """pyproject.toml [tool.importlinter], as drawn in docs/explanation/architecture.md."""
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint), "--no-cache"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_architecture_page_draws_exactly_the_contract() -> None:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    (contract,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    page = (REPO_ROOT / "docs" / "explanation" / "architecture.md").read_text()
    section = page.split("## Layers", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| [a-z ]+ \| (`.*?`) \| ", section, re.M)
    drawn = [row.replace("`", "").replace("\\|", "|") for row in rows]
    assert drawn == contract["layers"]


def test_no_import_cycle() -> None:
    """Not even through imports made for type annotations or inside functions."""
    graph = grimp.build_graph("django_tasks_fs")
    cycles = [
        graph.find_shortest_chain(importer=imported, imported=importer)
        for importer in sorted(graph.modules)
        for imported in graph.find_modules_directly_imported_by(importer)
        if graph.chain_exists(importer=imported, imported=importer)
    ]
    assert cycles == []


def imported_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_only_the_doors_import_the_google_clients() -> None:
    trespassers = sorted(
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in PACKAGE.rglob("*.py")
        for name in imported_names(path)
        for client, doors in DOORS.items()
        if (name == client or name.startswith((f"{client}_v1", f"{client}.")))
        and path.relative_to(PACKAGE).parts[0] not in doors
    )
    assert trespassers == []
