"""Discord attachments into Immich: the one upload path of ``/immich upload``, the ingest
channels and the "Save to Immich" message command.

Each file is checked (size as Discord reports it, then as downloaded; type by content, never by
name), uploaded, given its description (``PUT /assets/{id}``: neither Immich 2.x nor 3.x takes
one with the upload), and the uploads are added to the album. A file Immich already had (same
checksum) comes back as a duplicate: its description is left as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

import aiohttp
import discord

from sidecar.discord.uploads.checks import sanitise_filename, size_refusal, sniff_media_type
from sidecar.immich.errors import ImmichPermissionError
from sidecar.immich.models import Album, UploadResult, is_immich_id
from sidecar.immich.permissions import Feature, album_feature
from sidecar.targets.discord.safe import safe_text

log = logging.getLogger(__name__)

Outcome = Literal["uploaded", "duplicate", "refused", "failed"]
NOT_MEDIA = "not a photo or video Immich can take"


class ImmichForUploads(Protocol):
    """The Immich client calls an upload makes (sidecar.immich.client.ImmichClient)."""

    async def upload_asset(
        self,
        filename: str,
        data: bytes,
        *,
        file_created_at: datetime,
        file_modified_at: datetime,
        content_type: str,
    ) -> UploadResult: ...

    async def set_description(self, asset_id: str, text: str) -> object: ...

    async def add_to_album(self, album_id: str, asset_ids: Sequence[str]) -> object: ...

    async def list_albums(self) -> list[Album]: ...

    async def key_permissions(self) -> frozenset[str]: ...


@dataclass(frozen=True)
class FileResult:
    """What became of one attachment."""

    name: str  # as shown to the user (sanitised, Markdown-safe)
    outcome: Outcome
    line: str  # the line that says so, with the link when there is an asset
    asset_id: str | None = None
    reason: str = ""  # why it was refused or failed


@dataclass(frozen=True)
class UploadReport:
    files: tuple[FileResult, ...]
    album_problem: str | None = None  # a sentence when adding to the album did not work
    album_id: str | None = None

    @property
    def asset_ids(self) -> tuple[str, ...]:
        return tuple(f.asset_id for f in self.files if f.asset_id is not None)

    @property
    def all_in(self) -> bool:
        """Every file is in Immich now (uploaded, or there before) and the album took them."""
        return (
            bool(self.files)
            and self.album_problem is None
            and all(f.outcome in ("uploaded", "duplicate") for f in self.files)
        )

    def lines(self) -> list[str]:
        return [f.line for f in self.files] + ([self.album_problem] if self.album_problem else [])


def immich_reason(error: Exception) -> str:
    status = getattr(error, "status", None)
    return f"Immich answered {status}" if isinstance(status, int) else "Immich could not be reached"


async def off_sentence(immich: ImmichForUploads, feature: Feature) -> str:
    """What to tell a user when Immich refused a call for lack of a key permission: the
    sentence the start-up check logged, naming what the key lacks now."""
    try:
        missing = feature.missing(await immich.key_permissions())
    except Exception as error:
        log.warning("could not read the API key's permissions: %s", type(error).__name__)
        missing = ()
    log.warning("%s", feature.off_sentence(missing))
    return feature.off_sentence(missing)


class AttachmentUploader:
    """Uploads attachments for one feature (whose name a missing permission is blamed on)."""

    def __init__(
        self,
        immich: ImmichForUploads,
        external_url: Callable[[], str],
        feature: Feature,
        on_asset: Callable[[str], Awaitable[None] | None] | None = None,
        ours: Callable[[str], bool] = lambda _asset: False,
    ) -> None:
        self._immich = immich
        self._external_url = external_url
        self._feature = feature
        self._on_asset = on_asset  # told each asset id as soon as Immich has it
        # A duplicate that this very upload sent before (a crash cut it short) still gets its
        # description; anyone else's photo keeps its own.
        self._ours = ours

    async def upload(
        self,
        attachments: Sequence[discord.Attachment],
        *,
        max_mb: int,
        description: str | None,
        album: str | None,
    ) -> UploadReport:
        files = []
        for attachment in attachments:
            files.append(await self._upload_one(attachment, max_mb, description))
        ids = [f.asset_id for f in files if f.asset_id is not None]
        if not album or not ids:
            return UploadReport(tuple(files))
        album_id, problem = await self._add_to_album(album, ids)
        return UploadReport(tuple(files), problem, album_id)

    async def _add_to_album(self, album: str, ids: list[str]) -> tuple[str | None, str | None]:
        try:
            album_id = await self._album_id(album)
            if album_id is None:
                return None, (
                    f"Could not add them to the album: Immich has no album called "
                    f"{safe_text(album)!r}."
                )
            await self._immich.add_to_album(album_id, ids)
        except ImmichPermissionError:
            feature = album_feature(album)
            assert feature is not None  # album is set
            return None, f"Could not add them to the album: {await self._off(feature)}."
        except Exception as error:
            log.warning("adding uploads to album failed: %s", type(error).__name__)
            return None, f"Could not add them to the album ({immich_reason(error)})."
        return album_id, None

    async def _album_id(self, album: str) -> str | None:
        """The configured album is an Immich album id, or the name of one."""
        if is_immich_id(album):
            return album
        wanted = album.casefold()
        return next(
            (a.id for a in await self._immich.list_albums() if a.name.casefold() == wanted), None
        )

    async def _off(self, feature: Feature) -> str:
        return await off_sentence(self._immich, feature)

    async def _upload_one(
        self, attachment: discord.Attachment, max_mb: int, description: str | None
    ) -> FileResult:
        shown = safe_text(sanitise_filename(attachment.filename))

        def refused(reason: str, outcome: Outcome = "refused") -> FileResult:
            return FileResult(shown, outcome, f"`{shown}`: {outcome}, {reason}.", reason=reason)

        if too_big := size_refusal(attachment.size, max_mb):
            return refused(too_big)
        try:
            data = await attachment.read()
        except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as error:
            log.warning("could not download attachment: %s", type(error).__name__)
            return refused("could not download it from Discord", "failed")
        if too_big := size_refusal(len(data), max_mb):
            return refused(too_big)
        media_type = sniff_media_type(data)
        if media_type is None:
            return refused(NOT_MEDIA)
        filename = sanitise_filename(attachment.filename, media_type)
        shown = safe_text(filename)
        sent_at = discord.utils.snowflake_time(attachment.id)
        try:
            result = await self._immich.upload_asset(
                filename,
                data,
                file_created_at=sent_at,
                file_modified_at=sent_at,
                content_type=media_type,
            )
        except ImmichPermissionError:
            return refused(await self._off(self._feature), "failed")
        except Exception as error:
            log.warning("upload of %s failed: %s", filename, type(error).__name__)
            return refused(immich_reason(error), "failed")
        ours = result.duplicate and self._ours(result.id)  # asked before it is remembered
        if self._on_asset is not None:
            remembered = self._on_asset(result.id)
            if remembered is not None:
                await remembered
        return await self._describe(shown, result, description, ours=ours)

    async def _describe(
        self, shown: str, result: UploadResult, description: str | None, *, ours: bool
    ) -> FileResult:
        link = f"<{self._external_url().rstrip('/')}/photos/{result.id}>"
        if result.duplicate and not ours:
            line = f"`{shown}`: already in Immich, {link}"
            return FileResult(shown, "duplicate", line, result.id)
        outcome: Outcome = "duplicate" if ours else "uploaded"
        said = "already in Immich" if ours else "uploaded"
        line = f"`{shown}`: {said}, {link}"
        if description:
            try:
                await self._immich.set_description(result.id, description)
            except ImmichPermissionError:
                line += f" (description not set: {await self._off(self._feature)})"
            except Exception as error:
                log.warning("setting a description failed: %s", type(error).__name__)
                line = f"`{shown}`: {said} (description not set), {link}"
        return FileResult(shown, outcome, line, result.id)
