#!/usr/bin/env python3
"""Run the anchor drain benchmark and print one JSON line per run.

    python3 benchmarks/anchors/run_anchors.py --tasks 2000 --repeat 3 \
        --json-out benchmarks/results/anchors.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

# Importable as benchmarks/anchors whether run as a script or via ``-m anchors``.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from anchors.runner import ANCHORS, DEFAULT_VENV, AnchorError, ensure_venv, log, run_anchor


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run every requested anchor R times, and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000, help="tasks per run (default 2000)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per anchor (default 1)")
    parser.add_argument(
        "--anchor",
        action="append",
        choices=sorted(ANCHORS),
        help="anchor to run; repeatable (default: all)",
    )
    parser.add_argument("--json-out", type=Path, help="also write the JSON lines here")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="anchors' venv")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per phase")
    args = parser.parse_args(argv)

    names = args.anchor or list(ANCHORS)
    ensure_venv(args.venv)
    records = []
    try:
        for name in names:
            for repeat in range(1, args.repeat + 1):
                log(f"{name}: run {repeat}/{args.repeat}, {args.tasks} tasks ...")
                record = {
                    **run_anchor(name, args.tasks, venv=args.venv, timeout=args.timeout),
                    "repeat": repeat,
                }
                records.append(record)
                print(json.dumps(record), flush=True)
                log(
                    f"{name}: enqueue {record['enqueue_s']:.2f}s, drain {record['drain_s']:.2f}s"
                    f" = {record['tasks_per_s']} tasks/s ({record['concurrency']})"
                )
    except AnchorError as err:
        log(f"FAILED: {err}")
        return 1
    finally:
        if args.json_out and records:
            args.json_out.parent.mkdir(parents=True, exist_ok=True)
            args.json_out.write_text("".join(json.dumps(r) + "\n" for r in records))

    for name in names:
        rates = [r["tasks_per_s"] for r in records if r["anchor"] == name]
        log(f"{name}: median {statistics.median(rates)} tasks/s over {len(rates)} run(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
