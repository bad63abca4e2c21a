"""Turn one config file into Settings: read, validate against the schema, cross-check, resolve.

Every problem is collected (not just the first) and raised together as one ConfigError whose
lines read ``config.yaml:14: rules[0].targets[1]: 'famly' is not a defined target``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from datetime import time
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sidecar.config.aliases import alias_problems, read_aliases
from sidecar.config.checks import cross_field_problems, post_problems, timezone_name
from sidecar.config.durations import parse_duration
from sidecar.config.ingest_checks import ingest_problems
from sidecar.config.members import member_problems, read_members
from sidecar.config.messages import message_problems, read_templates, target_words
from sidecar.config.model import (
    ASSET_TYPES,
    DEFAULT_ACCOUNT,
    Account,
    AlbumFilter,
    Batching,
    ConfigError,
    DiscordSettings,
    ImmichSettings,
    IngestChannel,
    KeyPath,
    MemoriesCommand,
    MetricsSettings,
    PeopleFilter,
    PersonCommand,
    PollSettings,
    Post,
    Problem,
    PushSettings,
    QuietHours,
    Rule,
    Secret,
    Settings,
    StateSettings,
    Target,
    UploadCommand,
    format_key_path,
)
from sidecar.config.schema import describe_kind, schema_problems
from sidecar.config.secrets import SecretResolver, config_digest
from sidecar.config.ui import read_ui, ui_problems
from sidecar.config.yamlfile.source import LineMap, decode, parse, read_config_bytes
from sidecar.masking import without_credentials
from sidecar.targets.registry import kind_for_spec


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
        got = "nothing (the file is empty)" if data is None else describe_kind(data)
        message = f"expected a mapping with immich, targets and rules, got {got}"
        raise ConfigError(source, [*problems, Problem(1, format_key_path(()), message)])

    already_reported = {problem.where for problem in problems}
    problems += [
        problem for problem in schema_problems(data, lines) if problem.where not in already_reported
    ]
    problems += cross_field_problems(data, lines)
    problems += post_problems(data, lines, environ)
    problems += member_problems(data, lines)
    problems += alias_problems(data, lines)
    problems += [
        Problem(lines.line_of(path), format_key_path(path), message)
        for path, message in ui_problems(data)
    ]
    problems += [
        Problem(lines.line_of(path), format_key_path(path), message)
        for path, message in ingest_problems(data)
    ]
    secrets = SecretResolver(data, lines, path.parent)
    problems += secrets.problems
    if not problems:  # templates are rendered against sample data: only in a sound document
        problems += message_problems(data, lines, timezone_name(data, environ))
    if problems:
        raise ConfigError(source, problems)
    settings = _build(
        data,
        secrets.values,
        path,
        config_digest(raw, secrets.files),
        lines,
        timezone_name(data, environ),
    )
    return replace(
        settings,
        lines=MappingProxyType({**lines.value_lines, **lines.key_lines}),
        secret_files=tuple(secrets.files),
    )


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
    """The Settings of a config that passed every check, section by section."""
    return Settings(
        source=path,
        content_hash=digest,
        immich=_immich(data["immich"], secrets, lines),
        discord=_discord(data.get("discord", {}), secrets),
        poll=_poll(data.get("poll", {})),
        state=_state(data.get("state", {})),
        metrics=_metrics(data.get("metrics", {})),
        targets=MappingProxyType(
            {name: _target(name, spec, secrets) for name, spec in data["targets"].items()}
        ),
        rules=tuple(
            _rule(rule, index, lines) for index, rule in enumerate(data.get("rules") or [])
        ),
        timezone=timezone,
        locale=data.get("locale", "en"),
        target_words=MappingProxyType(target_words(data)),
        posts=tuple(
            _post(post, lines.line_of(("posts", index)) if lines is not None else None)
            for index, post in enumerate(data.get("posts", []))
        ),
        push=_push(data["push"], secrets) if "push" in data else None,
        ui=read_ui(data["ui"], secrets.get(("ui", "password"))) if "ui" in data else None,
        people_aliases=read_aliases(data.get("people_aliases", {})),
    )


def _discord(discord: Mapping[str, Any], secrets: Mapping[KeyPath, Secret]) -> DiscordSettings:
    commands = discord.get("commands", {})
    upload = commands.get("upload", {})
    memories = commands.get("memories", {})
    return DiscordSettings(
        token=secrets.get(("discord", "token")),
        ingest=tuple(
            _ingest(spec, upload.get("allowed_roles", [])) for spec in discord.get("ingest", [])
        ),
        upload=UploadCommand(
            enabled=upload.get("enabled", True),
            allowed_roles=tuple(str(role) for role in upload.get("allowed_roles", [])),
            allowed_channels=tuple(str(chan) for chan in upload.get("allowed_channels", [])),
            album=upload.get("album"),
            max_mb=int(upload.get("max_mb", 100)),
            account=upload.get("account"),
        ),
        person=PersonCommand(enabled=commands.get("person", {}).get("enabled", True)),
        memories=MemoriesCommand(
            enabled=memories.get("enabled", True),
            allowed_roles=tuple(str(role) for role in memories.get("allowed_roles", [])),
            allowed_channels=tuple(str(c) for c in memories.get("allowed_channels", [])),
        ),
        members=read_members(discord),
    )


def _poll(poll: Mapping[str, Any]) -> PollSettings:
    defaults = PollSettings()
    fast = poll.get("fast", {})
    return PollSettings(
        interval=_seconds(poll, "interval", defaults.interval),
        lookback=_seconds(poll, "lookback", defaults.lookback),
        settle=_seconds(poll, "settle", defaults.settle),
        backfill=_seconds(poll, "backfill", defaults.backfill),
        fast_every=_seconds(fast, "every", defaults.fast_every),
        fast_for=_seconds(fast, "for", defaults.fast_for),
    )


def _state(state: Mapping[str, Any]) -> StateSettings:
    return StateSettings(path=Path(state["path"])) if "path" in state else StateSettings()


def _metrics(metrics: Mapping[str, Any]) -> MetricsSettings:
    listen = metrics.get("listen")
    if listen is None:
        return MetricsSettings()
    host, port = _host_port(listen)
    return MetricsSettings(host=host, port=port)


def _host_port(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def _push(spec: Mapping[str, Any], secrets: Mapping[KeyPath, Secret]) -> PushSettings:
    defaults = PushSettings(secret=secrets[("push", "secret")])
    host, port = _host_port(spec["listen"]) if "listen" in spec else (defaults.host, defaults.port)
    return PushSettings(
        secret=defaults.secret, host=host, port=port, header=spec.get("header", defaults.header)
    )


def _immich(
    immich: Mapping[str, Any], secrets: Mapping[KeyPath, Secret], lines: LineMap | None
) -> ImmichSettings:
    """The single ``api_key`` is one account named ``default``; ``accounts`` are several."""
    url = normalise_base_url(immich["url"])
    line_of = lines.line_of if lines is not None else (lambda _path: None)
    if "accounts" in immich:
        accounts = tuple(
            Account(
                name,
                secrets[("immich", "accounts", name, "api_key")],
                line_of(("immich", "accounts", name)),
            )
            for name in immich["accounts"]
        )
    else:
        key = secrets[("immich", "api_key")]
        accounts = (Account(DEFAULT_ACCOUNT, key, line_of(("immich",))),)
    return ImmichSettings(
        url=url,
        api_key=accounts[0].api_key,
        # Links in messages are opened by others: never with the URL's own user and password.
        external_url=(
            immich["external_url"].rstrip("/")
            if "external_url" in immich
            else without_credentials(url)
        ),
        accounts=accounts,
    )


def _ingest(spec: Mapping[str, Any], upload_roles: list[Any]) -> IngestChannel:
    roles = spec.get("allowed_roles", upload_roles)
    return IngestChannel(
        channel_id=int(spec["channel_id"]),
        album=spec.get("album"),
        allowed_roles=tuple(str(role) for role in roles),
        description=spec.get("description", IngestChannel(0).description),
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
        one_message_per_year=bool(spec.get("one_message_per_year", defaults.one_message_per_year)),
        rules=tuple(spec.get("rules", ())),
        accounts=tuple(spec.get("accounts", ())),
        locale=spec.get("locale"),
        messages=read_templates(spec.get("messages")),
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
        mention_members=bool(spec.get("mention_members", False)),
        batching=Batching(
            max_per_message=int(batching.get("max_per_message", default_batching.max_per_message)),
            summary_over=int(batching.get("summary_over", default_batching.summary_over)),
        ),
        quiet_hours=_quiet(spec.get("quiet_hours")),
        accounts=tuple(spec.get("accounts", ())),
        messages=read_templates(spec.get("messages")),
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
