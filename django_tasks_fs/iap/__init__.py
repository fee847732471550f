"""The admin behind Google Cloud Identity-Aware Proxy, with no SQL database.

Settings: ``TASKS_FS_IAP`` (see ``config``); middleware:
``django_tasks_fs.iap.IAPAuthenticationMiddleware``; admin site:
``django_tasks_fs.admin_site.FirestoreAdminConfig``. The middleware is imported on
first use: ``config`` is read while INSTALLED_APPS load, before auth's models exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .middleware import IAPAuthenticationMiddleware

__all__ = ["IAPAuthenticationMiddleware"]


def __getattr__(name: str) -> Any:
    if name == "IAPAuthenticationMiddleware":
        from .middleware import IAPAuthenticationMiddleware

        return IAPAuthenticationMiddleware
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
