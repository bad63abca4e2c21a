"""Secrets kept out of text meant for people: a `Secret` that never prints itself, a secret value
replaced where it stands whole, and the password of a URL (``http://user:PASSWORD@host``) hidden.
Pure; every area may use it.

A secret is masked as a whole value, never character by character: with an API key ``k``, the
error ``Name or service not known`` stays as it is, while ``key k was refused`` becomes ``key
******** was refused``. A value stands whole where neither neighbour is a letter, a digit,
``_`` or ``-`` (what could continue a key or a word).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

MASK = "********"
_WORD_CHARS = r"A-Za-z0-9_\-"
# scheme://user:password@ or scheme://token@: what follows the user (or the whole user part,
# which may be a token) up to the last '@' before the host.
_CREDENTIALS = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?:(?P<user>[^\s/?#@:]*):)?[^\s/?#]*@"
)


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every whole occurrence of each secret value replaced by ``MASK``, and the
    password of every URL in it hidden."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        # Lookarounds instead of \b: a key may start or end with '-' itself.
        whole = re.compile(rf"(?<![{_WORD_CHARS}]){re.escape(secret)}(?![{_WORD_CHARS}])")
        text = whole.sub(MASK, text)
    return mask_url_credentials(text)


def mask_url_credentials(text: str) -> str:
    """Every ``scheme://user:password@host`` in ``text`` as ``scheme://user:********@host``, and
    ``scheme://token@host`` as ``scheme://********@host``."""

    def hide(match: re.Match[str]) -> str:
        user = match.group("user")
        return f"{match.group('scheme')}{'' if user is None else user + ':'}{MASK}@"

    return _CREDENTIALS.sub(hide, text)


def display_url(url: str) -> str:
    """A URL as it may be shown: its password (if any) masked, the rest unchanged."""
    return mask_url_credentials(url)


def without_credentials(url: str) -> str:
    """The URL with no ``user:password@`` at all (a link for others to open)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


class Secret:
    """A secret string (API key, token, webhook URL) that never prints itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)
