"""``doctor``'s Immich checks, in the order they are printed: Immich answers, its version, the
API key and what it allows, every name ``run`` looks up, the member links' people, and whose
state file this is. A failure that makes the rest meaningless ends the list."""

from __future__ import annotations

from sidecar.config.model import Settings
from sidecar.doctor.members import member_name_checks
from sidecar.doctor.names import name_checks
from sidecar.doctor.state import owner_checks
from sidecar.engine.accounts import Accounts
from sidecar.immich.client import ImmichClient
from sidecar.immich.errors import ImmichAuthError, ImmichError
from sidecar.immich.models import ServerVersion
from sidecar.immich.permissions import (
    KEY_SETTINGS_HINT,
    PEOPLE,
    STATE_OWNER,
    Feature,
    features_in_use,
)
from sidecar.masking import display_url
from sidecar.ops.checks import Check, failed, passed

SUPPORTED_MAJORS = (2, 3)


def version_check(version: ServerVersion) -> Check:
    if version.major in SUPPORTED_MAJORS:
        return passed(f"Immich {version} is a supported version (2.x, 3.x)")
    if version.major < SUPPORTED_MAJORS[0]:
        return failed(
            f"Immich {version} is too old for this sidecar", "upgrade Immich to 2.x or later"
        )
    return failed(
        f"Immich {version} is newer than this sidecar knows (2.x, 3.x)",
        "upgrade immich-discord-sidecar",
    )


def feature_check(feature: Feature, granted: frozenset[str]) -> Check:
    missing = feature.missing(granted)
    if not missing:
        return passed(f"the API key allows {feature.label} ({', '.join(feature.permissions)})")
    return failed(
        f"the API key lacks {', '.join(missing)}, needed for {feature.label}",
        f"tick {', '.join(missing)} on the key ({KEY_SETTINGS_HINT}), "
        "or create a new key with them and set immich.api_key",
    )


async def immich_checks(
    settings: Settings, client: ImmichClient, *, bot: bool, accounts: Accounts | None = None
) -> list[Check]:
    url = display_url(settings.immich.url)
    try:
        version = await client.version()
    except ImmichError as err:
        return [
            failed(
                f"Immich does not answer at {url} ({err})",
                "check immich.url: is Immich running, and is this the address from "
                "where the sidecar runs? (laptop: http://localhost:2283; beside Immich's "
                "docker compose: http://immich-server:2283)",
            )
        ]
    checks = [passed(f"Immich answers at {url}"), version_check(version)]
    try:
        granted = await client.key_permissions()
    except ImmichAuthError:
        return [
            *checks,
            failed(
                f"Immich rejected the API key ({url} answered 401)",
                f"check immich.api_key; create a key in {KEY_SETTINGS_HINT}",
            ),
        ]
    except ImmichError as err:
        return [
            *checks,
            failed(f"could not read the API key's permissions ({err})", "check immich.api_key"),
        ]
    checks.append(passed("Immich accepts the API key"))
    checks += [feature_check(f, granted) for f in features_in_use(settings, bot=bot)]
    checks += await name_checks(settings, client, granted, bot=bot, accounts=accounts)
    if not PEOPLE.missing(granted):
        checks += await member_name_checks(settings, client, accounts)
    if STATE_OWNER.missing(granted):
        return checks
    return checks + await owner_checks(settings, client)
