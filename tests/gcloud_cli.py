"""Check ``gcloud`` command lines offline, against the Google Cloud CLI installed here.

For each command line: ``gcloud <command> --help`` must succeed (the groups and the
command exist), its help must list every ``--flag`` used (gcloud-wide flags included,
``--[no-]x`` covering both forms), and a value given to a flag whose help says
"must be one of: ..." must be one of those. Nothing reaches Google: the help is local,
prompts are off and the configuration directory is a fresh temporary one.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;]*m")
FLAG = re.compile(r"--(\[no-\])?([a-z0-9][a-z0-9-]*)")
#: A flag's own paragraph in the help: its line, then the indented lines below it.
DEFINITION = r"^ {5}--(?:\[no-\])?%s\b.*?(?=^ {5}\S|\Z)"
CHOICES = re.compile(r"\s*(.*?)\.(?:\s|$)", re.S)
CHOICE_ITEM = re.compile(r"^ {12}(\S+)$", re.M)
CONSOLE_BLOCK = re.compile(r"```console\n(.*?)```", re.S)
#: ``NAME=$(gcloud ...)``: a command whose output a variable keeps.
SUBSTITUTION = re.compile(r"^\w+=\$\((gcloud .*)\)$")
#: Seconds one ``--help`` may take (about 1 s each on a warm machine).
HELP_TIMEOUT = 120


def console_commands(markdown: str) -> list[str]:
    """The ``gcloud`` command lines of a page's console blocks, continuations joined."""
    commands: list[str] = []
    for block in CONSOLE_BLOCK.findall(markdown):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            substituted = SUBSTITUTION.match(line)
            line = substituted.group(1) if substituted else line
            if line.startswith("gcloud "):
                commands.append(" ".join(line.split()))
    return commands


def command_path(command: str) -> tuple[str, ...]:
    """The words before the first flag: groups, command and positional arguments."""
    words: list[str] = []
    for token in shlex.split(command)[1:]:
        if token.startswith("-"):
            break
        words.append(token)
    return tuple(words)


def flags(command: str) -> list[tuple[str, str | None]]:
    """Every ``--flag`` of ``command`` with its ``=value`` (None for a bare flag)."""
    found = []
    for token in shlex.split(command):
        if token.startswith("--"):
            name, equals, value = token.partition("=")
            found.append((name, value if equals else None))
    return found


@dataclass(frozen=True, slots=True)
class Help:
    """What ``gcloud <path> --help`` answered."""

    returncode: int
    text: str  #: stdout without terminal styling, or stderr when it failed

    @property
    def name(self) -> str:
        """The command's own name line, e.g. ``gcloud run deploy``."""
        match = re.search(r"^NAME\n\s+(gcloud[^\n]*?) - ", self.text, re.M)
        return match.group(1) if match else ""

    def accepted(self) -> set[str]:
        names: set[str] = set()
        for negatable, name in FLAG.findall(self.text):
            names.add(f"--{name}")
            if negatable:
                names.add(f"--no-{name}")
        return names

    def choices(self, flag: str) -> list[str] | None:
        """The values ``flag`` accepts when its help enumerates them."""
        definition = re.search(DEFINITION % re.escape(flag[2:]), self.text, re.M | re.S)
        if definition is None or "must be one of:" not in definition.group(0):
            return None
        rest = definition.group(0).split("must be one of:", 1)[1]
        if rest.startswith("\n\n"):  # a definition list: each value on its own line
            return CHOICE_ITEM.findall(rest)
        match = CHOICES.match(rest)
        return [c.strip() for c in " ".join(match.group(1).split()).split(",")] if match else None


def environment(config_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CLOUDSDK_CONFIG": str(config_dir),
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1",
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "1",
        "CLOUDSDK_CORE_CHECK_GCE_METADATA": "0",
    }


def read_help(path: tuple[str, ...], env: dict[str, str]) -> Help:
    done = subprocess.run(
        ["gcloud", *path, "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=HELP_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    text = done.stdout if done.returncode == 0 else done.stderr
    return Help(done.returncode, ANSI.sub("", text))


def read_helps(
    paths: Iterable[tuple[str, ...]], config_dir: Path, *, workers: int = 8
) -> dict[tuple[str, ...], Help]:
    """The help of each distinct path, read in parallel (gcloud starts in about 1 s)."""
    unique = sorted(set(paths))
    env = environment(config_dir)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(unique, pool.map(lambda p: read_help(p, env), unique), strict=True))


def problems(command: str, found: Help) -> list[str]:
    """What is wrong with ``command`` according to its help (empty: nothing)."""
    if found.returncode != 0:
        return [f"gcloud rejects the command: {found.text.strip()}"]
    accepted = found.accepted()
    wrong: list[str] = []
    for flag, value in flags(command):
        if flag not in accepted:
            wrong.append(f"{found.name} has no flag {flag}")
            continue
        choices = found.choices(flag) if value is not None else None
        if choices is not None and value not in choices:
            wrong.append(f"{flag}={value}: {found.name} accepts one of {', '.join(choices)}")
    return wrong
