"""Bounded histories: error and worker lists are capped by count and by bytes."""

from __future__ import annotations

from .documents import ErrorEntry

#: One traceback keeps at most this many bytes (its end: the most recent frames).
MAX_TRACEBACK_BYTES = 16 * 1024
TRUNCATION_MARK = "[... {} bytes truncated ...]\n"
MAX_WORKER_ID_BYTES = 200


def _truncate_traceback(text: str, limit: int) -> str:
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    kept = raw[len(raw) - limit :].decode("utf-8", errors="ignore")
    return TRUNCATION_MARK.format(len(raw) - len(kept.encode("utf-8"))) + kept


def _entry_size(entry: ErrorEntry) -> int:
    return len(entry.exception_class_path.encode("utf-8")) + len(entry.traceback.encode("utf-8"))


def append_error(
    errors: list[ErrorEntry], entry: ErrorEntry, *, max_entries: int, max_bytes: int
) -> list[ErrorEntry]:
    """Return the history with ``entry`` added, oldest entries dropped to fit both caps."""
    per_entry = min(MAX_TRACEBACK_BYTES, max(max_bytes // 2, 1024))
    entry = ErrorEntry(
        exception_class_path=entry.exception_class_path,
        traceback=_truncate_traceback(entry.traceback, per_entry),
    )
    kept = [*errors, entry][-max_entries:] if max_entries > 0 else [entry]
    while len(kept) > 1 and sum(_entry_size(e) for e in kept) > max_bytes:
        kept.pop(0)
    return kept


def append_worker(worker_ids: list[str], worker_id: str, *, max_entries: int) -> list[str]:
    """Return the worker history with ``worker_id`` added, capped to the newest entries."""
    worker_id = worker_id.encode("utf-8")[:MAX_WORKER_ID_BYTES].decode("utf-8", errors="ignore")
    kept = [*worker_ids, worker_id]
    return kept[-max_entries:] if max_entries > 0 else kept[-1:]
