"""Thin adapters over the official Google Cloud clients (Cloud Tasks, Cloud Run, Cloud Scheduler).

The only code that imports those clients. Each adapter turns ``google.api_core``
errors into ours (``GoogleCloudError``) and speaks in the library's terms.
"""

from __future__ import annotations
