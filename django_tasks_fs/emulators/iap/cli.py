"""The stand-in's command, shared by ``python -m django_tasks_fs.emulators.iap`` and
``manage.py tasks_iap_proxy`` (which takes its defaults from ``TASKS_FS_IAP``)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..service import LOCALHOST, parse_host_port
from ..signals import StopRequested, stop_on_signals
from .identity import Identity
from .urls import CERTS_PATH, DEFAULT_PORT, DEFAULT_UPSTREAM, LOGIN_PATH, LOGOUT_PATH

READY = "Local IAP stand-in running; Ctrl-C (or SIGTERM) stops it."
EXAMPLE_AUDIENCE = "/projects/0/apps/local-dev"

Say = Callable[[str], None]
#: Given the stand-in's certs URL, the warnings about the project's settings.
Review = Callable[[str], list[str]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """The command line, parsed (and completed from the project's settings)."""

    host: str
    port: int
    upstream: str
    identity: Identity
    audience: str
    grants: Mapping[str, Any] | None = None  #: shown in the settings to paste
    open_path: str = "/"  #: the page to open first (the admin's, when it is known)
    review: Review = field(default=lambda certs_url: [])


def _email(value: str) -> str:
    try:
        return Identity.parse(value).email
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _domain(value: str) -> str:
    try:
        hd = Identity.parse("user@example.com", value).hd
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return str(hd)


def _upstream(value: str) -> str:
    try:
        return "{}:{}".format(*parse_host_port(value))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(value: str) -> int:
    if not value.isdigit() or int(value) > 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}")
    return int(value)


def add_arguments(parser: argparse.ArgumentParser, *, from_settings: bool = False) -> None:
    """The options of both commands; with ``from_settings`` (``manage.py``), --port,
    --email and --audience may be left out and come from ``TASKS_FS_IAP``."""
    parser.add_argument(
        "--host",
        default=LOCALHOST,
        help="address to listen on (default %(default)s; 0.0.0.0 for other machines)",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=None if from_settings else DEFAULT_PORT,
        help=(
            f"port to listen on (default: the port of TASKS_FS_IAP['CERTS_URL'] when it is "
            f"a local {CERTS_PATH} URL, else {DEFAULT_PORT}; 0: a free one)"
            if from_settings
            else f"port to listen on (default {DEFAULT_PORT}; 0: a free one)"
        ),
    )
    parser.add_argument(
        "--upstream",
        type=_upstream,
        default=DEFAULT_UPSTREAM,
        help="HOST:PORT of the Django server, e.g. manage.py runserver (default %(default)s)",
    )
    parser.add_argument(
        "--email",
        type=_email,
        required=not from_settings,
        help="the signed-in user (default: the first email in TASKS_FS_IAP['GRANTS'])"
        if from_settings
        else "the signed-in user, e.g. alice@example.com",
    )
    parser.add_argument(
        "--audience",
        required=not from_settings,
        help="the aud claim (default: the first of TASKS_FS_IAP['AUDIENCE'])"
        if from_settings
        else f"the aud claim: TASKS_FS_IAP['AUDIENCE'] of the app, e.g. {EXAMPLE_AUDIENCE}",
    )
    parser.add_argument(
        "--hd",
        type=_domain,
        default=None,
        help="the hd claim (Google Workspace domain) of the user; none by default",
    )


def run(settings: Settings, say: Say) -> None:
    """Start, print what to configure, serve until Ctrl-C or SIGTERM.

    Raises EmulatorError: MissingExtra without ``cryptography``, PortInUse.
    """
    # Imported here, once: without cryptography this raises MissingExtra, which the
    # commands print as an instruction (argument parsing above works without it).
    from .proxy import IAPProxy

    proxy = IAPProxy(
        settings.host,
        settings.port,
        settings.upstream,
        email=settings.identity.email,
        audience=settings.audience,
        hd=settings.identity.hd,
    )
    try:
        with stop_on_signals(), proxy:
            for line in describe(settings, proxy.url, proxy.certs_url):
                say(line)
            for warning in settings.review(proxy.certs_url):
                say(f"Warning: {warning}")
            say(READY)
            proxy.wait()
    except StopRequested:
        say("Stopped.")


def describe(settings: Settings, url: str, certs_url: str) -> list[str]:
    """What the developer needs: where to go, and the settings to paste."""
    hd = f" (hd {settings.identity.hd})" if settings.identity.hd else ""
    grants = settings.grants or {settings.identity.email: ["all"]}
    return [
        f"Local IAP stand-in (development only): {url} -> Django at {settings.upstream}",
        f"Requests are signed for {settings.identity.email}{hd}, audience {settings.audience}.",
        f"Open:         {url}{settings.open_path}",
        f"Switch user:  {url}{LOGIN_PATH}?email=bob@example.com",
        f"Sign out:     {url}{LOGOUT_PATH}",
        "",
        "In the settings of local development (production keeps Google's certs URL):",
        "TASKS_FS_IAP = {",
        f'    "AUDIENCE": {json.dumps(settings.audience)},',
        f'    "CERTS_URL": {json.dumps(certs_url)},',
        f'    "GRANTS": {json.dumps(grants)},',
        "}",
        "",
    ]


__all__ = ["READY", "Settings", "add_arguments", "describe", "run"]
