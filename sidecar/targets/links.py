"""Links into Immich's web app for a person to open (``immich.external_url``), as every target
kind and dry-run show them. Pure."""

from __future__ import annotations


def asset_link(external_url: str, asset_id: str) -> str:
    return f"{external_url.rstrip('/')}/photos/{asset_id}"


def album_asset_link(external_url: str, album_id: str, asset_id: str) -> str:
    """Opens the asset inside the album."""
    return f"{external_url.rstrip('/')}/albums/{album_id}/photos/{asset_id}"


def album_link(external_url: str, album_id: str) -> str:
    return f"{external_url.rstrip('/')}/albums/{album_id}"
