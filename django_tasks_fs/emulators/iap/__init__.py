"""A local stand-in for Identity-Aware Proxy (IAP), in front of ``manage.py runserver``,
so that the admin of an app without a SQL database can be opened on a laptop exactly as
behind Google's IAP: every request arrives with a signed ``X-Goog-IAP-JWT-Assertion``.

``signer``  an ES256 key made at start, its public keys, IAP-shaped claims and tokens
``proxy``   the reverse proxy (``IAPProxy``) and its own pages under ``/_iap/``
``cli``     ``python -m django_tasks_fs.emulators.iap`` and ``manage.py tasks_iap_proxy``

Development only: production verifies the tokens of Google's IAP with Google's keys.
Needs ``pip install 'django-tasks-fs[emulators]'`` (``cryptography``). Nothing heavy is
imported here, so that the commands can say so instead of failing on import.
"""

from __future__ import annotations
