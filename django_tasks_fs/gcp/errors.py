"""The errors the adapters raise for Google Cloud API failures (defined with the others)."""

from __future__ import annotations

from ..exceptions import GoogleCloudError, MissingCloudResource

__all__ = ["GoogleCloudError", "MissingCloudResource"]
