"""``manage.py tasks_iap_proxy``: the local IAP stand-in in front of ``runserver``, with
its audience, port and user taken from ``TASKS_FS_IAP`` when not given."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import NoReverseMatch, reverse

from ...emulators.errors import EmulatorError
from ...emulators.iap import cli
from ...emulators.iap.identity import Identity
from ...emulators.iap.urls import DEFAULT_PORT, certs_port


class Command(BaseCommand):
    help = (
        "Play Identity-Aware Proxy in front of the Django server (development only): "
        "forward every request with a signed X-Goog-IAP-JWT-Assertion, serve the keys at "
        "/_iap/public_key, print the TASKS_FS_IAP settings to use, stop on Ctrl-C or SIGTERM."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        cli.add_arguments(parser, from_settings=True)

    def handle(self, *args: Any, **options: Any) -> None:
        configured = _configured()
        audiences = _audiences(configured)
        audience = options["audience"] or next(iter(audiences), None)
        if not audience:
            raise CommandError(
                "No audience: pass --audience (e.g. --audience /projects/0/apps/local-dev) "
                'or set TASKS_FS_IAP["AUDIENCE"] in the settings.'
            )
        email = options["email"] or _first_email(configured.get("GRANTS"))
        if not email:
            raise CommandError(
                "No user: pass --email (e.g. --email alice@example.com) or name one in "
                'TASKS_FS_IAP["GRANTS"].'
            )
        certs_url = configured.get("CERTS_URL")
        port = options["port"]
        if port is None:
            port = (certs_port(certs_url) if isinstance(certs_url, str) else None) or DEFAULT_PORT

        def review(stand_in_certs_url: str) -> list[str]:
            warnings = []
            if not configured:
                warnings.append("the settings have no TASKS_FS_IAP yet: add the block above.")
            elif certs_url != stand_in_certs_url:
                warnings.append(
                    f'TASKS_FS_IAP["CERTS_URL"] is {certs_url!r}: the app will refuse this '
                    f"stand-in's tokens. Set it to {stand_in_certs_url!r} for local development."
                )
            if configured and audience not in audiences:
                warnings.append(
                    f'the audience {audience!r} is not in TASKS_FS_IAP["AUDIENCE"] '
                    f"{configured.get('AUDIENCE')!r}: the app will refuse the tokens."
                )
            return warnings

        run_settings = cli.Settings(
            host=options["host"],
            port=port,
            upstream=options["upstream"],
            identity=Identity(email=email, hd=options["hd"]),
            audience=audience,
            grants=configured.get("GRANTS"),
            open_path=_admin_path(),
            review=review,
        )
        try:
            cli.run(run_settings, self._say)
        except EmulatorError as exc:
            raise CommandError(str(exc)) from None

    def _say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()  # whoever reads a pipe sees "running" at once


def _configured() -> Mapping[str, Any]:
    value = getattr(settings, "TASKS_FS_IAP", None)
    return value if isinstance(value, Mapping) else {}


def _audiences(configured: Mapping[str, Any]) -> list[str]:
    value = configured.get("AUDIENCE")
    if isinstance(value, str):
        return [value]
    return [a for a in value if isinstance(a, str)] if isinstance(value, list | tuple) else []


def _first_email(grants: object) -> str | None:
    """The first user (not a ``domain:``) that GRANTS names."""
    if not isinstance(grants, Mapping):
        return None
    for key in grants:
        try:
            return Identity.parse(str(key)).email
        except ValueError:
            continue
    return None


def _admin_path() -> str:
    try:
        return reverse("admin:index")
    except NoReverseMatch:
        return "/"
