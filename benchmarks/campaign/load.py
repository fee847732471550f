"""Load: every execution delivered once over HTTP, ``--concurrency`` deliveries at once.

The duplicates scenario with one delivery each (plus platform-style redelivery of
anything not acknowledged). With ``--task-seconds`` above the 2 s lease, each body
outlives its lease many times over: only heartbeats keep it, so ``taken_over`` (an
execution whose lease another delivery took) counts lost heartbeats.
"""

from __future__ import annotations

import argparse
from typing import Any

from . import duplicates


def run(args: argparse.Namespace) -> dict[str, Any]:
    args.deliveries = 1
    return duplicates.run(args)
