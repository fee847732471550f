"""Cloud Run's limits the options check against: constants only, so that reading the
options does not import the client adapters."""

from __future__ import annotations

#: Bytes in one environment variable's value.
ENV_VALUE_MAX_BYTES = 32_768
#: Tasks in one job execution.
MAX_TASK_COUNT = 10_000
