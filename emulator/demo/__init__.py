"""The README's first command: ``uv run python -m emulator.demo``.

An example Django project (settings and tasks in this package) run through the real
pipeline on the official Firestore emulator: enqueue, ``manage.py run_tasks``, retries,
a deferred task, a cancellation and a cron schedule.
"""

from __future__ import annotations
