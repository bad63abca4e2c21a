"""How Discord builds a slash command's interaction from the command the bot registered, and
what it accepts as an autocomplete answer: the fake Discord's likeness for options.

- Discord's client offers only the registered options: an option the command does not have
  cannot be sent, a required one cannot be left out, a value must have the option's type (a
  string option's value is a string) and be one of its choices when it has choices. Each
  option arrives with the registered type; options the user left empty are absent.
- An autocomplete interaction (type 4) carries every option filled so far, as typed, the one
  being typed marked ``focused``; only an option registered with ``autocomplete`` gets one,
  and required options may still be missing.
- The answer (callback type 8) is at most 25 choices, each ``name`` 1-100 characters and a
  ``value`` of the option's type (a string at most 100 characters); anything else is refused
  with 400 Invalid Form Body (code 50035), and the user sees no suggestions.

``InvalidInteraction`` is a test's mistake: real Discord would never send such an interaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
STRING, INTEGER, BOOLEAN, NUMBER, ATTACHMENT = 3, 4, 5, 10, 11
MAX_CHOICES = 25
MAX_CHOICE_LENGTH = 100
_VALUE_TYPES: dict[int, tuple[type, ...]] = {
    STRING: (str,),
    INTEGER: (int,),
    BOOLEAN: (bool,),
    NUMBER: (int, float),
}


class InvalidInteraction(AssertionError):
    """An interaction Discord's client could not have sent for the registered commands."""


def registered(commands: Mapping[str, list[dict[str, Any]]], name: str) -> dict[str, Any]:
    """The chat-input command ``name`` as registered (for the guild, else globally)."""
    for scope in sorted(commands, key=lambda s: s == "global"):  # the guild's first
        for command in commands[scope]:
            if command.get("name") == name and command.get("type", 1) == 1:
                return command
    raise InvalidInteraction(f"/{name} is not registered with Discord (yet)")


def checked_options(
    definition: Mapping[str, Any],
    given: list[dict[str, Any]],
    *,
    autocomplete: bool,
    attachments: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """The options as Discord sends them for ``given`` (types from the definition); raises
    InvalidInteraction for what the client could not send."""
    path = f"/{definition['name']}"
    options = _options(definition, given, autocomplete, set(attachments), path)
    focused = sum(1 for option in _leaves(options) if option.get("focused"))
    if autocomplete and focused != 1:
        raise InvalidInteraction(f"{path}: an autocomplete interaction has one focused option")
    if not autocomplete and focused:
        raise InvalidInteraction(f"{path}: only autocomplete interactions have a focused option")
    return options


def _options(
    definition: Mapping[str, Any],
    given: list[dict[str, Any]],
    autocomplete: bool,
    attachments: set[str],
    path: str,
) -> list[dict[str, Any]]:
    known = {o["name"]: o for o in definition.get("options", [])}
    sent = []
    for option in given:
        spec = known.get(option.get("name", ""))
        if spec is None:
            raise InvalidInteraction(
                f"{path} has no option {option.get('name')!r} (it has: {', '.join(known)})"
            )
        if "type" in option and option["type"] != spec["type"]:
            raise InvalidInteraction(
                f"{path} {spec['name']}: registered as type {spec['type']}, not {option['type']}"
            )
        where = f"{path} {spec['name']}"
        if spec["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP):
            inner = _options(spec, option.get("options", []), autocomplete, attachments, where)
            sent.append({"type": spec["type"], "name": spec["name"], "options": inner})
            continue
        _check_value(spec, option, autocomplete, attachments, where)
        sent.append({**option, "type": spec["type"]})
    if not autocomplete:
        names = {o["name"] for o in given}
        for spec in known.values():
            if spec.get("required") and spec["name"] not in names:
                raise InvalidInteraction(f"{path}: the required option {spec['name']!r} is empty")
    if (
        any(o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP) for o in known.values())
        and len(sent) != 1
    ):
        raise InvalidInteraction(f"{path}: choose exactly one subcommand")
    return sent


def _check_value(
    spec: Mapping[str, Any],
    option: Mapping[str, Any],
    autocomplete: bool,
    attachments: set[str],
    where: str,
) -> None:
    if "value" not in option:
        raise InvalidInteraction(f"{where}: an option has a value")
    value = option["value"]
    if option.get("focused"):
        if not spec.get("autocomplete"):
            raise InvalidInteraction(f"{where} is not registered with autocomplete")
        if not isinstance(value, str):
            raise InvalidInteraction(f"{where}: the focused option's value is the text typed")
        return
    if autocomplete:
        return  # the other options as typed so far: Discord does not check them yet
    if spec["type"] == ATTACHMENT:
        if str(value) not in attachments:
            raise InvalidInteraction(f"{where}: an attachment option names a resolved upload")
        return
    wanted = _VALUE_TYPES.get(spec["type"])
    if wanted is not None and (
        not isinstance(value, wanted) or (isinstance(value, bool) and bool not in wanted)
    ):
        raise InvalidInteraction(f"{where}: {value!r} is not of the option's type {spec['type']}")
    choices = [c["value"] for c in spec.get("choices") or []]
    if choices and value not in choices:
        raise InvalidInteraction(f"{where}: {value!r} is not one of its choices {choices}")


def _leaves(options: list[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    for option in options:
        if option["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP):
            yield from _leaves(option.get("options", []))
        else:
            yield option


def focused_option(definition: Mapping[str, Any], options: list[dict[str, Any]]) -> dict[str, Any]:
    """The registered option an autocomplete interaction is for."""
    specs: list[dict[str, Any]] = list(definition.get("options", []))
    level = options
    while level and level[0]["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP):
        spec = next(s for s in specs if s["name"] == level[0]["name"])
        specs, level = list(spec.get("options", [])), level[0].get("options", [])
    name = next(o["name"] for o in level if o.get("focused"))
    return next(s for s in specs if s["name"] == name)


def choices_problem(choices: Any, option_type: int) -> dict[str, Any] | None:
    """Discord's 400 body for an autocomplete answer it refuses, or None when it is valid."""
    errors: dict[str, Any] = {}
    if not isinstance(choices, list):
        errors["choices"] = _error("BASE_TYPE_REQUIRED", "This field is required")
    elif len(choices) > MAX_CHOICES:
        errors["choices"] = _error(
            "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CHOICES} or fewer in length."
        )
    else:
        for index, choice in enumerate(choices):
            problem = _choice_problem(choice, option_type)
            if problem:
                errors.setdefault("choices", {})[str(index)] = problem
    if not errors:
        return None
    return {"message": "Invalid Form Body", "code": 50035, "errors": {"data": errors}}


def _choice_problem(choice: Any, option_type: int) -> dict[str, Any]:
    problem: dict[str, Any] = {}
    name = choice.get("name") if isinstance(choice, dict) else None
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_CHOICE_LENGTH:
        problem["name"] = _error(
            "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {MAX_CHOICE_LENGTH} in length."
        )
    value = choice.get("value") if isinstance(choice, dict) else None
    wanted = _VALUE_TYPES.get(option_type, (str,))
    if not isinstance(value, wanted) or (isinstance(value, str) and len(value) > MAX_CHOICE_LENGTH):
        problem["value"] = _error(
            "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {MAX_CHOICE_LENGTH} in length."
        )
    return problem


def _error(code: str, message: str) -> dict[str, Any]:
    return {"_errors": [{"code": code, "message": message}]}
