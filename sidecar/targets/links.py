"""Links for a person to open, as every target kind and dry-run show them (pure).

A target's ``links`` says where they go: ``immich`` into Immich's web app at
``immich.external_url`` (a login page for anyone without an account), ``app`` through
``my.immich.app`` (the Immich app on a phone that has it, else Immich's web page), ``shared``
to the message's own Immich shared link (``EXTERNAL_URL/share/KEY``, no account needed), or
``none``.
"""

from __future__ import annotations

from dataclasses import dataclass

APP_URL = "https://my.immich.app"


def asset_link(external_url: str, asset_id: str) -> str:
    return f"{external_url.rstrip('/')}/photos/{asset_id}"


def album_asset_link(external_url: str, album_id: str, asset_id: str) -> str:
    """Opens the asset inside the album."""
    return f"{external_url.rstrip('/')}/albums/{album_id}/photos/{asset_id}"


def album_link(external_url: str, album_id: str) -> str:
    return f"{external_url.rstrip('/')}/albums/{album_id}"


def app_link(asset_id: str) -> str:
    """Opens the asset in the Immich mobile app (or its web page)."""
    return asset_link(APP_URL, asset_id)


def share_link(external_url: str, key: str) -> str:
    """An Immich shared link's page: anyone with it sees its photos, without logging in."""
    return f"{external_url.rstrip('/')}/share/{key}"


@dataclass(frozen=True)
class Links:
    """Where one message's links go: ``style`` is the target's ``links``; ``shared`` the
    message's shared link once made (every link then goes there). A ``shared`` target whose
    link could not be made links into Immich."""

    style: str
    external_url: str
    shared: str | None = None

    @property
    def _base(self) -> str | None:
        if self.style == "none":
            return None
        return APP_URL if self.style == "app" else self.external_url.rstrip("/")

    def asset(self, asset_id: str, album_id: str | None = None) -> str | None:
        """One asset (inside its album, for an album rule's delivery)."""
        if self.shared is not None or self._base is None:
            return self.shared
        if album_id is None or self.style == "app":
            return asset_link(self._base, asset_id)
        return album_asset_link(self._base, album_id, asset_id)

    def album(self, album_id: str) -> str | None:
        if self.shared is not None or self._base is None:
            return self.shared
        return album_link(self._base, album_id)

    def everything(self) -> str | None:
        """Where to see them all: the timeline (or the shared link's page)."""
        if self.shared is not None or self._base is None:
            return self.shared
        return f"{self._base}/photos"

    def rebased(self, link: str | None) -> str | None:
        """A link into Immich made elsewhere (a post's: a memory, a person's page) in this
        style: through my.immich.app for ``app``, none for ``none``."""
        if self.shared is not None:
            return self.shared
        if link is None or self._base is None:
            return None
        external = self.external_url.rstrip("/")
        if self.style == "app" and link.startswith(external + "/"):
            return APP_URL + link[len(external) :]
        return link
