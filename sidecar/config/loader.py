"""Turn one config file into Settings: read, validate against the schema, cross-check, resolve.

Every problem is collected (not just the first) and raised together as one ConfigError whose
lines read ``config.yaml:14: rules[0].targets[1]: 'famly' is not a defined target``.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import os
import re
import stat
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import time
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from jsonschema import (  # type: ignore[import-untyped,unused-ignore]
    Draft202012Validator,
    ValidationError,
)

from sidecar.config.durations import parse_duration
from sidecar.config.model import (
    ASSET_TYPES,
    AlbumFilter,
    Batching,
    ConfigError,
    DiscordSettings,
    ImmichSettings,
    KeyPath,
    MemoriesCommand,
    MetricsSettings,
    PeopleFilter,
    PersonCommand,
    PollSettings,
    Post,
    Problem,
    QuietHours,
    Rule,
    Secret,
    Settings,
    StateSettings,
    Target,
    UploadCommand,
    format_key_path,
)
from sidecar.config.yamlsource import LineMap, decode, parse, read_config_bytes
from sidecar.targets.registry import KINDS, kind_for_spec

SCHEMA_RESOURCE = "config.schema.json"
MAX_SECRET_FILE_BYTES = 64 * 1024
SECRET_KEYS = frozenset({"api_key", "token"})  # outside targets; each target kind names its own
_HTTP_URL = re.compile(r"^https?://[^\s/?#]+(/\S*)?$")
_JSON_TYPES = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "nothing (null)",
}


def schema_text() -> str:
    """The config JSON Schema exactly as shipped in the package."""
    # In the sidecar package (package data); a plain path works for wheels, editable and source
    # runs.
    return Path(__file__).parent.parent.joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")


@functools.cache
def _validator() -> Draft202012Validator:
    schema = json.loads(schema_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, validate and resolve one config file; ConfigError lists everything wrong with it.

    ``environ`` (default: os.environ) feeds ${VAR} expansion. Only the config file and the
    secret files it names are read.
    """
    return load(path, environ)


def load(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    source = str(path)
    environ = os.environ if environ is None else environ
    raw, problem = read_config_bytes(path)
    if raw is None:
        raise ConfigError(source, [problem] if problem else [])
    text, problem = decode(raw)
    if text is None:
        raise ConfigError(source, [problem] if problem else [])
    document = parse(text, environ)
    problems = list(document.problems)
    data, lines = document.data, document.lines
    if problems and data is None:
        raise ConfigError(source, problems)
    if not isinstance(data, dict):
        got = "nothing (the file is empty)" if data is None else _kind(data)
        message = f"expected a mapping with immich, targets and rules, got {got}"
        raise ConfigError(source, [*problems, Problem(1, format_key_path(()), message)])

    already_reported = {problem.where for problem in problems}
    problems += [
        problem
        for problem in _schema_problems(data, lines)
        if problem.where not in already_reported
    ]
    problems += _cross_field_problems(data, lines)
    problems += _post_problems(data, lines, environ)
    secrets = _SecretResolver(data, lines, path.parent)
    problems += secrets.problems
    if problems:
        raise ConfigError(source, problems)
    settings = _build(
        data,
        secrets.values,
        path,
        hashlib.sha256(raw).hexdigest(),
        lines,
        _timezone_name(data, environ),
    )
    return replace(settings, lines=MappingProxyType({**lines.value_lines, **lines.key_lines}))


# --- schema errors, in words a person can act on -------------------------------------------


def _schema_problems(data: dict[str, Any], lines: LineMap) -> Iterator[Problem]:
    for error in _validator().iter_errors(data):
        yield from _translate(error, lines)


def _translate(error: ValidationError, lines: LineMap) -> Iterator[Problem]:
    path: KeyPath = tuple(error.absolute_path)
    kind = error.validator
    expected: Any = error.validator_value
    value = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    custom = schema.get("errorMessage")

    def at(where: KeyPath, message: str) -> Problem:
        return Problem(lines.line_of(where), format_key_path(where), message)

    if "propertyNames" in error.relative_schema_path:
        yield at((*path, str(value)), f"'{value}' is not a valid name: {custom or 'bad format'}")
    elif kind == "additionalProperties" and isinstance(value, dict):
        allowed = list(schema.get("properties", {}))
        for key in value:
            if key not in allowed:
                yield at((*path, key), f"'{key}' is not allowed here{_suggest(key, allowed)}")
    elif kind == "required" and isinstance(value, dict):
        for key in expected:
            if key not in value:
                yield at(path, f"missing required key '{key}'")
    elif kind == "type":
        wanted = [expected] if isinstance(expected, str) else list(expected)
        names = " or ".join(_JSON_TYPES.get(name, name) for name in wanted)
        hint = " (put it in quotes)" if isinstance(value, bool) and "string" in wanted else ""
        if _is_duration(schema) and type(value) is int:
            hint = f": add a unit, e.g. {value}s (seconds) or {value}m (minutes)"
        # A custom message says what the value means ("a duration like 30s"), not only its type.
        yield at(path, f"{custom or 'expected ' + names}, got {_kind(value)}{hint}")
    elif kind == "enum":
        choices = ", ".join(str(choice) for choice in expected)
        yield at(path, f"expected one of {choices}{_shown(value, path)}")
    elif kind == "oneOf" and isinstance(value, dict):
        keys = [key for branch in expected for key in branch.get("required", [])]
        present = [key for key in keys if key in value]
        if not present:
            yield at(path, f"needs one of {_either(keys)}")
        else:
            yield at((*path, present[-1]), f"{' and '.join(present)} are both set; use only one")
    elif kind == "not" and isinstance(expected, dict):
        yield at(path, expected.get("errorMessage", "is not allowed here"))
    elif kind == "uniqueItems" and isinstance(value, list):
        repeated = next((i for n, i in enumerate(value) if i in value[:n]), "a value")
        yield at(path, f"'{repeated}' is listed twice")
    elif kind in ("pattern", "const", "minimum", "maximum", "minProperties") and custom:
        yield at(path, f"{custom}{_shown(value, path) if kind == 'pattern' else ''}")
    elif kind == "minLength":
        yield at(path, "must not be empty" if expected == 1 else f"needs {expected}+ characters")
    elif kind == "maxLength":
        yield at(path, f"is longer than {expected} characters")
    elif kind == "minItems":
        yield at(path, "needs at least one entry" if expected == 1 else f"needs {expected} entries")
    elif kind == "maxItems":
        yield at(path, f"has more than {expected} entries")
    elif kind == "minimum":
        yield at(path, f"must be at least {expected}")
    elif kind == "maximum":
        yield at(path, f"must be at most {expected}")
    elif kind == "minProperties":
        yield at(path, "needs at least one entry")
    else:
        # Fallback without jsonschema's message, which would echo the value (maybe a secret).
        yield at(path, f"is not valid here (fails the schema's '{kind}' check)")


def _is_duration(schema: dict[str, Any]) -> bool:
    duration: dict[str, Any] = _validator().schema["$defs"]["duration"]
    return schema == duration


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (expected {_either(choices)})" if choices else ""


def _either(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _shown(value: object, path: KeyPath) -> str:
    if _is_secret(path) or not isinstance(value, str | int | float):
        return ""
    return f", got '{value}'"


def _is_secret(path: KeyPath) -> bool:
    if any(part in SECRET_KEYS for part in path if isinstance(part, str)):
        return True
    inner = path[2:] if path[:1] == ("targets",) else ()
    return any(inner[: len(key.path)] == key.path for kind in KINDS for key in kind.secrets)


def _kind(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


# --- what the schema cannot say --------------------------------------------------------------


def _cross_field_problems(data: dict[str, Any], lines: LineMap) -> list[Problem]:
    problems: list[Problem] = []

    def add(path: KeyPath, message: str) -> None:
        problems.append(Problem(lines.line_of(path), format_key_path(path), message))

    targets = data.get("targets")
    target_names = list(targets) if isinstance(targets, dict) else []
    rules = data.get("rules")
    first_use: dict[str, int] = {}
    for index, rule in enumerate(rules if isinstance(rules, list) else []):
        if not isinstance(rule, dict):
            continue
        name = rule.get("name")
        if isinstance(name, str):
            if name in first_use:
                earlier = first_use[name]
                add(
                    ("rules", index, "name"),
                    f"rule name '{name}' is already used by rules[{earlier}]",
                )
            first_use.setdefault(name, index)
        wanted = rule.get("targets")
        for position, target in enumerate(wanted if isinstance(wanted, list) else []):
            if isinstance(target, str) and isinstance(targets, dict) and target not in targets:
                message = f"'{target}' is not a defined target{_suggest(target, target_names)}"
                add(("rules", index, "targets", position), message)

    for name, target in targets.items() if isinstance(targets, dict) else []:
        kind = kind_for_spec(target) if isinstance(target, dict) else None
        for where, message in kind.problems(target, data) if kind is not None else ():
            add(("targets", name, *where), message)
    return problems


def _timezone_name(data: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    """The config's ``timezone``, else the TZ environment variable (a leading ':' dropped),
    else UTC."""
    configured = data.get("timezone")
    if isinstance(configured, str):
        return configured
    return environ.get("TZ", "").lstrip(":") or "UTC"


def zone_of(name: str) -> ZoneInfo | None:
    """The IANA time zone of that name, or None when there is none."""
    if not name or name.startswith(("/", ".")) or ".." in name:
        return None
    try:
        return ZoneInfo(name)
    except (ValueError, OSError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        return None


def post_trigger(cron: str, zone: ZoneInfo) -> CronTrigger:
    """APScheduler's own reading of a five-field cron; ValueError says what is wrong."""
    fields = cron.split()
    # APScheduler reads a weekday number as 0 = Monday, cron as 0 = Sunday: a number would
    # silently post on the wrong day, so only names are accepted there.
    if len(fields) == 5 and re.search(r"\d", fields[4]):
        raise ValueError(
            f"write the weekday ('{fields[4]}') with names like mon-fri or sun: "
            "cron and the scheduler disagree on what 0 means"
        )
    return CronTrigger.from_crontab(cron, timezone=zone)


def _post_problems(
    data: dict[str, Any],
    lines: LineMap,
    environ: Mapping[str, str],
) -> list[Problem]:
    problems: list[Problem] = []

    def add(path: KeyPath, message: str) -> None:
        problems.append(Problem(lines.line_of(path), format_key_path(path), message))

    posts = data.get("posts")
    posts = posts if isinstance(posts, list) else []
    name = _timezone_name(data, environ)
    zone = zone_of(name)
    if zone is None:
        if isinstance(data.get("timezone"), str):
            add(("timezone",), f"'{name}' is not an IANA time zone (e.g. Europe/Paris or UTC)")
        elif posts:
            add(
                ("timezone",),
                f"the TZ environment variable ('{name}') is not an IANA time "
                "zone; set timezone: in the config (e.g. Europe/Paris or UTC)",
            )
        zone = ZoneInfo("UTC")
    targets = data.get("targets")
    target_names = list(targets) if isinstance(targets, dict) else []
    rules = data.get("rules")
    rule_names = (
        [r.get("name") for r in rules if isinstance(r, dict)] if isinstance(rules, list) else []
    )
    first_use: dict[str, int] = {}
    for index, post in enumerate(posts):
        if not isinstance(post, dict):
            continue
        post_name = post.get("name")
        if isinstance(post_name, str):
            if post_name in first_use:
                add(
                    ("posts", index, "name"),
                    f"post name '{post_name}' is already used by posts[{first_use[post_name]}]",
                )
            first_use.setdefault(post_name, index)
        cron = post.get("cron")
        if isinstance(cron, str) and cron:
            try:
                post_trigger(cron, zone)
            except ValueError as err:
                add(
                    ("posts", index, "cron"), f'{err} (expected a five-field cron like "0 9 * * *")'
                )
        wanted = post.get("targets")
        for position, target in enumerate(wanted if isinstance(wanted, list) else []):
            if isinstance(target, str) and isinstance(targets, dict) and target not in targets:
                add(
                    ("posts", index, "targets", position),
                    f"'{target}' is not a defined target{_suggest(target, target_names)}",
                )
        kind = post.get("kind")
        summarised = post.get("rules")
        if kind == "digest" and summarised is None:
            add(("posts", index), "a digest needs rules: the rules it summarises")
        if kind != "digest" and summarised is not None:
            add(("posts", index, "rules"), "only a digest summarises rules")
        for position, rule in enumerate(summarised if isinstance(summarised, list) else []):
            if isinstance(rule, str) and rule not in rule_names:
                add(
                    ("posts", index, "rules", position),
                    f"'{rule}' is not a defined rule"
                    f"{_suggest(rule, [r for r in rule_names if isinstance(r, str)])}",
                )
        if kind == "digest" and "people" in post:
            add(("posts", index, "people"), "a digest has no people filter (its rules do)")
    return problems


class _SecretResolver:
    """Secrets from the config or from the files it names, as Secret values by key path."""

    def __init__(self, data: dict[str, Any], lines: LineMap, base: Path) -> None:
        self.values: dict[KeyPath, Secret] = {}
        self.problems: list[Problem] = []
        self._lines = lines
        self._base = base
        immich = data.get("immich")
        discord = data.get("discord")
        targets = data.get("targets")
        self._take(immich, ("immich",), "api_key")
        self._take(discord, ("discord",), "token")
        for name, target in targets.items() if isinstance(targets, dict) else []:
            kind = kind_for_spec(target) if isinstance(target, dict) else None
            for key in kind.secrets if kind is not None else ():
                section: object = target
                for part in key.path[:-1]:
                    section = section.get(part) if isinstance(section, dict) else None
                self._take(
                    section, ("targets", name, *key.path[:-1]), key.path[-1], must_be_url=key.url
                )

    def _take(self, section: object, path: KeyPath, key: str, must_be_url: bool = False) -> None:
        if not isinstance(section, dict):
            return
        inline = section.get(key)
        file_name = section.get(f"{key}_file")
        if isinstance(inline, str) and inline and file_name is None:
            self.values[(*path, key)] = Secret(inline)
        elif isinstance(file_name, str) and file_name and inline is None:
            where = (*path, f"{key}_file")
            value, reason = self._read(file_name)
            if reason is None and must_be_url and not _HTTP_URL.match(value):
                reason = f"secret file {file_name} does not hold an http:// or https:// URL"
            if reason is not None:
                line = self._lines.line_of(where)
                self.problems.append(Problem(line, format_key_path(where), reason))
            else:
                self.values[(*path, key)] = Secret(value)

    def _read(self, file_name: str) -> tuple[str, str | None]:
        path = Path(file_name)
        if not path.is_absolute():
            path = self._base / path
        try:
            if not stat.S_ISREG(path.stat().st_mode):
                return "", f"cannot read secret file {file_name}: not a regular file"
            with path.open("rb") as handle:
                raw = handle.read(MAX_SECRET_FILE_BYTES + 1)
        except OSError as exc:
            return "", f"cannot read secret file {file_name}: {exc.strerror or type(exc).__name__}"
        if len(raw) > MAX_SECRET_FILE_BYTES:
            return "", f"secret file {file_name} is too large"
        try:
            value = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            return "", f"secret file {file_name} is not UTF-8 text"
        if not value:
            return "", f"secret file {file_name} is empty"
        return value, None


# --- plain values -> frozen Settings ----------------------------------------------------------


def normalise_base_url(url: str) -> str:
    """``http://immich:2283/api/`` -> ``http://immich:2283``: the client adds /api itself."""
    url = url.rstrip("/")
    if url.endswith("/api"):
        url = url[: -len("/api")].rstrip("/")
    return url


def _build(
    data: dict[str, Any],
    secrets: Mapping[KeyPath, Secret],
    path: Path,
    digest: str,
    lines: LineMap | None = None,
    timezone: str = "UTC",
) -> Settings:
    immich = data["immich"]
    url = normalise_base_url(immich["url"])
    discord = data.get("discord", {})
    commands = discord.get("commands", {})
    upload = commands.get("upload", {})
    poll = data.get("poll", {})
    defaults = PollSettings()
    listen = data.get("metrics", {}).get("listen")
    metrics = MetricsSettings()
    if listen is not None:
        host, _, port = listen.rpartition(":")
        metrics = MetricsSettings(host=host.strip("[]"), port=int(port))
    state = data.get("state", {})
    return Settings(
        source=path,
        content_hash=digest,
        immich=ImmichSettings(
            url=url,
            api_key=secrets[("immich", "api_key")],
            external_url=immich["external_url"].rstrip("/") if "external_url" in immich else url,
        ),
        discord=DiscordSettings(
            token=secrets.get(("discord", "token")),
            upload=UploadCommand(
                enabled=upload.get("enabled", True),
                allowed_roles=tuple(str(role) for role in upload.get("allowed_roles", [])),
                allowed_channels=tuple(str(chan) for chan in upload.get("allowed_channels", [])),
                album=upload.get("album"),
                max_mb=int(upload.get("max_mb", 100)),
            ),
            person=PersonCommand(enabled=commands.get("person", {}).get("enabled", True)),
            memories=MemoriesCommand(
                enabled=commands.get("memories", {}).get("enabled", True),
                allowed_roles=tuple(
                    str(role) for role in commands.get("memories", {}).get("allowed_roles", [])
                ),
                allowed_channels=tuple(
                    str(c) for c in commands.get("memories", {}).get("allowed_channels", [])
                ),
            ),
        ),
        poll=PollSettings(
            interval=_seconds(poll, "interval", defaults.interval),
            lookback=_seconds(poll, "lookback", defaults.lookback),
            settle=_seconds(poll, "settle", defaults.settle),
            backfill=_seconds(poll, "backfill", defaults.backfill),
        ),
        state=StateSettings(path=Path(state["path"])) if "path" in state else StateSettings(),
        metrics=metrics,
        targets=MappingProxyType(
            {name: _target(name, spec, secrets) for name, spec in data["targets"].items()}
        ),
        rules=tuple(_rule(rule, index, lines) for index, rule in enumerate(data["rules"])),
        timezone=timezone,
        posts=tuple(
            _post(post, lines.line_of(("posts", index)) if lines is not None else None)
            for index, post in enumerate(data.get("posts", []))
        ),
    )


def _post(spec: Mapping[str, Any], line: int | None) -> Post:
    defaults = Post(name="", kind="", cron="", targets=())
    return Post(
        name=spec["name"],
        kind=spec["kind"],
        cron=" ".join(spec["cron"].split()),
        targets=tuple(spec["targets"]),
        people=tuple(spec.get("people", {}).get("any", ())),
        max_pictures=int(spec.get("max_pictures", defaults.max_pictures)),
        max_per_day=int(spec.get("max_per_day", defaults.max_per_day)),
        rules=tuple(spec.get("rules", ())),
        line=line,
    )


def _seconds(section: Mapping[str, Any], key: str, default: float) -> float:
    return parse_duration(section[key]) if key in section else default


def _quiet(spec: Mapping[str, Any] | None) -> QuietHours | None:
    if spec is None:
        return None
    start, end = (time.fromisoformat(spec[key]) for key in ("from", "to"))
    return None if start == end else QuietHours(start=start, end=end)


def _target(name: str, spec: Mapping[str, Any], secrets: Mapping[KeyPath, Secret]) -> Target:
    kind = kind_for_spec(spec)
    assert kind is not None  # the schema requires one kind's key
    where = ("targets", name)
    own = {
        key.path: secrets[(*where, *key.path)]
        for key in kind.secrets
        if (*where, *key.path) in secrets
    }
    target: Target = kind.read(name, spec, own, _quiet(spec.get("quiet_hours")))
    return target


def _rule(spec: Mapping[str, Any], index: int = 0, lines: LineMap | None = None) -> Rule:
    people = spec.get("people", {})
    albums = tuple(spec.get("albums", {}).get("any", ()))
    batching = spec.get("batching", {})
    default_batching = Batching()
    return Rule(
        name=spec["name"],
        targets=tuple(spec["targets"]),
        people=PeopleFilter(
            any=tuple(people.get("any", ())),
            all=tuple(people.get("all", ())),
            none=tuple(people.get("none", ())),
        ),
        asset_types=frozenset(spec.get("asset_types", ASSET_TYPES)),
        mention_roles=tuple(int(role) for role in spec.get("mention_roles", ())),
        batching=Batching(
            max_per_message=int(batching.get("max_per_message", default_batching.max_per_message)),
            summary_over=int(batching.get("summary_over", default_batching.summary_over)),
        ),
        quiet_hours=_quiet(spec.get("quiet_hours")),
        albums=AlbumFilter(
            any=albums,
            lines=tuple(
                lines.line_of(("rules", index, "albums", "any", position))
                if lines is not None
                else None
                for position in range(len(albums))
            ),
        ),
    )
