"""Which Immich API key permissions each feature of the sidecar needs: the one place that says so.

The start-up check, the slash commands, ``immich-sidecar doctor`` and the docs' list of
permissions all read these facts. Permission names are those of the Immich specs'
``Permission`` enum (each operation's ``x-immich-permission``). Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sidecar.config.model import Post, Rule, Settings
from sidecar.immich.models import is_immich_id

KEY_SETTINGS_HINT = "Immich: Account settings > API keys"


@dataclass(frozen=True)
class Feature:
    """A feature the config can turn on, and the permissions its Immich calls need."""

    key: str
    label: str  # how a user names it, e.g. "/immich person"
    permissions: tuple[str, ...]
    calls: str  # the Immich calls behind the permissions, for the docs and reviewers
    fallback: str = ""  # what is done instead while the feature is off, if anything

    def missing(self, granted: Collection[str]) -> tuple[str, ...]:
        """The permissions of this feature that ``granted`` lacks (``all`` grants every one)."""
        if "all" in granted:
            return ()
        return tuple(p for p in self.permissions if p not in granted)

    def off_sentence(self, missing: Iterable[str]) -> str:
        """The one sentence said at start and answered by a command that cannot work."""
        names = ", ".join(missing) or ", ".join(self.permissions)
        fallback = f"; {self.fallback} meanwhile" if self.fallback else ""
        return (
            f"{self.label} {self._verb} off: the Immich API key lacks {names}; add "
            f"{'it' if ',' not in names else 'them'} to the key ({KEY_SETTINGS_HINT}){fallback}"
        )

    def on_sentence(self) -> str:
        """Said once when the key gains what the feature lacked."""
        names = ", ".join(self.permissions)
        return f"{self.label} {self._verb} on: the Immich API key now has {names}"

    @property
    def _verb(self) -> str:
        # "album rules are off", "/immich person is off": a label naming several things.
        plural = ("rules", "posts", "DMs", " and members", "links")
        return "are" if self.label.endswith(plural) else "is"


WATCHING = Feature(
    "watching",
    "watching for new photos",
    ("asset.read", "asset.view", "asset.statistics"),
    "POST /search/metadata and /search/statistics, GET /assets/{id}/thumbnail and "
    "/assets/{id}/video/playback (a video attached)",
)
PEOPLE = Feature(
    "people",
    "finding people by name",
    ("person.read",),
    "GET /search/person (the person names of rules and posts)",
)
UPLOAD = Feature(
    "upload",
    "/immich upload",
    ("asset.upload", "asset.update"),
    "POST /assets, PUT /assets/{id} (the description)",
)
UPLOAD_ALBUM = Feature(
    "upload_album",
    "adding uploads to the album",
    ("albumAsset.create",),
    "PUT /albums/{id}/assets",
)
UPLOAD_ALBUM_BY_NAME = Feature(
    "upload_album_by_name",
    "adding uploads to an album given by name",
    ("albumAsset.create", "album.read"),
    "GET /albums (to find the album by name), PUT /albums/{id}/assets",
)
PERSON = Feature(
    "person",
    "/immich person",
    ("person.read", "person.statistics"),
    "GET /search/person, GET /people/{id}/statistics, GET /people/{id}/thumbnail",
)
ALBUM_WATCHING = Feature(
    "album_watching",
    "album rules",
    ("album.read", "asset.read", "asset.view"),
    "GET /albums, GET /timeline/buckets and /timeline/bucket, GET /assets/{id}, "
    "POST /search/metadata (albumIds), GET /assets/{id}/thumbnail",
)
MEMORY_POSTS = Feature(
    "memory_posts",
    "memories posts",
    ("memory.read", "asset.read", "asset.view"),
    "GET /memories, POST /search/metadata (the fallback), GET /assets/{id}/thumbnail",
)
BIRTHDAY_POSTS = Feature(
    "birthday_posts",
    "birthday posts",
    ("person.read", "asset.read", "asset.view"),
    "GET /people (birthDate), POST /search/random (their photos), GET /assets/{id}/thumbnail",
)
MEMORIES_COMMAND = Feature(
    "memories_command",
    "/immich memories",
    ("memory.read", "asset.read", "asset.view"),
    "GET /memories, POST /search/metadata (the fallback), GET /assets/{id}/thumbnail",
)
CLAIMS = Feature(
    "claims",
    "/immich claim and members",
    ("person.read",),
    "GET /search/person (autocomplete, hidden people left out), GET /people/{id} (still there?)",
)
SPOTTED_DMS = Feature(
    "spotted_dms",
    "spotted DMs",
    ("asset.view", "person.read"),
    "GET /assets/{id}/thumbnail (the picture), GET /people/{id} (still there?)",
)
FAVOURITE = Feature(
    "favourite",
    "the Favourite button",
    ("asset.update",),
    "PUT /assets (ids, isFavorite); Immich allows it for the key owner's assets only",
)
PUSH_SETUP = Feature(
    "push_setup",
    "push setup",
    ("workflow.read", "workflow.create", "workflow.update"),
    "GET /workflows, POST /workflows, PUT /workflows/{id} (push status and doctor: GET only); "
    "GET /plugins when the key also has plugin.read (is the webhook step there?)",
)
INGEST = Feature(
    "ingest",
    "drag-and-drop ingest (discord.ingest)",
    ("asset.upload", "asset.update"),
    "POST /assets, PUT /assets/{id} (the description)",
)
SAVE_COMMAND = Feature(
    "save_command",
    '"Save to Immich" (message command)',
    ("asset.upload", "asset.update"),
    "POST /assets, PUT /assets/{id} (the description)",
)
SHARED_LINKS = Feature(
    "shared_links",
    "shared links",
    ("sharedLink.create",),
    "POST /shared-links (one link per message of a target with links: shared)",
    fallback="targets with links: shared link into Immich",
)
STATE_OWNER = Feature(
    "state_owner",
    "checking whose state file it is",
    ("user.read",),
    "GET /users/me (the state file belongs to one Immich user)",
)
FEATURES: tuple[Feature, ...] = (
    WATCHING,
    PEOPLE,
    UPLOAD,
    UPLOAD_ALBUM,
    UPLOAD_ALBUM_BY_NAME,
    SAVE_COMMAND,
    INGEST,
    PERSON,
    ALBUM_WATCHING,
    MEMORY_POSTS,
    BIRTHDAY_POSTS,
    MEMORIES_COMMAND,
    CLAIMS,
    SPOTTED_DMS,
    FAVOURITE,
    PUSH_SETUP,
    SHARED_LINKS,
    STATE_OWNER,
)
# The features a rule or a post needs to run at all; the others are the slash commands' and
# the start's own.
RUNNING_FEATURES = frozenset({WATCHING, PEOPLE, ALBUM_WATCHING, MEMORY_POSTS, BIRTHDAY_POSTS})
# Checks that guard the sidecar rather than do its job: without them it still posts, so they
# do not make it "not ready" (an upgrade with a key made before them keeps its pod ready).
SAFETY_FEATURES = frozenset({STATE_OWNER})
# Features with a fallback: off, the sidecar still posts (links into Immich instead of shared
# links), so they do not make it "not ready" either.
FALLBACK_FEATURES = frozenset({SHARED_LINKS})


def album_feature(album: str | None) -> Feature | None:
    """The album feature that the configured upload album needs (a name must be looked up)."""
    if not album:
        return None
    return UPLOAD_ALBUM if is_immich_id(album) else UPLOAD_ALBUM_BY_NAME


def rule_features(rule: Rule) -> tuple[Feature, ...]:
    """What one rule needs: album rules and upload rules differ; a person name must be found."""
    needs = [ALBUM_WATCHING if rule.albums.any else WATCHING]
    people = (*rule.people.any, *rule.people.all, *rule.people.none)
    if any(not is_immich_id(ref) for ref in people):
        needs.append(PEOPLE)
    return tuple(needs)


def post_features(post: Post) -> tuple[Feature, ...]:
    """What one scheduled post needs (a digest reads the state file only)."""
    needs = {"memories": [MEMORY_POSTS], "birthdays": [BIRTHDAY_POSTS]}.get(post.kind, [])
    if any(not is_immich_id(ref) for ref in post.people):
        needs.append(PEOPLE)
    return tuple(needs)


def features_in_use(settings: Settings, *, bot: bool) -> tuple[Feature, ...]:
    """The features this config turns on, in the order of ``FEATURES``. Slash commands exist
    only with a bot (``bot``)."""
    used: set[Feature] = {STATE_OWNER}
    for rule in settings.rules:
        used.update(rule_features(rule))
    for post in settings.posts:
        used.update(post_features(post))
    commands = settings.discord
    if bot and commands.upload.enabled:
        used.add(UPLOAD)
        album = album_feature(commands.upload.album)
        if album is not None:
            used.add(album)
    if bot and commands.upload.enabled:
        used.add(SAVE_COMMAND)
    if bot and commands.ingest:
        used.add(INGEST)
        used.update(f for c in commands.ingest if (f := album_feature(c.album)) is not None)
    if bot and commands.person.enabled:
        used.add(PERSON)
    if bot and commands.memories.enabled:
        used.add(MEMORIES_COMMAND)
    used.update(member_features(settings, bot=bot))
    used.update(link_features(settings))
    return tuple(f for f in FEATURES if f in used)


def member_features(settings: Settings, *, bot: bool) -> list[Feature]:
    """The people-link features this config turns on (all need the bot)."""
    if not bot:
        return []
    members = settings.discord.members
    used = []
    if members.links or members.claims_possible:
        used.append(CLAIMS)
    if any(getattr(t, "audience", None) == "members" for t in settings.targets.values()):
        used.append(SPOTTED_DMS)
    if members.favourite_roles:
        used.append(FAVOURITE)
    return used


def link_features(settings: Settings) -> list[Feature]:
    """Shared links, where a target makes them (``links: shared``; no bot needed)."""
    return [SHARED_LINKS] if any(shares(t) for t in settings.targets.values()) else []


def shares(target: object) -> bool:
    """Whether a target's messages link to shared links of their own (its ``presentation``:
    ``sidecar.targets.presentation``, read here by name as the immich package may not import
    targets)."""
    return getattr(getattr(target, "presentation", None), "links", None) == "shared"


def permissions_for(features: Iterable[Feature]) -> tuple[str, ...]:
    """Every permission the features need, each once, in a stable order."""
    return tuple(dict.fromkeys(p for feature in features for p in feature.permissions))


def gaps(features: Iterable[Feature], granted: Collection[str]) -> dict[Feature, tuple[str, ...]]:
    """The features that cannot work with the ``granted`` permissions, and what each lacks."""
    return {f: missing for f in features if (missing := f.missing(granted))}
