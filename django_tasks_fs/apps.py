from __future__ import annotations

from django.apps import AppConfig


class TasksFsConfig(AppConfig):
    """Django app for the admin, the management commands and the system checks."""

    name = "django_tasks_fs"
    verbose_name = "Tasks (Firestore)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, deploy_checks  # noqa: F401  (registers the system checks)
        from .iap import checks as iap_checks  # noqa: F401
