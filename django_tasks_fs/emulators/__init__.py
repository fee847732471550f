"""Local stand-ins for Google Cloud, shipped with the library so that any project can
run everything on a laptop:

``firestore``    launcher of the official Cloud Firestore emulator (Java, gcloud SDK)
``gcloud/``      our emulator of Cloud Tasks, Cloud Scheduler and Cloud Run Jobs (gRPC),
                 with a local OIDC signer; needs ``django-tasks-fs[emulators]``
``local``        both together on fixed ports (``manage.py tasks_emulators``)
``provisioning`` the queues and jobs ``TASKS`` names, created in the emulator
``iap/``         a local stand-in for Identity-Aware Proxy in front of runserver
                 (``manage.py tasks_iap_proxy``); needs ``django-tasks-fs[emulators]``

See docs/howto/local-development.md and docs/reference/emulators.md.
"""

from __future__ import annotations
