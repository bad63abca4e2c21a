"""What each ``immich-sidecar`` command does, given its parsed arguments; each returns the exit
code. The commands that talk to Immich or Discord import their module when they run, so that
``schema`` or ``check-config`` start quickly."""

from __future__ import annotations

import argparse
import importlib
import sys
from datetime import UTC, datetime
from pathlib import Path

from sidecar.config.durations import format_duration
from sidecar.config.ingest_checks import ingest_lines
from sidecar.config.loader import load_settings
from sidecar.config.model import ConfigError, Settings
from sidecar.config.schema import schema_text
from sidecar.ops.healthcheck import healthz_url, probe
from sidecar.targets.registry import KINDS, kind_of
from sidecar.wording import count as _count

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_CONFIG = 2
EXIT_INTERRUPTED = 130

# check-config reads only the file: an OK must not read as "Immich and Discord agree".
OFFLINE_NOTE = (
    "This was an offline check of the file: Immich and Discord were not contacted, so the API "
    "key, the person and album names and the Discord channels are not checked. Run "
    "`immich-sidecar doctor` to check them against the live services, or `immich-sidecar "
    "dry-run` to see what would be posted."
)


def init(args: argparse.Namespace) -> int:
    command = importlib.import_module("sidecar.init.command")
    request = command.Request(
        url=args.url,
        api_key_file=args.api_key_file,
        out=args.out,
        force=args.force,
        place=args.place,
        default_out=args.default_out,
    )
    return _exit_code(command.run(request))


def check_config(args: argparse.Namespace) -> int:
    if args.path and args.config and args.path != args.config:
        print("immich-sidecar: give the config as PATH or -c, not both", file=sys.stderr)
        return EXIT_BAD_CONFIG
    path = Path(args.path or args.config or args.default_config)
    settings = load_settings(path)
    print(f"{path}: OK: {describe(settings)}")
    if len(settings.immich.accounts) > 1:  # which account each name is in needs Immich: doctor
        print(
            f"Immich accounts: {', '.join(settings.immich.account_names)}; run doctor to see "
            "in which of them each person name is found"
        )
    posts = importlib.import_module("sidecar.engine.posts.plan")
    for line in posts.next_run_lines(settings, datetime.now(UTC)):
        print(line)
    for line in ingest_lines(settings):
        print(line)
    print(OFFLINE_NOTE)
    return EXIT_OK


def schema(args: argparse.Namespace) -> int:
    sys.stdout.write(schema_text())
    return EXIT_OK


def healthcheck(args: argparse.Namespace) -> int:
    # Exit 1, never 2: container engines read any other non-zero code as "reserved".
    try:
        metrics = load_settings(Path(args.config)).metrics
    except ConfigError as exc:
        print(f"unhealthy: {exc.lines()[0]}", file=sys.stderr)
        return EXIT_FAILED
    problem = probe(metrics)
    if problem is not None:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return EXIT_FAILED
    print(f"healthy: {healthz_url(metrics)}")
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    app = importlib.import_module("sidecar.app")
    return _exit_code(app.run_forever(Path(args.config), reset_state=args.reset_state))


def dry_run(args: argparse.Namespace) -> int:
    path = Path(args.config)
    if args.posts:
        return _exit_code(
            importlib.import_module("sidecar.engine.posts.dry_run").dry_run_posts(path)
        )
    since = args.since if args.since is not None else load_settings(path).poll.lookback
    dry_run = importlib.import_module("sidecar.engine.dry_run")
    return _exit_code(dry_run.dry_run(path, since))


def preview(args: argparse.Namespace) -> int:
    preview = importlib.import_module("sidecar.engine.preview")
    return _exit_code(preview.preview(Path(args.config), args.name, args.locale, args.asset))


def explain(args: argparse.Namespace) -> int:
    command = importlib.import_module("sidecar.engine.explain.command")
    return _exit_code(command.explain(Path(args.config), args.asset, as_json=args.json))


def doctor(args: argparse.Namespace) -> int:
    doctor = importlib.import_module("sidecar.doctor.runner")
    return _exit_code(doctor.run(Path(args.config), send_test_to=args.send_test))


def push(args: argparse.Namespace) -> int:
    push = importlib.import_module("sidecar.push.setup")
    url = getattr(args, "url", None)
    return _exit_code(push.run(Path(args.config), args.push_action, url))


def _exit_code(result: object) -> int:
    return result if isinstance(result, int) else EXIT_OK


def describe(settings: Settings) -> str:
    """One line about a loaded config, e.g. ``2 rules, 3 targets (1 bot channel, ...)``.

    Names and counts only: never a secret.
    """
    targets = list(settings.targets.values())
    kinds = [_count(sum(kind_of(t) is kind for t in targets), *kind.label) for kind in KINDS]
    breakdown = ", ".join(kind for kind in kinds if not kind.startswith("0 "))
    return (
        f"{_count(len(settings.rules), 'rule')}, {_count(len(targets), 'target')} ({breakdown}), "
        f"poll every {format_duration(settings.poll.interval)}"
    )
