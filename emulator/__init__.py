"""Repository-only helpers: the demo project (``demo/``) and the fault proxy of the
chaos tests (``faultproxy.py``). Not part of the wheel.

The emulators themselves ship with the library, for users' projects too:
``django_tasks_fs.emulators`` (``manage.py tasks_emulators``).
"""

from __future__ import annotations
