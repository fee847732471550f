"""Tasks of the security tests."""

from __future__ import annotations

from django.tasks import task


@task
def huge_int() -> int:
    """A return value Python will not write as text (more than 4,300 digits)."""
    return 10**5000
