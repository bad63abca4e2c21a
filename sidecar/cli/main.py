"""The ``immich-sidecar`` command: run, dry-run, check-config, doctor, schema, healthcheck and
push (setup, status)."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sidecar import __version__
from sidecar.config.durations import format_duration, parse_duration
from sidecar.config.ingest_checks import ingest_lines
from sidecar.config.loader import load_settings
from sidecar.config.model import ConfigError, Settings
from sidecar.config.schema import schema_text
from sidecar.engine.store.schema import StoreError
from sidecar.ops.healthcheck import healthz_url, probe
from sidecar.ops.logging import LOG_FORMATS, configure_logging
from sidecar.targets.registry import KINDS, kind_of
from sidecar.wording import count as _count

DEFAULT_CONFIG = "config/config.yaml"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_LEVEL_HELP = "log level (default: $SIDECAR_LOG_LEVEL or INFO)"
LOG_FORMAT_HELP = "log lines as text or one JSON object each (default: $SIDECAR_LOG_FORMAT or text)"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_CONFIG = 2
EXIT_INTERRUPTED = 130

log = logging.getLogger("sidecar.cli.main")

# check-config reads only the file: an OK must not read as "Immich and Discord agree".
OFFLINE_NOTE = (
    "This was an offline check of the file: Immich and Discord were not contacted, so the API "
    "key, the person and album names and the Discord channels are not checked. Run "
    "`immich-sidecar doctor` to check them against the live services, or `immich-sidecar "
    "dry-run` to see what would be posted."
)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = _main(argv)
        sys.stdout.flush()  # here, not at exit, so that a reader gone is caught below
    except BrokenPipeError:
        # The reader stopped reading (`immich-sidecar schema | head -1`): nothing is wrong with
        # the sidecar. Python's own recipe (docs: "Note on SIGPIPE"): the output still buffered
        # goes to /dev/null instead of raising again at exit, and the exit is quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    return code


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed usage or help already
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_CONFIG
    if args.log_level not in LOG_LEVELS:  # a bad $SIDECAR_LOG_LEVEL skips argparse's check
        value = os.environ.get("SIDECAR_LOG_LEVEL", "")
        print(
            f"immich-sidecar: the environment variable SIDECAR_LOG_LEVEL is {value[:40]!r}, "
            f"which is not a log level: set it to one of {', '.join(LOG_LEVELS)}, or unset it "
            "for INFO",
            file=sys.stderr,
        )
        return EXIT_BAD_CONFIG
    if args.log_format not in LOG_FORMATS:  # a bad $SIDECAR_LOG_FORMAT skips argparse's check
        value = os.environ.get("SIDECAR_LOG_FORMAT", "")
        print(
            f"immich-sidecar: the environment variable SIDECAR_LOG_FORMAT is {value[:40]!r}, "
            f"which is not a log format: set it to {' or '.join(LOG_FORMATS)}, or unset it "
            "for text",
            file=sys.stderr,
        )
        return EXIT_BAD_CONFIG
    configure_logging(args.log_level, args.log_format, sys.stderr)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        _print_problems(exc)
        return EXIT_BAD_CONFIG
    except StoreError as exc:  # state.path unusable: a config problem, said in one line
        print(f"immich-sidecar: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        raise  # the reader of stdout is gone: main() ends quietly
    except Exception as exc:  # the last line of defence: one line, the traceback only on DEBUG
        log.debug("unexpected error", exc_info=True)
        print(f"immich-sidecar: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED


class _CommandParser(argparse.ArgumentParser):
    """A command's parser: it takes --log-level after the command too (`run --log-level DEBUG`).
    SUPPRESS keeps the value given before the command, or the default, when not repeated."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_argument(
            "--log-level",
            type=str.upper,
            choices=LOG_LEVELS,
            default=argparse.SUPPRESS,
            help=LOG_LEVEL_HELP,
        )
        self.add_argument(
            "--log-format",
            type=str.lower,
            choices=LOG_FORMATS,
            default=argparse.SUPPRESS,
            help=LOG_FORMAT_HELP,
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="immich-sidecar",
        description="Posts new Immich photos and videos that match watch rules to Discord.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default=os.environ.get("SIDECAR_LOG_LEVEL", "INFO").upper(),
        help=LOG_LEVEL_HELP,
    )
    parser.add_argument(
        "--log-format",
        type=str.lower,
        choices=LOG_FORMATS,
        default=os.environ.get("SIDECAR_LOG_FORMAT", "text").lower(),
        help=LOG_FORMAT_HELP,
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_CommandParser
    )
    default_config = os.environ.get("SIDECAR_CONFIG") or DEFAULT_CONFIG
    config_help = f"config file (default: $SIDECAR_CONFIG or {DEFAULT_CONFIG})"

    run = commands.add_parser("run", help="watch Immich and post to Discord until stopped")
    run.add_argument("-c", "--config", default=default_config, help=config_help)
    run.add_argument(
        "--reset-state",
        action="store_true",
        help="move the state file aside (renamed, not deleted) and start a new one",
    )
    run.set_defaults(handler=_run)

    dry_run = commands.add_parser(
        "dry-run", help="poll once and print what would be posted, posting nothing"
    )
    dry_run.add_argument("-c", "--config", default=default_config, help=config_help)
    dry_run.add_argument(
        "--since",
        type=_duration_argument,
        default=None,
        metavar="DURATION",
        help="look this far back, e.g. 2h (default: poll.lookback)",
    )
    dry_run.add_argument(
        "--posts",
        action="store_true",
        help="show what each scheduled post would send today instead (nothing is stored)",
    )
    dry_run.set_defaults(handler=_dry_run)

    check = commands.add_parser("check-config", help="validate a config file and summarise it")
    check.add_argument("path", nargs="?", default=None, metavar="PATH", help=config_help)
    check.add_argument("-c", "--config", default=None, help="same as PATH")
    check.set_defaults(handler=_check_config, default_config=default_config)

    doctor = commands.add_parser(
        "doctor", help="check the setup against the live Immich and Discord, one line per check"
    )
    doctor.add_argument("-c", "--config", default=default_config, help=config_help)
    doctor.add_argument(
        "--send-test",
        metavar="TARGET",
        default=None,
        help="also post one clearly labelled test message to this target",
    )
    doctor.set_defaults(handler=_doctor)

    schema = commands.add_parser("schema", help="print the config file's JSON Schema")
    schema.set_defaults(handler=_schema)

    health = commands.add_parser(
        "healthcheck", help="exit 0 if the running sidecar answers /healthz on metrics.listen"
    )
    health.add_argument("-c", "--config", default=default_config, help=config_help)
    health.set_defaults(handler=_healthcheck)

    push = commands.add_parser("push", help="set up or show Immich 3.x push (workflow webhooks)")
    actions = push.add_subparsers(
        dest="push_action", required=True, metavar="ACTION", parser_class=_CommandParser
    )
    setup = actions.add_parser(
        "setup", help="create or update the sidecar's workflow for the API key's Immich user"
    )
    setup.add_argument("-c", "--config", default=default_config, help=config_help)
    setup.add_argument(
        "--url",
        default=None,
        help="the push URL as Immich reaches it (default: http://immich-sidecar:PORT/hooks/immich)",
    )
    status = actions.add_parser("status", help="whether the workflow exists; the last push")
    status.add_argument("-c", "--config", default=default_config, help=config_help)
    for action in (setup, status):
        action.set_defaults(handler=_push)
    return parser


def _duration_argument(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _check_config(args: argparse.Namespace) -> int:
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


def _schema(args: argparse.Namespace) -> int:
    sys.stdout.write(schema_text())
    return EXIT_OK


def _healthcheck(args: argparse.Namespace) -> int:
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


def _run(args: argparse.Namespace) -> int:
    app = importlib.import_module("sidecar.app")
    return _exit_code(app.run_forever(Path(args.config), reset_state=args.reset_state))


def _dry_run(args: argparse.Namespace) -> int:
    path = Path(args.config)
    if args.posts:
        return _exit_code(
            importlib.import_module("sidecar.engine.posts.dry_run").dry_run_posts(path)
        )
    since = args.since if args.since is not None else load_settings(path).poll.lookback
    dry_run = importlib.import_module("sidecar.engine.dry_run")
    return _exit_code(dry_run.dry_run(path, since))


def _doctor(args: argparse.Namespace) -> int:
    doctor = importlib.import_module("sidecar.doctor.diagnose")
    return _exit_code(doctor.run(Path(args.config), send_test_to=args.send_test))


def _push(args: argparse.Namespace) -> int:
    push = importlib.import_module("sidecar.push.setup")
    url = getattr(args, "url", None)
    return _exit_code(push.run(Path(args.config), args.push_action, url))


def _exit_code(result: object) -> int:
    return result if isinstance(result, int) else EXIT_OK


def _print_problems(error: ConfigError) -> None:
    for line in error.lines():
        print(line, file=sys.stderr)


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
