"""``settings.TASKS_FS_IAP``: who may use the admin behind Identity-Aware Proxy, and how.

Read once per process (``iap_config()``; ``setting_changed`` clears it in tests) and
validated in one place: the system checks report :attr:`IAPConfig.problems`, and a
request never runs on a configuration with problems.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

SETTING = "TASKS_FS_IAP"
#: Google's IAP public keys (kid -> PEM). Anything else is the local stand-in.
GOOGLE_IAP_CERTS_URL = "https://www.gstatic.com/iap/verify/public_key"
IAP_ISSUER = "https://cloud.google.com/iap"
GOOGLE_GROUPS_API = "https://cloudidentity.googleapis.com"

APP = "django_tasks_fs"
_VIEW = frozenset({f"{APP}.view_taskexecution", f"{APP}.view_scheduledtask"})
#: The grant vocabulary -> the Django permissions it gives (each includes viewing).
PERMISSIONS: dict[str, frozenset[str]] = {
    "view": _VIEW,
    "cancel": _VIEW | {f"{APP}.cancel_taskexecution"},
    "retry": _VIEW | {f"{APP}.retry_taskexecution"},
    "delete": _VIEW | {f"{APP}.delete_taskexecution"},
    "schedules": _VIEW | {f"{APP}.{verb}_scheduledtask" for verb in ("add", "change", "delete")},
}
PERMISSIONS["all"] = frozenset().union(*PERMISSIONS.values()) | {f"{APP}.change_taskexecution"}

_EMAIL = re.compile(r"^[^@\s:]+@[^@\s:]+\.[^@\s:]+$")
_DOMAIN = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")
#: IAP audiences: behind a load balancer, on App Engine, or on Cloud Run directly.
_AUDIENCE = re.compile(
    r"^/projects/[0-9]+/("
    r"global/backendServices/[0-9]+"
    r"|apps/[a-z][a-z0-9-]*"
    r"|locations/[a-z0-9-]+/services/[a-z0-9-]+"
    r")$"
)


@dataclass(frozen=True, slots=True)
class Grants:
    """Permission sets by principal kind, keys lowercased."""

    users: dict[str, frozenset[str]] = field(default_factory=dict)
    domains: dict[str, frozenset[str]] = field(default_factory=dict)
    groups: dict[str, frozenset[str]] = field(default_factory=dict)
    everyone: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class IAPConfig:
    """The parsed setting; ``problems`` is empty when it is usable."""

    configured: bool
    audiences: tuple[str, ...] = ()
    grants: Grants = field(default_factory=Grants)
    certs_url: str = GOOGLE_IAP_CERTS_URL
    groups_api: str = GOOGLE_GROUPS_API
    problems: tuple[str, ...] = ()

    @property
    def uses_google_keys(self) -> bool:
        return self.certs_url == GOOGLE_IAP_CERTS_URL


def _permissions(principal: str, names: Any, problems: list[str]) -> frozenset[str]:
    if isinstance(names, str) or not isinstance(names, (list, tuple, set, frozenset)):
        problems.append(f"GRANTS[{principal!r}] must be a list of permission names, not {names!r}.")
        return frozenset()
    granted: set[str] = set()
    for name in names:
        if name not in PERMISSIONS:
            problems.append(
                f"GRANTS[{principal!r}] has unknown permission {name!r}; "
                f"use {', '.join(sorted(PERMISSIONS))}."
            )
            continue
        granted |= PERMISSIONS[name]
    return frozenset(granted)


def _grants(raw: Any, problems: list[str]) -> Grants:
    if not isinstance(raw, dict):
        problems.append("GRANTS must be a dict of principal -> list of permission names.")
        return Grants()
    by_kind: dict[str, dict[str, frozenset[str]]] = {"user": {}, "group": {}, "domain": {}}
    everyone: frozenset[str] = frozenset()
    for principal, names in raw.items():
        if not isinstance(principal, str):
            problems.append(f"GRANTS key {principal!r} must be a string.")
            continue
        granted = _permissions(principal, names, problems)
        kind, _, value = principal.partition(":") if ":" in principal else ("user", "", principal)
        value = value.strip().lower()
        if principal == "*":
            everyone = granted
        elif kind in by_kind and (_DOMAIN if kind == "domain" else _EMAIL).match(value):
            by_kind[kind][value] = granted
        else:
            problems.append(
                f"GRANTS key {principal!r} is not 'EMAIL', 'user:EMAIL', 'group:EMAIL', "
                "'domain:DOMAIN' or '*'."
            )
    return Grants(by_kind["user"], by_kind["domain"], by_kind["group"], everyone)


def _audiences(raw: Any, problems: list[str]) -> tuple[str, ...]:
    values = [raw] if isinstance(raw, str) else raw
    if not isinstance(values, (list, tuple)) or not values:
        problems.append(
            "AUDIENCE is required: the IAP audience of the service, e.g. "
            "'/projects/PROJECT_NUMBER/locations/REGION/services/SERVICE'."
        )
        return ()
    for value in values:
        if not isinstance(value, str) or not _AUDIENCE.match(value):
            problems.append(
                f"AUDIENCE {value!r} is not an IAP audience: '/projects/NUMBER/global/"
                "backendServices/ID', '/projects/NUMBER/apps/PROJECT_ID' or "
                "'/projects/NUMBER/locations/REGION/services/SERVICE'."
            )
    return tuple(v for v in values if isinstance(v, str))


def _url(options: dict[str, Any], key: str, default: str, problems: list[str]) -> str:
    value = options.get(key, default)
    if not isinstance(value, str) or not re.match(r"^https?://[^\s/]+", value):
        problems.append(f"{key} must be an http(s) URL, not {value!r}.")
        return default
    return value.rstrip("/") if key == "GROUPS_API" else value


KNOWN_KEYS = frozenset({"AUDIENCE", "GRANTS", "CERTS_URL", "GROUPS_API"})


def parse(raw: Any) -> IAPConfig:
    """The config for a ``TASKS_FS_IAP`` value (``None``: IAP not used)."""
    if raw is None:
        return IAPConfig(configured=False)
    if not isinstance(raw, dict):
        return IAPConfig(configured=True, problems=(f"{SETTING} must be a dict.",))
    problems = [
        f"unknown key {key!r}; known: {', '.join(sorted(KNOWN_KEYS))}."
        for key in raw
        if key not in KNOWN_KEYS
    ]
    return IAPConfig(
        configured=True,
        audiences=_audiences(raw.get("AUDIENCE"), problems),
        grants=_grants(raw.get("GRANTS", {}), problems),
        certs_url=_url(raw, "CERTS_URL", GOOGLE_IAP_CERTS_URL, problems),
        groups_api=_url(raw, "GROUPS_API", GOOGLE_GROUPS_API, problems),
        problems=tuple(problems),
    )


@functools.cache
def iap_config() -> IAPConfig:
    return parse(getattr(settings, SETTING, None))


@receiver(setting_changed)
def _forget(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING:
        iap_config.cache_clear()
