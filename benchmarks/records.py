"""What every benchmark writes beside its figures: where its results file goes (one
timestamp format for all), what machine measured them, and its progress lines.

Imported as ``records`` by the scripts that put ``benchmarks/`` on ``sys.path`` and as
``benchmarks.records`` by those that put the repository root there.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCHMARKS_DIR.parent
#: Where the raw records go (git-ignored).
RESULTS_DIR = BENCHMARKS_DIR / "results"
#: The ``<timestamp>`` of every results file name, in UTC.
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


# -- the results file ------------------------------------------------------------------


def timestamp() -> str:
    """The current UTC time as results files are stamped (``20261202T174356Z``)."""
    return datetime.now(UTC).strftime(STAMP_FORMAT)


def results_path(name: str, suffix: str = ".jsonl", when: str | None = None) -> Path:
    """``benchmarks/results/<name>-<timestamp><suffix>`` (``when``: the timestamp,
    default now); the directory is created."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    return RESULTS_DIR / f"{name}-{when or timestamp()}{suffix}"


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Write ``records`` to ``path``, one JSON object per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def write_json(path: Path, record: dict[str, Any]) -> None:
    """Write ``record`` to ``path`` as one indented JSON document."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2))


# -- progress --------------------------------------------------------------------------


def progress(name: str) -> Callable[[str], None]:
    """A ``log(message)`` that writes ``[name HH:MM:SS] message`` to stderr (stdout is
    kept for the figures)."""

    def log(message: str) -> None:
        print(f"[{name} {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    return log


# -- the machine -----------------------------------------------------------------------


def command_output(args: Sequence[str]) -> str:
    """stdout and stderr of ``args`` run in the repository ("" if it cannot run)."""
    try:
        result = subprocess.run(
            list(args), capture_output=True, text=True, timeout=60, check=False, cwd=REPO_ROOT
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return (result.stdout + result.stderr).strip()


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _emulator_version() -> str:
    """The gcloud component version of the Firestore emulator, when it can be read."""
    for root in (
        "/usr/lib/google-cloud-sdk",
        "/usr/share/google-cloud-sdk",
        "/opt/google-cloud-sdk",
    ):
        snapshot = Path(root) / ".install" / "cloud-firestore-emulator.snapshot.json"
        try:
            data = json.loads(snapshot.read_text())
        except (OSError, ValueError):
            continue
        for component in data.get("components", []):
            if component.get("id") == "cloud-firestore-emulator":
                return str(component.get("version", {}).get("version_string", "unknown"))
    return "unknown"


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages (empty where unavailable)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine_info(anchors: dict[str, str] | None = None) -> dict[str, Any]:
    """What the figures were measured on (``"kind": "machine"``, the first line of a
    JSONL record). ``anchors``: the versions in the anchors' venv, when they ran."""
    dirty = command_output(["git", "status", "--porcelain", "--untracked-files=no"])
    java = command_output(["java", "-version"]).splitlines()
    info: dict[str, Any] = {
        "kind": "machine",
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": _memory_gib(),
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "loadavg_start": loadavg(),
        "git_commit": command_output(["git", "rev-parse", "--short", "HEAD"]),
        "git_modified_tracked_files": len(dirty.splitlines()) if dirty else 0,
        "ours": {
            "python": platform.python_version(),
            "django": _package_version("django"),
            "django-tasks-fs": _package_version("django-tasks-fs"),
            "google-cloud-firestore": _package_version("google-cloud-firestore"),
            "grpcio": _package_version("grpcio"),
            "protobuf": _package_version("protobuf"),
        },
        "firestore_emulator": _emulator_version(),
        "java": java[0] if java else "unknown",
        "pythondontwritebytecode_in_shell": os.environ.get("PYTHONDONTWRITEBYTECODE", ""),
    }
    if anchors is not None:
        info["anchors"] = anchors
    return info
