"""What Discord checks in a message before it posts it, for the fake Discord
(``tests.fakes.fake_discord``): components v2, webhooks' ``with_components``, the upload size.

As Discord's API documents them (Message Components, "Components v2"; Execute Webhook):

- A message with the ``IS_COMPONENTS_V2`` flag (1 << 15) has no ``content`` and no ``embeds``;
  its components are layout components (text display 10, media gallery 12, container 17,
  section 9, separator 14, file 13, action row 1); at most 40 components in all, nested ones
  counted; at most 4,000 characters of text across its text displays; a media gallery holds
  1 to 10 items. Its attachments show only where a component references them as
  ``attachment://NAME``; a reference to a file not uploaded is refused.
- Without the flag, only action rows may be top-level components.
- A webhook takes components only when executed with ``?with_components=true`` (without it
  they are ignored, so a v2 message is empty); a webhook not owned by an application may send
  only non-interactive ones (link buttons, text, media).
- Discord refuses files over the upload limit, 10 MiB a message in a server without boosts,
  with 413 (code 40005, "Request entity too large").

Each check returns the error Discord answers, ``(status, body)``, or None.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator, Mapping
from typing import Any

IS_COMPONENTS_V2 = 1 << 15
MAX_COMPONENTS = 40
MAX_V2_TEXT = 4000
MAX_GALLERY_ITEMS = 10
UPLOAD_LIMIT = 10 * 1024 * 1024
ACTION_ROW, BUTTON, SECTION, TEXT_DISPLAY, THUMBNAIL, MEDIA_GALLERY = 1, 2, 9, 10, 11, 12
FILE, SEPARATOR, CONTAINER = 13, 14, 17
LAYOUT_TYPES = frozenset(
    {ACTION_ROW, SECTION, TEXT_DISPLAY, MEDIA_GALLERY, FILE, SEPARATOR, CONTAINER}
)
LINK_STYLE = 5

Refusal = tuple[int, dict[str, Any]]


def invalid_form(field: str, code: str, message: str) -> Refusal:
    """Discord's 400 for a body that breaks a rule: code 50035 and where it is."""
    return (
        400,
        {
            "message": "Invalid Form Body",
            "code": 50035,
            "errors": {field: {"_errors": [{"code": code, "message": message}]}},
        },
    )


def walk(components: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every component, nested ones too (rows, sections, containers and their accessories)."""
    for component in components:
        yield component
        yield from walk(list(component.get("components") or []))
        if isinstance(component.get("accessory"), dict):
            yield component["accessory"]


def references(components: list[dict[str, Any]]) -> list[str]:
    """The ``attachment://NAME`` files the components show, in order."""
    found: list[str] = []
    for component in walk(components):
        media = [item.get("media") for item in component.get("items") or []]
        media += [component.get("media"), component.get("file")]
        for item in media:
            url = item.get("url") if isinstance(item, dict) else None
            if isinstance(url, str) and url.startswith("attachment://"):
                found.append(url.removeprefix("attachment://"))
    return found


def too_large(files: Mapping[str, tuple[str, bytes]], limit: int = UPLOAD_LIMIT) -> Refusal | None:
    if sum(len(data) for _, data in files.values()) > limit:
        return 413, {"message": "Request entity too large", "code": 40005}
    return None


def message_refusal(payload: Mapping[str, Any], names: list[str]) -> Refusal | None:
    """Discord's answer to a message body it will not post (``names``: the uploaded files)."""
    components = list(payload.get("components") or [])
    v2 = bool(int(payload.get("flags") or 0) & IS_COMPONENTS_V2)
    if not v2:
        if any(int(c.get("type", 0)) != ACTION_ROW for c in components):
            return invalid_form(
                "components", "UNION_TYPE_CHOICES", "layout components need the flag"
            )
        return None
    if payload.get("content") or payload.get("embeds"):
        return invalid_form(
            "content",
            "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
            "The 'content' and 'embeds' fields cannot be used with components v2",
        )
    return _v2_refusal(components, names)


def _v2_refusal(components: list[dict[str, Any]], names: list[str]) -> Refusal | None:
    every = list(walk(components))
    if not components:
        return 400, {"message": "Cannot send an empty message", "code": 50006}
    if any(int(c.get("type", 0)) not in LAYOUT_TYPES for c in components):
        return invalid_form("components", "UNION_TYPE_CHOICES", "not a top-level component")
    if len(every) > MAX_COMPONENTS:
        return invalid_form(
            "components", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_COMPONENTS} or fewer in length."
        )
    text = sum(len(str(c.get("content") or "")) for c in every if c.get("type") == TEXT_DISPLAY)
    if text > MAX_V2_TEXT:
        return invalid_form(
            "components", "COMPONENT_TEXT_TOO_LONG", f"text over {MAX_V2_TEXT} characters"
        )
    for gallery in (c for c in every if c.get("type") == MEDIA_GALLERY):
        if not 1 <= len(gallery.get("items") or []) <= MAX_GALLERY_ITEMS:
            return invalid_form(
                "components", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 10 in length."
            )
    missing = [name for name in references(components) if name not in names]
    if missing:
        return invalid_form(
            "components",
            "UNFURLED_MEDIA_ITEM_ATTACHMENT_NOT_FOUND",
            f"no attachment named {missing[0]}",
        )
    return None


def webhook_components(
    payload: dict[str, Any], with_components: bool, accepts_components: bool
) -> tuple[dict[str, Any], Refusal | None]:
    """What a (non-application) webhook makes of a body's components: ignored without
    ``with_components`` (the payload as Discord then reads it), refused when interactive,
    refused outright by a webhook that takes no components."""
    components = list(payload.get("components") or [])
    if not components:
        return payload, None
    if not with_components:
        return {k: v for k, v in payload.items() if k != "components"}, None
    if not accepts_components:
        return payload, invalid_form(
            "components", "COMPONENTS_NOT_ALLOWED", "This webhook cannot send components"
        )
    interactive = [
        c
        for c in walk(components)
        if (c.get("type") == BUTTON and c.get("style") != LINK_STYLE) or "custom_id" in c
    ]
    if interactive:
        return payload, invalid_form(
            "components",
            "COMPONENT_INTERACTIVE_NOT_ALLOWED",
            "Interactive components cannot be sent by webhooks not owned by an application",
        )
    return payload, None


def shown(payload: Mapping[str, Any], names: list[str]) -> list[str]:
    """The uploaded files a reader sees: in a v2 message only those the components
    reference; otherwise every one."""
    if int(payload.get("flags") or 0) & IS_COMPONENTS_V2:
        wanted = set(references(list(payload.get("components") or [])))
        return [name for name in names if name in wanted]
    return list(names)


def content_type(filename: str) -> str:
    """The type Discord gives an attachment: from its file name (discord.py uploads every file
    as application/octet-stream)."""
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"
