"""Shared config texts and helpers for the settings, config error and CLI tests."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = REPO_ROOT / "config" / "config.example.yaml"

# Values that must never show up in any output.
API_KEY = "immich-key-s3cr3t-0001"
DISCORD_TOKEN = "discord-token-s3cr3t-0002"
WEBHOOK_URL = "https://discord.com/api/webhooks/42/webhook-s3cr3t-0003"
SECRETS = (API_KEY, DISCORD_TOKEN, WEBHOOK_URL)

ENV = {
    "IMMICH_API_KEY": API_KEY,
    "DISCORD_TOKEN": DISCORD_TOKEN,
    "GRANDMA_WEBHOOK_URL": WEBHOOK_URL,
}

# One of each target kind; line numbers matter to the error tests (line 1 is "immich:").
VALID = """\
immich:
  url: http://immich-server:2283/api/
  api_key: ${IMMICH_API_KEY}
discord:
  token: ${DISCORD_TOKEN}
poll:
  interval: 1h30m
targets:
  family: {channel_id: "123456789012345678"}
  grandma: {webhook_url: "${GRANDMA_WEBHOOK_URL}"}
  stdout: {console: true}
rules:
  - name: kids
    people: {any: [Alice, Bob]}
    targets: [family, stdout]
  - name: grandma
    people: {all: [Alice], none: [Carol]}
    asset_types: [IMAGE]
    targets: [grandma]
    mention_roles: ["222222222222222222", 333]
"""


def write_config(directory: Path, text: str | bytes, name: str = "config.yaml") -> Path:
    path = directory / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path
