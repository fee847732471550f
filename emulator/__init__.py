"""Local stand-ins for Google Cloud used by the tests, the demo and local development.

Not part of the wheel: this folder is only present in a checkout of the repository.
"""

from __future__ import annotations
