"""The test project as an app with no SQL database, its admin behind IAP.

For servers started in a subprocess (the admin's browser test): ``DATABASES = {}``
is what a user with no Cloud SQL has, so any query fails loudly there. The IAP keys
come from ``TEST_IAP_CERTS_URL`` (the local IAP stand-in in front of the server).
"""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403

DATABASES: dict[str, object] = {}
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django_tasks_fs.iap.IAPAuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
IAP_AUDIENCE = "/projects/0/apps/local-dev"
TASKS_FS_IAP = {
    "AUDIENCE": IAP_AUDIENCE,
    "CERTS_URL": os.environ.get("TEST_IAP_CERTS_URL", "http://127.0.0.1:9/_iap/public_key"),
    "GRANTS": {
        "alice@example.com": ["all"],
        "viewer@example.com": ["view"],
    },
}
