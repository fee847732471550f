"""The answers the stand-in gives itself instead of the app: the public keys, user
switching, signing out, and what went wrong with the upstream."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html import escape

from .identity import COOKIE_NAME, Identity
from .signer import IAPSigner
from .urls import LOGIN_PATH

#: Like Google's: verifiers may cache the keys this long (seconds).
CERTS_MAX_AGE = 300


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """A complete response of the proxy's own."""

    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    cache: str = "no-store"


def certs(signer: IAPSigner) -> Reply:
    """The certs document, in the format of https://www.gstatic.com/iap/verify/public_key."""
    return Reply(
        status=200,
        body=json.dumps(signer.public_keys()).encode(),
        content_type="application/json; charset=utf-8",
        cache=f"public, max-age={CERTS_MAX_AGE}",
    )


def _page(
    status: int,
    title: str,
    paragraphs: list[str],
    *,
    headers: list[tuple[str, str]] | None = None,
) -> Reply:
    html = "".join(f"<p>{p}</p>\n" for p in paragraphs)
    body = (
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"</head>\n<body><h1>{escape(title)}</h1>\n{html}</body></html>\n"
    )
    return Reply(status=status, body=body.encode(), headers=headers or [])


def _current(identity: Identity) -> str:
    hd = f" (hd {escape(identity.hd)})" if identity.hd else ""
    return f"<code>{escape(identity.email)}</code>{hd}"


def login_form(current: Identity) -> Reply:
    """A small form to choose the user of the following requests."""
    form = (
        f"<form method='get' action='{LOGIN_PATH}'>"
        "<label>email <input name='email' required></label> "
        "<label>hd (Workspace domain, optional) <input name='hd'></label> "
        "<input type='hidden' name='next' value='/'><button>Sign in</button></form>"
    )
    return _page(
        200, "Local IAP stand-in: choose a user", [f"Signed in as {_current(current)}.", form]
    )


def signed_in(identity: Identity, next_path: str) -> Reply:
    """Keep ``identity`` in the proxy's cookie and go on to ``next_path``."""
    cookie = f"{COOKIE_NAME}={identity.cookie_value()}; Path=/; HttpOnly; SameSite=Lax"
    return _page(
        302,
        "Signed in",
        [f"Signed in to the local IAP stand-in as {_current(identity)}."],
        headers=[("Location", next_path), ("Set-Cookie", cookie)],
    )


def signed_out(default: Identity) -> Reply:
    """Forget the chosen user; the next request is the command line's user again."""
    cookie = f"{COOKIE_NAME}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"
    return _page(
        200,
        "Signed out",
        [
            "You are signed out of the local IAP stand-in.",
            f"Requests through it are signed for its default user {_current(default)} "
            f"again. <a href='/'>Back to the site</a>, or "
            f"<a href='{LOGIN_PATH}'>choose another user</a>.",
        ],
        headers=[("Set-Cookie", cookie)],
    )


def text(status: int, message: str, *, headers: list[tuple[str, str]] | None = None) -> Reply:
    """A plain-text answer, for errors."""
    return Reply(
        status=status,
        body=(message + "\n").encode(),
        content_type="text/plain; charset=utf-8",
        headers=headers or [],
    )


def upstream_unreachable(upstream: str, exc: BaseException) -> Reply:
    """502: nothing answers at the upstream address."""
    return text(
        502,
        f"Bad gateway: the local IAP stand-in cannot reach the Django server at {upstream} "
        f"({exc.__class__.__name__}: {exc}).\n"
        f"Start it there, e.g. 'python manage.py runserver {upstream}', or point the "
        f"stand-in elsewhere with --upstream HOST:PORT.",
    )


def upstream_failed(upstream: str, exc: BaseException) -> Reply:
    """502: the upstream accepted the connection but gave no valid answer."""
    return text(
        502,
        f"Bad gateway: the Django server at {upstream} gave no valid answer "
        f"({exc.__class__.__name__}: {exc}). See its console for the error.",
    )
