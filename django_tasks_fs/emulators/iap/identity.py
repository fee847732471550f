"""Who the stand-in signs requests for: the user of the command line, or the one a
developer chose at ``/_iap/login`` (kept in a cookie of the proxy's own). Needs no
``cryptography``, so that the commands can check their arguments without it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode

#: The proxy's cookie; removed from the requests it forwards, like IAP's own cookies.
COOKIE_NAME = "GCP_IAP_STAND_IN_USER"

# Strict on purpose: the values end up in HTTP headers and in a cookie.
_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_DOMAIN = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """A signed-in user: an email and, for a Workspace account, its domain (``hd``)."""

    email: str
    hd: str | None = None

    @classmethod
    def parse(cls, email: str, hd: str | None = None) -> Identity:
        """Raise ValueError, naming the value, for an email or domain that is not one."""
        if not _EMAIL.fullmatch(email):
            raise ValueError(f"Not an email address: {email!r}.")
        if hd is not None and not _DOMAIN.fullmatch(hd):
            raise ValueError(f"Not a domain name: {hd!r} (hd is like 'example.com').")
        return cls(email=email, hd=hd)

    @classmethod
    def from_cookie(cls, value: str) -> Identity | None:
        """The identity kept in the proxy's cookie; None when it holds none (or garbage)."""
        fields = {key: values[0] for key, values in parse_qs(value).items()}
        try:
            return cls.parse(fields["email"], fields.get("hd"))
        except (KeyError, ValueError):
            return None

    def cookie_value(self) -> str:
        """This identity as the value of the proxy's cookie."""
        return urlencode({"email": self.email} | ({"hd": self.hd} if self.hd else {}))


def split_cookie_header(header: str) -> tuple[str | None, str]:
    """The value of the proxy's cookie in a ``Cookie`` header, and the header without it."""
    ours: str | None = None
    others = []
    for pair in header.split(";"):
        name, _, value = pair.strip().partition("=")
        if name == COOKIE_NAME:
            ours = value
        elif pair.strip():
            others.append(pair.strip())
    return ours, "; ".join(others)
