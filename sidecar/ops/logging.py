"""How the sidecar's log lines look: text for people (the default), or one JSON object per line
for Loki, Elasticsearch and other log stores (``--log-format json``).

In JSON, the fields a line was logged with (``extra=log_fields(rule=..., target=...)``) become
keys of their own, so a query can select ``target="grandma"`` without parsing the message.
Only the names in ``FIELDS`` are passed that way, and none of them ever holds a secret.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

from sidecar.masking import mask_url_credentials

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FIELDS = frozenset({"rule", "target", "endpoint", "reason", "asset_id"})
# These libraries log every request and every job at INFO; the sidecar logs what matters itself
# (and httpx would print webhook URLs, which are secrets). watchfiles logs every change in the
# config folder at DEBUG: a log file kept there would feed itself.
NOISY_LOGGERS = ("httpx", "httpcore", "apscheduler", "discord.gateway", "watchfiles")


def log_fields(**fields: str | int | None) -> dict[str, str | int]:
    """``extra=`` for a log call: the structured fields, those that are set."""
    unknown = set(fields) - FIELDS
    if unknown:
        raise ValueError(f"not a log field: {', '.join(sorted(unknown))}")
    return {key: value for key, value in fields.items() if value is not None}


class _MaskingFormatter(logging.Formatter):
    """Another formatter's lines with the password of every URL in them hidden: a URL given as
    ``http://user:password@host`` may reach a log line through any library's message."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self._inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return mask_url_credentials(self._inner.format(record))


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return _MaskingFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    return _MaskingFormatter(logging.Formatter(TEXT_FORMAT))


def configure_logging(level: str, log_format: str = "text", stream: TextIO | None = None) -> None:
    """One handler on the root logger, in the chosen format, at the chosen level."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(log_format))
    logging.basicConfig(level=level, handlers=[handler])
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)


SKIPPED_RUN = "maximum number of running instances reached"


class SchedulerLog(logging.LoggerAdapter[logging.Logger]):
    """APScheduler's logger (its ``logger`` option), saying its "skipped: maximum number of
    running instances reached" warning as what it means here, at DEBUG. A poll that outlasts
    the interval (Immich slow, or retrying through an outage) makes the next one wait; the
    outage itself is said once by the sidecar, and a warning per skipped poll said nothing
    more. Everything else APScheduler says passes unchanged."""

    def __init__(self) -> None:
        super().__init__(logging.getLogger("apscheduler.scheduler"), {})

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        return msg, kwargs

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if isinstance(msg, str) and SKIPPED_RUN in msg:
            job = args[0] if args else None
            logging.getLogger("sidecar.scheduler").debug(
                "%s: run skipped, the previous run is still going (Immich slow or retrying)",
                getattr(job, "id", job),
            )
            return
        super().log(level, msg, *args, **kwargs)
