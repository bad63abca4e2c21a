"""The ``immich-sidecar`` command (run, dry-run, check-config, doctor, schema, healthcheck and
push setup|status): parse the arguments (``cli.parser``), set the logging up, run the command
(``cli.commands``), and turn whatever goes wrong into one line and an exit code."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from sidecar.cli.commands import EXIT_BAD_CONFIG, EXIT_FAILED, EXIT_INTERRUPTED
from sidecar.cli.parser import LOG_LEVELS, build_parser
from sidecar.config.model import ConfigError
from sidecar.engine.store.schema import StoreError
from sidecar.ops.logging import LOG_FORMATS, configure_logging

log = logging.getLogger("sidecar.cli.main")


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
    parser = build_parser()
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


def _print_problems(error: ConfigError) -> None:
    for line in error.report():
        print(line, file=sys.stderr)
