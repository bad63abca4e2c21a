"""The ``immich-sidecar`` command line: one small function per command's arguments. Every
command's handler (``sidecar.cli.commands``) is set as its ``handler`` default."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from sidecar import __version__
from sidecar.cli import commands
from sidecar.config.durations import parse_duration, within
from sidecar.init.place import PLACES
from sidecar.ops.logging import LOG_FORMATS

DEFAULT_CONFIG = "config/config.yaml"
FALLBACK_CONFIG = "config.yaml"  # read when config/config.yaml is absent (a file beside you)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_LEVEL_HELP = "log level (default: $SIDECAR_LOG_LEVEL or INFO)"
LOG_FORMAT_HELP = "log lines as text or one JSON object each (default: $SIDECAR_LOG_FORMAT or text)"
MAX_SINCE = "365d"  # dry-run --since, as far back as poll.backfill may reach
CONFIG_HELP = (
    f"config file (default: $SIDECAR_CONFIG, else {DEFAULT_CONFIG}, else ./{FALLBACK_CONFIG})"
)


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
        _init,
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


def _command(
    subparsers: Subcommands, name: str, summary: str, description: str | None = None
) -> _CommandParser:
    """A subcommand whose one-line summary is its entry in ``--help`` and, unless it has more to
    say, its own help's description."""
    return subparsers.add_parser(
        name, help=summary, description=description or summary[:1].upper() + summary[1:] + "."
    )


def _default_config() -> str:
    """$SIDECAR_CONFIG, else config/config.yaml, else ./config.yaml when only that exists."""
    named = os.environ.get("SIDECAR_CONFIG")
    if named:
        return named
    if not os.path.exists(DEFAULT_CONFIG) and os.path.isfile(FALLBACK_CONFIG):
        return FALLBACK_CONFIG
    return DEFAULT_CONFIG


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", default=_default_config(), help=CONFIG_HELP)


def _init(subparsers: Subcommands) -> None:
    init = _command(subparsers, "init", "write a config.yaml from what your Immich has")
    init.add_argument(
        "--url", default=None, help="where Immich answers (default: $IMMICH_URL; asked on a tty)"
    )
    init.add_argument(
        "--api-key-file",
        default=None,
        metavar="FILE",
        help="a file holding the Immich API key (default: $IMMICH_API_KEY; asked on a tty)",
    )
    init.add_argument(
        "--out",
        default=_default_config(),
        metavar="PATH",
        help="the file to write, - for stdout (default: the file the other commands read)",
    )
    init.add_argument("--force", action="store_true", help="replace the file if it exists")
    init.add_argument(
        "--for",
        dest="place",
        choices=PLACES,
        default=None,
        help="settings for a laptop or a container (default: container inside Docker, "
        "Podman or Kubernetes, else laptop)",
    )
    init.set_defaults(handler=commands.init, default_out=_default_config())


def _run(subparsers: Subcommands) -> None:
    run = _command(subparsers, "run", "watch Immich and post to Discord until stopped")
    _config_option(run)
    run.add_argument(
        "--reset-state",
        action="store_true",
        help="move the state file aside (renamed, not deleted) and start a new one",
    )
    run.set_defaults(handler=commands.run)


def _dry_run(subparsers: Subcommands) -> None:
    dry_run = _command(subparsers, "dry-run", "poll once and print what would be posted")
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
    preview = _command(
        subparsers,
        "preview",
        "show a rule's or post's message as its targets send it",
        "Renders one message of the rule or post from sample data (or --asset), in each of "
        "its targets' languages and exactly as each target would send it: the JSON body for "
        "webhooks and the console, the Discord payload for Discord targets. Sends nothing.",
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
    explain = _command(
        subparsers,
        "explain",
        "say why an asset was or was not posted, rule by rule",
        "Reads the asset from Immich (every account that can see it) and the state "
        "file (read only: safe while run runs), then prints one block per rule: posted, queued "
        "(and what it waits for), will not post (and why), or not seen yet. Exit 0 whatever "
        "the verdict, 2 for a bad argument, 1 when Immich cannot be read.",
    )
    explain.add_argument("asset", metavar="ASSET", help="an asset id or an Immich link to it")
    _config_option(explain)
    explain.add_argument("--json", action="store_true", help="print the answer as JSON")
    explain.set_defaults(handler=commands.explain)


def _check_config(subparsers: Subcommands) -> None:
    check = _command(subparsers, "check-config", "validate a config file and summarise it")
    check.add_argument("path", nargs="?", default=None, metavar="PATH", help=CONFIG_HELP)
    check.add_argument("-c", "--config", default=None, help="same as PATH")
    check.set_defaults(handler=commands.check_config, default_config=_default_config())


def _doctor(subparsers: Subcommands) -> None:
    doctor = _command(subparsers, "doctor", "check the setup against the live Immich and Discord")
    _config_option(doctor)
    doctor.add_argument(
        "--send-test",
        metavar="TARGET",
        default=None,
        help="also post one clearly labelled test message to this target",
    )
    doctor.set_defaults(handler=commands.doctor)


def _schema(subparsers: Subcommands) -> None:
    schema = _command(subparsers, "schema", "print the config file's JSON Schema")
    schema.set_defaults(handler=commands.schema)


def _healthcheck(subparsers: Subcommands) -> None:
    health = _command(subparsers, "healthcheck", "exit 0 if the running sidecar answers /healthz")
    _config_option(health)
    health.set_defaults(handler=commands.healthcheck)


def _push(subparsers: Subcommands) -> None:
    push = _command(subparsers, "push", "set up or show Immich 3.x push (workflow webhooks)")
    actions = push.add_subparsers(
        dest="push_action", required=True, metavar="ACTION", parser_class=_CommandParser
    )
    setup = _command(actions, "setup", "create or update the sidecar's workflow in Immich")
    _config_option(setup)
    setup.add_argument(
        "--url",
        default=None,
        help="the push URL as Immich reaches it (default: http://immich-sidecar:PORT/hooks/immich)",
    )
    status = _command(actions, "status", "whether the workflow exists; the last push")
    _config_option(status)
    for action in (setup, status):
        action.set_defaults(handler=commands.push)


def _duration_argument(text: str) -> float:
    """``--since``: a duration of at most MAX_SINCE; a bare number is asked for its unit."""
    if text.strip().isdigit():
        number = text.strip()
        raise argparse.ArgumentTypeError(
            f"{number} has no unit: add one, e.g. {number}h (hours), {number}d (days) or "
            f"{number}m (minutes)"
        )
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not within(text, MAX_SINCE):
        raise argparse.ArgumentTypeError(
            f"{text} is longer than {MAX_SINCE}, the most it looks back"
        )
    return seconds
