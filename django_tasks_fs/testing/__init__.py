"""Testing your own tasks without a Google account: the official Firestore emulator,
an isolated Firestore project per test, and a synchronous task runner.

Enabled automatically as a pytest plugin (``django_tasks_fs.testing.plugin``) when the
package is installed; see docs/howto/testing.md.
"""

from __future__ import annotations

from .runner import TaskRunner

__all__ = ["TaskRunner"]
