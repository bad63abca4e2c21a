"""The ``immich-sidecar`` command line: one small function per command's arguments. Every
command's handler (``sidecar.cli.commands``) is set as its ``handler`` default."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from sidecar import __version__
from sidecar.cli import commands
from sidecar.config.durations import parse_duration
from sidecar.ops.logging import LOG_FORMATS

DEFAULT_CONFIG = "config/config.yaml"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_LEVEL_HELP = "log level (default: $SIDECAR_LOG_LEVEL or INFO)"
LOG_FORMAT_HELP = "log lines as text or one JSON object each (default: $SIDECAR_LOG_FORMAT or text)"
CONFIG_HELP = f"config file (default: $SIDECAR_CONFIG or {DEFAULT_CONFIG})"


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


if TYPE_CHECKING:  # argparse's class is generic only to the type checker
    Subcommands = argparse._SubParsersAction[_CommandParser]


def build_parser() -> argparse.ArgumentParser:
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
    subparsers = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_CommandParser
    )
    for add in (
        _run,
        _dry_run,
        _preview,
        _explain,
        _check_config,
        _doctor,
        _schema,
        _healthcheck,
        _push,
    ):
        add(subparsers)
    return parser


def _default_config() -> str:
    return os.environ.get("SIDECAR_CONFIG") or DEFAULT_CONFIG


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", default=_default_config(), help=CONFIG_HELP)


def _run(subparsers: Subcommands) -> None:
    run = subparsers.add_parser("run", help="watch Immich and post to Discord until stopped")
    _config_option(run)
    run.add_argument(
        "--reset-state",
        action="store_true",
        help="move the state file aside (renamed, not deleted) and start a new one",
    )
    run.set_defaults(handler=commands.run)


def _dry_run(subparsers: Subcommands) -> None:
    dry_run = subparsers.add_parser(
        "dry-run", help="poll once and print what would be posted, posting nothing"
    )
    _config_option(dry_run)
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
    dry_run.set_defaults(handler=commands.dry_run)


def _preview(subparsers: Subcommands) -> None:
    preview = subparsers.add_parser(
        "preview",
        help="render one message of a rule or post as each of its targets would send it",
    )
    _config_option(preview)
    preview.add_argument("name", metavar="RULE_OR_POST", help="a rule's or a post's name")
    preview.add_argument(
        "--locale", default=None, metavar="TAG", help="in this language (BCP 47), e.g. de, pt-BR"
    )
    preview.add_argument(
        "--asset", default=None, metavar="ID", help="about this Immich asset instead of samples"
    )
    preview.set_defaults(handler=commands.preview)


def _explain(subparsers: Subcommands) -> None:
    explain = subparsers.add_parser(
        "explain",
        help="say why an asset was posted, waits, or will not be posted, rule by rule",
        description="Reads the asset from Immich (every account that can see it) and the state "
        "file (read only: safe while run runs), then prints one block per rule: posted, queued "
        "(and what it waits for), will not post (and why), or not seen yet. Exit 0 whatever "
        "the verdict, 2 for a bad argument, 1 when Immich cannot be read.",
    )
    explain.add_argument("asset", metavar="ASSET", help="an asset id or an Immich link to it")
    _config_option(explain)
    explain.add_argument("--json", action="store_true", help="print the answer as JSON")
    explain.set_defaults(handler=commands.explain)


def _check_config(subparsers: Subcommands) -> None:
    check = subparsers.add_parser("check-config", help="validate a config file and summarise it")
    check.add_argument("path", nargs="?", default=None, metavar="PATH", help=CONFIG_HELP)
    check.add_argument("-c", "--config", default=None, help="same as PATH")
    check.set_defaults(handler=commands.check_config, default_config=_default_config())


def _doctor(subparsers: Subcommands) -> None:
    doctor = subparsers.add_parser(
        "doctor", help="check the setup against the live Immich and Discord, one line per check"
    )
    _config_option(doctor)
    doctor.add_argument(
        "--send-test",
        metavar="TARGET",
        default=None,
        help="also post one clearly labelled test message to this target",
    )
    doctor.set_defaults(handler=commands.doctor)


def _schema(subparsers: Subcommands) -> None:
    schema = subparsers.add_parser("schema", help="print the config file's JSON Schema")
    schema.set_defaults(handler=commands.schema)


def _healthcheck(subparsers: Subcommands) -> None:
    health = subparsers.add_parser(
        "healthcheck", help="exit 0 if the running sidecar answers /healthz on metrics.listen"
    )
    _config_option(health)
    health.set_defaults(handler=commands.healthcheck)


def _push(subparsers: Subcommands) -> None:
    push = subparsers.add_parser("push", help="set up or show Immich 3.x push (workflow webhooks)")
    actions = push.add_subparsers(
        dest="push_action", required=True, metavar="ACTION", parser_class=_CommandParser
    )
    setup = actions.add_parser(
        "setup", help="create or update the sidecar's workflow for the API key's Immich user"
    )
    _config_option(setup)
    setup.add_argument(
        "--url",
        default=None,
        help="the push URL as Immich reaches it (default: http://immich-sidecar:PORT/hooks/immich)",
    )
    status = actions.add_parser("status", help="whether the workflow exists; the last push")
    _config_option(status)
    for action in (setup, status):
        action.set_defaults(handler=commands.push)


def _duration_argument(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
