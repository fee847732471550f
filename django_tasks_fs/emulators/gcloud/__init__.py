"""A local emulator of the Google Cloud APIs the library calls: Cloud Tasks v2, Cloud
Scheduler v1 and Cloud Run v2 Jobs, over gRPC with the official clients' messages.

Google ships no emulator for these. This one really delivers: HTTP tasks and scheduled
jobs are POSTed with Google's headers and a verifiable OIDC token, and job executions
run as local subprocesses. See docs/reference/emulators.md.

Needs the ``cryptography`` package: ``pip install 'django-tasks-fs[emulators]'``.
"""

from __future__ import annotations

from .faults import FaultInjector
from .server import GoogleCloudEmulator

__all__ = ["FaultInjector", "GoogleCloudEmulator"]
