"""What the bot's buttons do when clicked: "♥ Favourite" under a post, Approve / Deny under a
claim. Each is a discord.py dynamic item: its state (asset id; member and person) is in the
custom id, parsed back at each click, so buttons of messages sent before a restart still work
(registered once in ``SidecarBot.setup_hook``)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import discord

from sidecar.config.model import Settings
from sidecar.discord.speech import member_words
from sidecar.discord.uploads.checks import Named
from sidecar.engine.members import MemberDirectory
from sidecar.immich.errors import ImmichBadRequestError, ImmichNotFoundError, ImmichPermissionError
from sidecar.immich.models import Person
from sidecar.immich.permissions import FAVOURITE
from sidecar.messages import texts
from sidecar.messages.render import ENGLISH, Words, say
from sidecar.targets.discord.buttons import FAVOURITE_ID, FAVOURITE_LABEL, favourite_custom_id
from sidecar.targets.discord.safe import safe_text

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
CLAIM_ID = re.compile(
    r"immich:claim:(?P<decision>approve|deny):(?P<user>[0-9]{1,20}):(?P<person>[0-9a-fA-F-]{36})"
)


class MembersImmich(Protocol):
    """The Immich calls of claims and buttons (``ImmichClient``)."""

    async def search_person(self, name: str) -> list[Person]: ...

    async def person(self, person_id: str) -> Person | None: ...

    async def set_favourite(self, asset_ids: Sequence[str], favourite: bool = True) -> None: ...

    async def key_permissions(self) -> frozenset[str]: ...


class MembersHost(Protocol):
    """What the buttons and member commands need from the bot (``SidecarBot``)."""

    settings: Settings
    members_immich: MembersImmich
    members_accounts: Mapping[str, MembersImmich]  # every account, the first the default one
    directory: MemberDirectory | None


def host_of(interaction: discord.Interaction) -> MembersHost | None:
    client: Any = interaction.client
    return client if hasattr(client, "members_immich") else None


def role_names(interaction: discord.Interaction) -> list[Named]:
    return [Named(r.id, r.name) for r in getattr(interaction.user, "roles", [])]


def has_role(interaction: discord.Interaction, wanted: Sequence[str | int]) -> bool:
    roles = role_names(interaction)
    return any(role.matches(str(w)) for role in roles for w in wanted if str(w).strip())


async def answer(interaction: discord.Interaction, text: str) -> None:
    """An ephemeral answer, whether or not the interaction was answered already."""
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
    else:
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)


# ---------------------------------------------------------------------------- ♥ Favourite


class FavouriteButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=FAVOURITE_ID.pattern
):
    def __init__(self, asset_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label=FAVOURITE_LABEL,
                style=discord.ButtonStyle.secondary,
                custom_id=favourite_custom_id(asset_id),
            )
        )
        self.asset_id = asset_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> FavouriteButton:
        return cls(match["asset"])

    async def callback(self, interaction: discord.Interaction) -> None:
        host = host_of(interaction)
        if host is None:
            return
        try:
            await answer(interaction, await favourite(host, interaction, self.asset_id))
        except Exception:
            log.exception("the Favourite button failed")


async def favourite(host: MembersHost, interaction: discord.Interaction, asset_id: str) -> str:
    """Mark the asset a favourite in Immich; the sentence to answer the clicker with."""
    roles = host.settings.discord.members.favourite_roles
    words = member_words(interaction, host.settings)
    if not roles or not has_role(interaction, roles):
        return say(words, texts.FAVOURITE_NO_ROLE, {})
    try:
        await host.members_immich.set_favourite([asset_id])
    except ImmichPermissionError:
        try:
            missing = FAVOURITE.missing(await host.members_immich.key_permissions())
        except Exception:
            missing = ()
        sentence = FAVOURITE.off_sentence(missing)
        log.warning("%s", sentence)
        return say(words, texts.SORRY_OFF, {"reason": sentence})
    except (ImmichBadRequestError, ImmichNotFoundError):
        log.info("favourite refused by Immich for asset %s: not the key owner's", asset_id)
        return say(words, texts.FAVOURITE_NOT_OWNER, {})
    except Exception as error:
        log.warning("marking a favourite failed: %s", type(error).__name__)
        return say(words, texts.IMMICH_DOWN, {})
    return say(words, texts.FAVOURITE_DONE, {})


# ---------------------------------------------------------------------------- claims


def claim_custom_id(decision: str, user_id: int, person_id: str) -> str:
    return f"immich:claim:{decision}:{user_id}:{person_id}"


def claim_view(user_id: int, person_id: str, words: Words = ENGLISH) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(ClaimButton("approve", user_id, person_id, words))
    view.add_item(ClaimButton("deny", user_id, person_id, words))
    return view


class ClaimButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=CLAIM_ID.pattern):
    def __init__(self, decision: str, user_id: int, person_id: str, words: Words = ENGLISH) -> None:
        super().__init__(
            discord.ui.Button(
                label=say(words, texts.APPROVE if decision == "approve" else texts.DENY, {}),
                style=(
                    discord.ButtonStyle.success
                    if decision == "approve"
                    else discord.ButtonStyle.danger
                ),
                custom_id=claim_custom_id(decision, user_id, person_id),
            )
        )
        self.decision, self.user_id, self.person_id = decision, user_id, person_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> ClaimButton:
        return cls(match["decision"], int(match["user"]), match["person"].lower())

    async def callback(self, interaction: discord.Interaction) -> None:
        host = host_of(interaction)
        if host is None or host.directory is None:
            return
        try:
            await decide(host, host.directory, interaction, self)
        except Exception:
            log.exception("a claim decision failed")


async def decide(
    host: MembersHost,
    directory: MemberDirectory,
    interaction: discord.Interaction,
    button: ClaimButton,
) -> None:
    approvers = host.settings.discord.members.approvers
    # The request is read by every approver: it speaks the server's language, the config's.
    words = Words(host.settings.locale, host.settings.timezone)
    if not has_role(interaction, approvers):
        own = member_words(interaction, host.settings)
        await answer(interaction, say(own, texts.DECIDE_NO_ROLE, {}))
        return
    store = directory.store
    claim = store.claim_for(button.user_id, button.person_id)
    if claim is None or claim.approved:
        await _close_request(interaction, say(words, texts.CLAIM_GONE, {}))
        return
    values = {
        "member": f"<@{button.user_id}>",
        "name": safe_text(claim.person_name) or say(words, texts.NO_NAME, {}),
        "approver": _by(interaction),
    }
    if button.decision == "deny":
        store.drop_claim(button.user_id, button.person_id, pending=True)
        log.info("claim of %s by Discord member %s denied", values["name"], button.user_id)
        await _close_request(interaction, say(words, texts.CLAIM_DENIED, values))
        return
    refusal = directory.claim_refusal(button.user_id, button.person_id, claim.account)
    if refusal is not None:
        store.drop_claim(button.user_id, button.person_id, pending=True)
        text = say(words, texts.CLAIM_CANNOT, {**values, "reason": refusal})
        await _close_request(interaction, text)
        return
    store.approve_claim(button.user_id, button.person_id, interaction.user.id)
    log.info("claim of %s by Discord member %s approved", values["name"], button.user_id)
    await _close_request(interaction, say(words, texts.CLAIM_APPROVED, values))


def _by(interaction: discord.Interaction) -> str:
    return f"<@{interaction.user.id}>"


async def _close_request(interaction: discord.Interaction, text: str) -> None:
    """Replace the request's words and take its buttons away."""
    await interaction.response.edit_message(content=text, view=None, allowed_mentions=NO_MENTIONS)


def dynamic_items() -> tuple[type[discord.ui.DynamicItem[Any]], ...]:
    return (FavouriteButton, ClaimButton)
