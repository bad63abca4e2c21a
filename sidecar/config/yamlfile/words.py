"""YAML mistakes in plain words: what is wrong, on the line where the mistake is (PyYAML often
notices it a line later), with that line shown and a caret under the spot.

PyYAML's own message is never printed whole: it quotes the offending line, which may hold a
secret. The line shown here has the values of secret-looking keys masked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from sidecar.config.model import Problem
from sidecar.masking import MASK, mask_url_credentials
from sidecar.targets.registry import KINDS

INDENTATION = "indentation"
INVALID = "invalid YAML"
_SHOWN_WIDTH = 100  # characters of a shown line
_MAX_KEY = 1024  # YAML's longest key written without quotes or '?' (a "simple key")
# Keys whose values are (or may carry) secrets, wherever they stand; a url keeps its host.
_SECRET_KEYS = sorted(
    {"api_key", "token", "secret", "password", "authorization"}
    | {key.path[-1] for kind in KINDS for key in kind.secrets},
    key=len,
    reverse=True,
)
_SECRET_VALUE = re.compile(
    rf"(?P<key>(?<![A-Za-z0-9_])(?:{'|'.join(map(re.escape, _SECRET_KEYS))})[\"']?\s*:\s*)"
    r"(?P<value>\"[^\"]*\"?|'[^']*'?|[^,}\]#\s][^,}\]#]*)",
    re.IGNORECASE,
)
_URL_REST = re.compile(r"^(?P<quote>[\"']?)(?P<base>[A-Za-z][A-Za-z0-9+.-]*://[^/\s\"'?#]+)")
_KEY_LINE = re.compile(r"^(?P<indent> *)(?P<dash>- +)?(?P<key>[^\s#:][^:#]*?)\s*:(\s|$)")
_DASH_LINE = re.compile(r"^(?P<indent> *)- ")


@dataclass(frozen=True)
class _Spot:
    line: int  # 1-based
    column: int  # 0-based


def yaml_problem(exc: yaml.YAMLError, text: str) -> Problem:
    """The one Problem a YAML parse error makes, with the line shown."""
    lines = text.splitlines()
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow; no mark
        number = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1)
        message = f"line {number}: character {exc.character!r} is not allowed in YAML"
        return _with_excerpt(Problem(number, INVALID, message), lines, _Spot(number, column))
    problem = getattr(exc, "problem", None) or "cannot parse"
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    context_mark = getattr(exc, "context_mark", None)
    spot = _spot(mark, lines)
    opened = _spot(context_mark, lines) if context_mark is not None else None
    if spot is None:
        return Problem(None, INVALID, problem)
    where, message, shown = _words(exc, problem, spot, opened, text, lines)
    return _with_excerpt(Problem(shown.line, where, message), lines, shown)


_Words = tuple[str, str, _Spot]  # (where, message, the spot to show)


def _words(
    exc: yaml.YAMLError,
    problem: str,
    spot: _Spot,
    opened: _Spot | None,
    text: str,
    lines: list[str],
) -> _Words:
    """What one PyYAML problem means: the layout of blocks, then what is left open, then a
    character or an alias; else PyYAML's own short words."""
    found = _block_words(problem, spot, text, lines) or _open_words(problem, spot, opened, lines)
    if found is not None:
        return found
    n = spot.line
    cannot_start = re.match(r"found character '(.+)' that cannot start any token", problem)
    if cannot_start:
        char = cannot_start.group(1)
        return INVALID, f"line {n}: a value cannot start with {char}; put it in quotes", spot
    if problem.startswith("found undefined alias"):
        alias = problem.removeprefix("found ")
        return INVALID, f"line {n}: {alias} (no &anchor of that name)", spot
    context = getattr(exc, "context", None)
    detail = f"{problem} ({context})" if context else problem
    return INVALID, f"line {n}: {detail}", spot


def _block_words(problem: str, spot: _Spot, text: str, lines: list[str]) -> _Words | None:
    """Indentation, tabs and a missing ':' (a key, or a line that runs on into a value)."""
    n = spot.line
    found = problem.removeprefix("expected <block end>, but found ")
    if found in ("'<block mapping start>'", "'<block sequence start>'", "'?'", "'-'"):
        return INDENTATION, f"line {n} is not under any key: {_indent_hint(lines, n)}", spot
    if "'\\t'" in problem:
        return INVALID, f"line {n}: a tab character; indent with spaces, not tabs", spot
    if problem != "mapping values are not allowed here":
        return None
    start, of_value = _scalar_start(text, n)
    if start is not None and start.line < n and of_value:
        key = _levels_of(lines[start.line - 1])
        name = f"'{key[0][1]}' (line {start.line})" if key else f"line {start.line}"
        message = (
            f"line {n} is indented deeper than {name} and reads as more of its value; "
            f"indent it like {name}"
        )
        return INDENTATION, message, spot
    if start is not None and start.line < n:
        return INVALID, f"line {start.line}: a key needs a ':' after it (key: value)", start
    return INVALID, f"line {n}: a ': ' inside a value; put the whole value in quotes", spot


def _open_words(problem: str, spot: _Spot, opened: _Spot | None, lines: list[str]) -> _Words | None:
    """A quote, bracket or key that was opened and not closed: said where it was opened."""
    if opened is None:
        return None
    if problem.startswith("found unexpected end of stream"):
        quote = _char_at(lines, opened) or '"'
        message = f"line {opened.line}: the quoted value is never closed; add the closing {quote}"
        return INVALID, message, opened
    if problem.startswith(("expected ',' or ']'", "expected ',' or '}'")):
        close = "]" if "]" in problem[:20] else "}"
        bracket = "[" if close == "]" else "{"
        later = "" if opened.line == spot.line else f" (line {spot.line} comes first)"
        message = (
            f"line {opened.line}: the '{bracket}' here is not closed with '{close}', or a ',' "
            f"is missing{later}"
        )
        return INVALID, message, opened
    if problem == "could not find expected ':'":
        line = lines[opened.line - 1] if opened.line <= len(lines) else ""
        if line.find(":", opened.column) - opened.column > _MAX_KEY:
            return INVALID, f"line {opened.line}: a key longer than {_MAX_KEY} characters", opened
        return INVALID, f"line {opened.line}: a key needs a ':' after it (key: value)", opened
    return None


def _spot(mark: yaml.Mark | None, lines: list[str]) -> _Spot | None:
    """A mark as a line of the file: PyYAML marks the end of the stream one line past the last
    one."""
    if mark is None:
        return None
    if mark.line >= len(lines):
        last = max(len(lines), 1)
        return _Spot(last, len(lines[-1]) if lines else 0)
    return _Spot(mark.line + 1, mark.column)


def _char_at(lines: list[str], spot: _Spot) -> str:
    line = lines[spot.line - 1] if 0 < spot.line <= len(lines) else ""
    return line[spot.column : spot.column + 1]


def _scalar_start(text: str, line: int) -> tuple[_Spot | None, bool]:
    """Where the plain text that ends on ``line`` began, and whether it is a value: a key
    without ':', or a line indented under a value, runs on into it, and PyYAML notices only
    there."""
    tokens: list[yaml.Token] = []
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            tokens.append(token)
    except yaml.YAMLError:
        pass
    last = tokens[-1] if tokens else None
    if isinstance(last, yaml.ScalarToken) and last.end_mark.line + 1 == line:
        before = tokens[-2] if len(tokens) > 1 else None
        # A value follows its key's ':' on the same line; text on a line of its own is a key.
        of_value = (
            isinstance(before, yaml.ValueToken) and before.start_mark.line == last.start_mark.line
        )
        return _Spot(last.start_mark.line + 1, last.start_mark.column), of_value
    return None, False


def _indent_hint(lines: list[str], line: int) -> str:
    """How far the line is indented, and how far the keys (or, for a list item, the items)
    above it are."""
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    indent = len(text) - len(text.lstrip(" "))
    item = _DASH_LINE.match(text) is not None
    levels = _levels_above(lines, line)
    spaces = f"{indent} space{'s' if indent != 1 else ''}"
    fits = [lvl for lvl in levels if (lvl[1] == "-") == item and lvl[0] != indent][:3]
    options = " or ".join(
        f"{col} to go with the '-' on line {at}"
        if item
        else f"{col} to go with '{what}' (line {at})"
        for col, what, at in fits
    )
    dash = next((lvl for lvl in levels if lvl[0] == indent and lvl[1] == "-"), None)
    if dash is not None and not item:
        where = f"like the '-' of the list item on line {dash[2]}"
        return f"it is indented {spaces}, {where}; indent it {options}" if options else where
    if item and not fits:
        return (
            f"it is a list item ('- ') indented {spaces} where a key is expected; put it "
            "under a key that ends with ':', or make it a key (name: value)"
        )
    return f"it is indented {spaces}; indent it {options}" if options else f"indented {spaces}"


def _levels_above(lines: list[str], line: int) -> list[tuple[int, str, int]]:
    """The indentation levels open above ``line``: (column, key or '-', line), nearest first,
    each further out than the one before."""
    levels: list[tuple[int, str, int]] = []
    for number in range(line - 1, 0, -1):
        above = lines[number - 1]
        if not above.strip() or above.lstrip().startswith("#"):
            continue
        for column, what in _levels_of(above):
            if not levels or column < levels[-1][0]:
                levels.append((column, what, number))
        if levels and levels[-1][0] == 0:
            break
    return levels


def _levels_of(text: str) -> list[tuple[int, str]]:
    """The indentation levels a line opens, innermost first: a ``- key:`` item opens its key's
    column and the dash's."""
    found: list[tuple[int, str]] = []
    key = _KEY_LINE.match(text)
    dash = _DASH_LINE.match(text)
    if key is not None:
        column = len(key.group("indent")) + len(key.group("dash") or "")
        found.append((column, _shorten(key.group("key").strip().strip("\"'"))))
    if dash is not None:
        found.append((len(dash.group("indent")), "-"))
    return found


def _shorten(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _with_excerpt(problem: Problem, lines: list[str], spot: _Spot) -> Problem:
    """The problem with the line before (for context) and its own line shown, a caret under
    the spot."""
    if not 0 < spot.line <= len(lines):
        return problem
    shown: list[str] = []
    width = len(str(spot.line))
    before = spot.line - 1
    while before > 0 and not lines[before - 1].strip():
        before -= 1
    if before > 0:
        shown.append(f"  {before:>{width}} | {safe_line(lines[before - 1])}")
    shown.append(f"  {spot.line:>{width}} | {safe_line(lines[spot.line - 1])}")
    shown.append(f"  {'':>{width}} | {' ' * min(spot.column, _SHOWN_WIDTH)}^")
    return Problem(problem.line, problem.where, problem.message, tuple(shown))


def safe_line(text: str) -> str:
    """A config line as it may be shown: secret-looking values masked (a URL keeps its
    scheme and host), a URL's password hidden, control characters escaped, length capped."""

    def mask(match: re.Match[str]) -> str:
        value = match.group("value")
        if "${" in value:  # a reference to the environment, not the secret itself
            return match.group(0)
        url = _URL_REST.match(value)
        if url is not None and match.group("key").lower().startswith(("url", "webhook_url")):
            rest = value[url.end() :].strip("\"' /")
            shown = f"{url.group('quote')}{url.group('base')}"
            return f"{match.group('key')}{shown}/{MASK}" if rest else match.group(0)
        return f"{match.group('key')}{MASK}"

    masked = mask_url_credentials(_SECRET_VALUE.sub(mask, text.rstrip("\n")))
    printable = "".join(
        ch if ch.isprintable() or ch == "\t" else ch.encode("unicode_escape").decode("ascii")
        for ch in masked
    )
    return printable if len(printable) <= _SHOWN_WIDTH else printable[: _SHOWN_WIDTH - 1] + "…"
