"""What ``run_tasks`` counts, in the Prometheus text exposition format (``/metrics``).

The children report every attempt to the parent over their pipe (a ``Done`` each, with
its outcome and how long the task ran: :mod:`.chunks`); the parent counts them here, so
one scrape of the parent sees the whole worker. No Firestore query is made for a
scrape: the gauges are what the worker holds in memory.

Hand-written rather than ``prometheus_client``: a handful of series, no new dependency.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .chunks import Done, Job

#: Upper bounds of the duration histogram's buckets, in seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
PREFIX = "django_tasks_fs"
#: ``execute_task``'s exit status (cloud_run_jobs mode) as the outcome it stands for.
EXIT_OUTCOMES = {"exit 0": "succeeded", "exit 1": "failed", "exit 75": "retry"}
#: Reports of executions handed out that never became an attempt (the execution's
#: ``attempts`` did not grow): the claim was refused (another worker or a cancel won, or
#: not due yet by Firestore's clock), or the process could not start. Counted apart, so
#: that ``attempts_total`` adds up to the attempts the executions record.
NOT_RUN = frozenset({"refused", "not_started"})

Labels = tuple[tuple[str, str], ...]


@dataclass
class _Histogram:
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    total: float = 0.0
    count: int = 0

    def observe(self, value: float) -> None:
        for index, bound in enumerate(BUCKETS):
            if value <= bound:
                self.buckets[index] += 1
        self.total += value
        self.count += 1


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if isinstance(value, float) else str(value)


def _family(name: str, kind: str, help_text: str) -> list[str]:
    return [f"# HELP {PREFIX}_{name} {help_text}", f"# TYPE {PREFIX}_{name} {kind}"]


class Metrics:
    """The parent's counters (thread-safe: the HTTP server reads while the loop writes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._attempts: dict[Labels, int] = {}
        self._not_run: dict[Labels, int] = {}
        self._durations: dict[Labels, _Histogram] = {}

    def observe(self, job: Job, results: Iterable[Done]) -> None:
        """Count what became of a job's executions."""
        by_id = {e.id: e for e in job.executions}
        with self._lock:
            for done in results:
                execution = by_id.get(done.execution_id)
                base: Labels = (
                    ("backend", job.backend),
                    ("queue", execution.queue_name if execution is not None else ""),
                    ("task", execution.task_path if execution is not None else ""),
                )
                outcome = EXIT_OUTCOMES.get(done.outcome, done.outcome)
                if outcome in NOT_RUN:
                    key = (*base, ("reason", outcome))
                    self._not_run[key] = self._not_run.get(key, 0) + 1
                    continue
                key = (*base, ("outcome", outcome))
                self._attempts[key] = self._attempts.get(key, 0) + 1
                if done.duration is not None:
                    self._durations.setdefault(base, _Histogram()).observe(done.duration)

    def attempts(self) -> dict[Labels, int]:
        """A copy of the attempt counters, by their labels."""
        with self._lock:
            return dict(self._attempts)

    def render(self, gauges: Mapping[str, tuple[str, float]]) -> str:
        """The exposition text: the counters, the histogram, then ``gauges`` (name: (help, value))."""
        lines = _family(
            "attempts_total", "counter", "Attempts finished by this worker, by outcome."
        )
        with self._lock:
            attempts = sorted(self._attempts.items())
            not_run = sorted(self._not_run.items())
            durations = sorted(
                (labels, list(h.buckets), h.total, h.count) for labels, h in self._durations.items()
            )
        lines += [f"{PREFIX}_attempts_total{_labels(k)} {v}" for k, v in attempts]
        lines += _family(
            "not_run_total",
            "counter",
            "Executions handed to this worker's processes that did not run, by reason.",
        )
        lines += [f"{PREFIX}_not_run_total{_labels(k)} {v}" for k, v in not_run]
        name = f"{PREFIX}_attempt_duration_seconds"
        lines += _family(
            "attempt_duration_seconds", "histogram", "Seconds the task ran, per attempt."
        )
        for labels, buckets, total, count in durations:
            for bound, seen in zip(BUCKETS, buckets, strict=True):
                lines.append(f"{name}_bucket{_labels((*labels, ('le', repr(bound))))} {seen}")
            lines.append(f"{name}_bucket{_labels((*labels, ('le', '+Inf')))} {count}")
            lines.append(f"{name}_sum{_labels(labels)} {_number(total)}")
            lines.append(f"{name}_count{_labels(labels)} {count}")
        for gauge, (help_text, value) in gauges.items():
            kind = "counter" if gauge.endswith("_total") else "gauge"
            lines += _family(gauge, kind, help_text)
            lines.append(f"{PREFIX}_{gauge} {_number(value)}")
        return "\n".join(lines) + "\n"
