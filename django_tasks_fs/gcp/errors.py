"""The error the adapters raise for any Google Cloud API failure."""

from __future__ import annotations

from ..exceptions import TaskFsError


class GoogleCloudError(TaskFsError):
    """A Google Cloud API call failed (the cause is chained)."""
