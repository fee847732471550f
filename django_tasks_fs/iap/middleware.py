"""``IAPAuthenticationMiddleware``: ``request.user`` from the IAP assertion, no session.

It stands in for Django's ``AuthenticationMiddleware`` (and subclasses it, so the
admin's checks accept it). Nothing is refused here: the user is anonymous when the
assertion is missing or invalid (``request.iap_refusal`` says why), and the admin site
(``django_tasks_fs.admin_site``) answers 401/403. Other views, such as the task
endpoints with their own OIDC tokens, are not affected.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from .assertion import HEADER, AssertionRefused, verify_assertion
from .config import SETTING, iap_config
from .users import IAPUser, permissions_of

logger = logging.getLogger(__name__)


def authenticate(request: HttpRequest) -> IAPUser | AnonymousUser:
    """The request's IAP user, or AnonymousUser with ``request.iap_refusal`` set."""
    config = iap_config()
    try:
        if config.problems or not config.configured:
            raise AssertionRefused(
                f"settings.{SETTING} is missing or invalid (see manage.py check)"
            )
        identity = verify_assertion(request.META.get(HEADER), config)
    except AssertionRefused as exc:
        request.iap_refusal = str(exc)  # type: ignore[attr-defined]
        if HEADER in request.META:
            logger.warning("IAP assertion refused for %s: %s", request.path, exc)
        return AnonymousUser()
    return IAPUser(identity, permissions_of(identity, config))


class IAPAuthenticationMiddleware(AuthenticationMiddleware):
    def process_request(self, request: HttpRequest) -> None:
        user = SimpleLazyObject(lambda: authenticate(request))
        request.user = user  # type: ignore[assignment]

        def resolve() -> Any:
            user.is_authenticated  # noqa: B018  (evaluates the lazy object once)
            return user._wrapped

        request.auser = sync_to_async(resolve)
