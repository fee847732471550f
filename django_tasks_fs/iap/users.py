"""The admin user of a request admitted by IAP: built per request, never stored.

It answers what Django's admin and templates ask of ``request.user`` (``is_staff``,
``has_perm``, ``get_username`` ...) from the verified assertion and the grants; it has
no row, no password and no session, so the admin needs no SQL database.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .assertion import Identity
from .config import APP, IAPConfig
from .groups import directory


def permissions_of(identity: Identity, config: IAPConfig) -> frozenset[str]:
    """Every Django permission the grants give this identity (groups asked last, and
    only when they could add something)."""
    grants = config.grants
    granted = set(grants.everyone) | grants.users.get(identity.email, frozenset())
    if identity.hosted_domain is not None:
        granted |= grants.domains.get(identity.hosted_domain, frozenset())
    for group, permissions in grants.groups.items():
        if not permissions <= granted and directory(config.groups_api).is_member(
            group, identity.email
        ):
            granted |= permissions
    return frozenset(granted)


class IAPUser:
    """A Google account admitted by IAP, with the permissions granted in settings."""

    is_active = True
    is_anonymous = False
    is_authenticated = True
    is_superuser = False
    pk = None
    id = None
    backend = "django_tasks_fs.iap"

    def __init__(self, identity: Identity, permissions: frozenset[str]) -> None:
        self.identity = identity
        self.email = identity.email
        self.username = identity.email
        self.permissions = permissions

    def __str__(self) -> str:
        return self.email

    def __repr__(self) -> str:
        return f"<IAPUser {self.email} {sorted(self.permissions)}>"

    @property
    def is_staff(self) -> bool:
        """The admin admits staff only: a user with no grant is refused at the door."""
        return bool(self.permissions)

    def get_username(self) -> str:
        return self.email

    def get_short_name(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return self.email

    def has_usable_password(self) -> bool:
        return False  # no "Change password" link: Google owns the credentials

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return perm in self.permissions

    def has_perms(self, perm_list: Iterable[str], obj: Any = None) -> bool:
        return all(self.has_perm(perm, obj) for perm in perm_list)

    def has_module_perms(self, app_label: str) -> bool:
        return app_label == APP and bool(self.permissions)

    def get_all_permissions(self, obj: Any = None) -> set[str]:
        return set(self.permissions)

    def get_user_permissions(self, obj: Any = None) -> set[str]:
        return set(self.permissions)

    def get_group_permissions(self, obj: Any = None) -> set[str]:
        return set()
