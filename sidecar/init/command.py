"""``immich-sidecar init``: ask Immich who and what is there and write a commented config.yaml.

Without a terminal it asks nothing: what it needs comes from ``--url``/``IMMICH_URL`` and
``--api-key-file``/``IMMICH_API_KEY``, and the place it runs from ``--for`` or from where it
runs now. With one, it asks for what is missing, and which rules to turn on.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TextIO

from sidecar.config.loader import load_settings, normalise_base_url
from sidecar.config.model import ConfigError, Secret
from sidecar.immich.client import ImmichClient
from sidecar.immich.errors import ImmichAuthError, ImmichError
from sidecar.immich.permissions import KEY_SETTINGS_HINT
from sidecar.immich.retry import quiet_library_retry_hooks
from sidecar.init.inventory import Inventory, take_inventory
from sidecar.init.place import PLACES, SETTINGS, detect_place
from sidecar.init.render import Source, render, rules_for, yaml_string
from sidecar.masking import display_url, without_credentials
from sidecar.ops.metrics import Metrics
from sidecar.wording import count

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SHOWN_CHOICES = 15  # rules offered by number when asking


class InitError(Exception):
    """Why init cannot go on, in one line, and its exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Request:
    url: str | None
    api_key_file: str | None
    out: str  # "-": stdout
    force: bool
    place: str | None
    default_out: str  # the file the other commands read without -c


class Questions:
    """What init asks; ``Terminal`` asks the person at it, this one asks nothing and takes
    every default."""

    interactive = False

    def ask(self, question: str, default: str) -> str:
        return default

    def secret(self, question: str) -> str:
        return ""


class Terminal(Questions):
    """Questions on the terminal (stderr), answers from stdin; the key is not echoed."""

    interactive = True

    def __init__(self, err: TextIO) -> None:
        self._err = err

    def ask(self, question: str, default: str) -> str:
        self._err.write(f"{question} [{default}]: " if default else f"{question}: ")
        self._err.flush()
        answer = sys.stdin.readline()
        return answer.strip() or default

    def secret(self, question: str) -> str:
        return getpass.getpass(f"{question}: ", stream=self._err).strip()


def run(
    request: Request,
    *,
    environ: Mapping[str, str] | None = None,
    questions: Questions | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``immich-sidecar init``; returns the exit code."""
    environ = os.environ if environ is None else environ
    err = err or sys.stderr
    if questions is None:
        tty = sys.stdin.isatty() and err.isatty()
        questions = Terminal(err) if tty else Questions()
    quiet_library_retry_hooks()
    try:
        return asyncio.run(_init(request, environ, questions, out or sys.stdout, err))
    except InitError as problem:
        print(f"immich-sidecar init: {problem}", file=err)
        return problem.code


async def _init(
    request: Request, environ: Mapping[str, str], questions: Questions, out: TextIO, err: TextIO
) -> int:
    target = None if request.out == "-" else Path(request.out)
    if target is not None and target.exists() and not request.force:
        answer = questions.ask(f"{target} exists; replace it? (y/n)", "n")
        if not questions.interactive or not answer.lower().startswith("y"):
            raise InitError(f"{target} exists; give --force to replace it, or --out another file")
    place = SETTINGS[_place(request, environ, questions)]
    url = _url(request, environ, questions, place.immich_url)
    key, key_line, key_note = _key(request, environ, questions, target)
    inventory = await _ask_immich(url, key)
    on = _chosen(inventory, questions, err)
    config_arg = "" if request.out == request.default_out else f"-c {request.out}"
    # A user and password in the URL are secrets: the file reads the URL from the environment.
    secret_url = without_credentials(url) != url
    url_yaml = "${IMMICH_URL}" if secret_url else yaml_string(url)
    source = Source(url_yaml, display_url(url), key_line, key_note, config_arg)
    text = render(inventory, place, source, on, date.today())
    _check(text, target, environ)
    if target is None:
        out.write(text)
    else:
        _write(target, text)
    _report(inventory, target, on, source, key_from_env=key_line.startswith("api_key:"), err=err)
    return EXIT_OK


def _place(request: Request, environ: Mapping[str, str], questions: Questions) -> str:
    detected = request.place or detect_place(environ)
    if request.place is not None or not questions.interactive:
        return detected
    while True:
        answer = questions.ask("Where will the sidecar run: laptop or container?", detected)
        if answer in PLACES:
            return answer


def _url(request: Request, environ: Mapping[str, str], questions: Questions, usual: str) -> str:
    url = request.url or environ.get("IMMICH_URL", "").strip()
    if not url and questions.interactive:
        url = questions.ask("Immich URL, as the sidecar will reach it", usual)
    if not url:
        raise InitError(f"no Immich URL: set IMMICH_URL or give --url (e.g. {usual})")
    if not url.startswith(("http://", "https://")):
        raise InitError(f"the Immich URL must start with http:// or https:// ({display_url(url)})")
    return normalise_base_url(url)


def _key(
    request: Request, environ: Mapping[str, str], questions: Questions, target: Path | None
) -> tuple[str, str, str]:
    """The key, the config line that gives it, and the comment above that line."""
    if request.api_key_file:
        given = Path(request.api_key_file)
        try:
            key = given.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as problem:
            raise InitError(f"cannot read the API key file {given}: {problem}") from None
        if not key:
            raise InitError(f"the API key file {given} is empty")
        shown = given if given.is_absolute() else given.resolve()
        note = "The key is read from this file when the sidecar starts."
        return key, f"api_key_file: {yaml_string(str(shown))}", note
    note = "The key comes from the environment when the sidecar starts; it is not stored here."
    key = environ.get("IMMICH_API_KEY", "").strip()
    if not key and questions.interactive:
        key = questions.secret("Immich API key (not shown, not written to the file)")
    if not key:
        raise InitError(
            "no Immich API key: set IMMICH_API_KEY or give --api-key-file FILE (make a key in "
            f"{KEY_SETTINGS_HINT})"
        )
    return key, "api_key: ${IMMICH_API_KEY}", note


async def _ask_immich(url: str, key: str) -> Inventory:
    shown = display_url(url)
    async with ImmichClient(
        url, Secret(key), Metrics(), timeout=15.0, max_attempts=2, max_retry_seconds=15.0
    ) as client:
        try:
            return await take_inventory(client)
        except ImmichAuthError as problem:
            raise InitError(
                f"Immich at {shown} refused the API key ({problem}): check it, or make a new "
                f"one in {KEY_SETTINGS_HINT}"
            ) from None
        except ImmichError as problem:
            raise InitError(
                f"cannot ask Immich at {shown} ({problem}): is Immich running, and is this the "
                "address it answers at from here?",
                EXIT_FAILED,
            ) from None


def _chosen(inventory: Inventory, questions: Questions, err: TextIO) -> set[str]:
    """The rules to write uncommented: none without a terminal; asked by number with one."""
    if not questions.interactive:
        return set()
    rules = rules_for(inventory)[: SHOWN_CHOICES + 1]
    print("Rules it can write (all commented out unless you pick them):", file=err)
    for number, rule in enumerate(rules, 1):
        print(f"  {number:>2}. {rule.lines[0].removeprefix('- name: ')}", file=err)
    while True:
        answer = questions.ask("Turn on which? Numbers like 1,3 (Enter: none)", "")
        picked = _numbers(answer, len(rules))
        if picked is not None:
            return {rules[n - 1].name for n in picked}
        print(f"  answer with numbers from 1 to {len(rules)}, separated by commas", file=err)


def _numbers(answer: str, highest: int) -> list[int] | None:
    parts = [p.strip() for p in answer.replace(" ", ",").split(",") if p.strip()]
    if not all(p.isdigit() and 1 <= int(p) <= highest for p in parts):
        return None
    return [int(p) for p in parts]


def _check(text: str, target: Path | None, environ: Mapping[str, str]) -> None:
    """The file must load as ``run`` loads it (its relative paths read from where it goes)."""
    folder = target.parent if target is not None else Path.cwd()
    folder.mkdir(parents=True, exist_ok=True)
    env = {**environ, "IMMICH_API_KEY": "checked-by-init", "IMMICH_URL": "http://checked"}
    with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".yaml", delete=False) as handle:
        handle.write(text)
    try:
        load_settings(Path(handle.name), env)
    except ConfigError as problem:  # a bug of init's: nothing is written
        raise InitError(f"the file it made does not load: {problem.lines()[0]}", 1) from None
    finally:
        os.unlink(handle.name)


def _write(target: Path, text: str) -> None:
    partial = target.with_name(f".{target.name}.init")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, target)
    except OSError as problem:
        partial.unlink(missing_ok=True)
        raise InitError(
            f"cannot write {target} ({problem.strerror or problem}); give --out another file, "
            "or --out - to print it",
            EXIT_FAILED,
        ) from None


def _report(
    inventory: Inventory,
    target: Path | None,
    on: set[str],
    source: Source,
    *,
    key_from_env: bool,
    err: TextIO,
) -> None:
    where = "the config" if target is None else str(target)
    people = count(len(inventory.people), "person", "people")
    albums = count(len(inventory.albums), "album")
    turned = f", {count(len(on), 'rule')} on" if on else ", every rule commented out"
    print(f"wrote {where}: {people} and {albums} as rules{turned}", file=err)
    arg = f" {source.config_arg}" if source.config_arg else ""
    print(f"next: immich-sidecar check-config{arg}; immich-sidecar doctor{arg}", file=err)
    if key_from_env:
        print("the API key is not in the file: set IMMICH_API_KEY where the sidecar runs", file=err)
    if source.url_yaml == "${IMMICH_URL}":
        print("the URL has a password: the file reads it from IMMICH_URL, set it there", file=err)
