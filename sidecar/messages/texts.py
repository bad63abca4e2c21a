"""The built-in texts: each is a template (the same context and filters as a ``messages:``
template) whose source is a msgid of the catalogs, so a translation is a template too and the
two can never disagree on what they may say. ``T_`` and ``TP_`` mark them for ``pybabel
extract`` (keywords ``T_:1c,2`` and ``TP_:1c,2,3``): the first argument is the msgctxt, which
names the message for translators; ``TP_`` texts have plural forms, chosen by ``count`` (or the
number the caller gives) with the language's CLDR rule."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Text:
    context: str  # msgctxt: what the message is, for translators
    singular: str  # msgid: a template
    plural: str | None = None  # msgid_plural, for texts said of a number


def T_(context: str, message: str) -> Text:
    return Text(context, message)


def TP_(context: str, singular: str, plural: str) -> Text:
    return Text(context, singular, plural)


# -- a rule's notification: the message's content ------------------------------------------------
PEOPLE_PHOTOS = TP_(
    "notification: who is in the new photos",
    "{{ people | names }}: {{ count | number }} new photo",
    "{{ people | names }}: {{ count | number }} new photos",
)
PEOPLE_VIDEOS = TP_(
    "notification: who is in the new videos",
    "{{ people | names }}: {{ count | number }} new video",
    "{{ people | names }}: {{ count | number }} new videos",
)
PEOPLE_MIXED = TP_(
    "notification: who is in the new photos and videos",
    "{{ people | names }}: {{ count | number }} new photo or video",
    "{{ people | names }}: {{ count | number }} new photos and videos",
)
RULE_PHOTOS = TP_(
    "notification: new photos of a rule without named people",
    "**{{ rule }}**: {{ count | number }} new photo",
    "**{{ rule }}**: {{ count | number }} new photos",
)
RULE_VIDEOS = TP_(
    "notification: new videos of a rule without named people",
    "**{{ rule }}**: {{ count | number }} new video",
    "**{{ rule }}**: {{ count | number }} new videos",
)
RULE_MIXED = TP_(
    "notification: new photos and videos of a rule without named people",
    "**{{ rule }}**: {{ count | number }} new photo or video",
    "**{{ rule }}**: {{ count | number }} new photos and videos",
)
ALBUM_PHOTOS = TP_(
    "album rule: photos added to an album",
    "{{ count | number }} new photo in **{{ album.name }}**"
    "{% if people %} — {{ people | names }}{% endif %}",
    "{{ count | number }} new photos in **{{ album.name }}**"
    "{% if people %} — {{ people | names }}{% endif %}",
)
ALBUM_VIDEOS = TP_(
    "album rule: videos added to an album",
    "{{ count | number }} new video in **{{ album.name }}**"
    "{% if people %} — {{ people | names }}{% endif %}",
    "{{ count | number }} new videos in **{{ album.name }}**"
    "{% if people %} — {{ people | names }}{% endif %}",
)
ALBUM_MIXED = TP_(
    "album rule: photos and videos added to an album",
    "{{ count | number }} new photo or video in **{{ album.name }}**"
    "{% if people %} — {{ people | names }}{% endif %}",
    "{{ count | number }} new photos and videos in **{{ album.name }}**"
    "{% if people %} — {{ people | names }}{% endif %}",
)
UNNAMED_ALBUM = T_("an album without a name in Immich", "an album")

# -- one picture's embed --------------------------------------------------------------------------
PHOTO_TITLE = T_(
    "embed title of one new photo",
    "New photo{% if people %} of {{ people | names }}{% endif %}",
)
VIDEO_TITLE = T_(
    "embed title of one new video",
    "New video{% if people %} of {{ people | names }}{% endif %}",
)
FIELD_WHO = T_("embed field: who is in the picture", "Who")
FIELD_TAKEN = T_("embed field: when the picture was taken", "Taken")
FIELD_WHERE = T_("embed field: where the picture was taken", "Where")
FIELD_ALBUM = T_("embed field: the album the picture was added to", "Album")
FIELD_RULE = T_("embed field: the watch rule that matched", "Rule")
NOBODY = T_("who is in a picture: no face found", "nobody recognised")
UNNAMED = TP_(
    "who is in a picture: faces Immich has not named",
    "someone",
    "{{ count | number }} people, not named yet",
)
OTHERS = TP_(
    "who is in a picture: after the named people",
    "{{ count | number }} other person",
    "{{ count | number }} other people",
)
VIDEO_NOTE = T_(
    "embed description of a video (Discord shows its still only)",
    "🎬 This is a video: open it in Immich to play it.",
)
SEE_ALL = T_(
    "embed description of a summary of many new pictures",
    "Rule **{{ rule }}**. Open Immich to see them all.",
)
SEE_ALL_ALBUM = T_(
    "embed description of a summary of many pictures added to an album",
    "Rule **{{ rule }}**. Open the album to see them all.",
)

# -- scheduled posts ------------------------------------------------------------------------------
MEMORY_YEAR = TP_(
    "memories post: one past year (years_ago | ago: '3 years ago')",
    "📅 {{ years_ago | ago }} today ({{ year }}): {{ count | number }} photo",
    "📅 {{ years_ago | ago }} today ({{ year }}): {{ count | number }} photos",
)
MEMORY_DAY = T_(
    "memories post: the day its photos were taken, under the headline",
    "{{ taken | date('full') }}",
)
MEMORY_YEARS = TP_(
    "memories post: several past years in one message (ages: '1 year ago (2025)', ...)",
    "📅 On this day: {{ ages | names }}: {{ count | number }} photo",
    "📅 On this day: {{ ages | names }}: {{ count | number }} photos",
)
BIRTHDAY = TP_(
    "birthday post (age is a number of years)",
    "🎂 {{ person }} turns {{ age }} today",
    "🎂 {{ person }} turns {{ age }} today",
)
DIGEST = TP_(
    "digest post: what the rules matched in a period (period: 'This week'; ranking: 'Alice 30, "
    "Bob 12')",
    "{{ period }}: {{ count | number }} new photo{% if ranking %} — {{ ranking }}{% endif %}",
    "{{ period }}: {{ count | number }} new photos{% if ranking %} — {{ ranking }}{% endif %}",
)
PERIOD_DAY = T_("digest period of a day", "Today")
PERIOD_WEEK = T_("digest period of a week", "This week")
PERIOD_MONTH = T_("digest period of a month", "This month")
PERIOD_SINCE = T_("digest period longer than a month", "Since {{ date | date('long') }}")

# -- buttons --------------------------------------------------------------------------------------
OPEN_IN_IMMICH = T_("button and link title: open the picture in Immich", "Open in Immich")
FAVOURITE = T_("button: mark the picture a favourite in Immich", "♥ Favourite")
APPROVE = T_("button: approve a member's claim", "Approve")
DENY = T_("button: deny a member's claim", "Deny")

# -- the bot's replies (in the member's Discord language where the sidecar speaks it) ------------
SORRY = T_(
    "bot reply: an unexpected failure",
    "Sorry, something went wrong on our side; the details are in the sidecar's log.",
)
SORRY_OFF = T_(
    "bot reply: Immich refused for lack of a key permission (reason: English, from the log)",
    "Sorry, {{ reason }}.",
)
REFUSED = T_(
    "bot reply: the member may not do this here (reason: English, from the config's checks)",
    "Refused: {{ reason }}.",
)
UPLOADS_OFF = T_("bot reply: /immich upload is turned off", "Uploads to Immich are turned off.")
PERSON_OFF = T_("bot reply: /immich person is turned off", "The person command is turned off.")
MEMORIES_OFF = T_(
    "bot reply: /immich memories is turned off", "The memories command is turned off."
)
NO_ONE_CALLED = T_("bot reply: /immich person found nobody", "No one called {{ name }} in Immich.")
NO_NAME = T_("a person Immich has no name for", "Someone without a name")
PERSON_PHOTOS = TP_(
    "bot reply: how many photos a person is in",
    "{{ count | number }} photo in Immich",
    "{{ count | number }} photos in Immich",
)
NO_MEMORIES = T_("bot reply: /immich memories found none", "No memories for today in Immich.")
ON_THIS_DAY = T_("bot reply: /immich memories, above the memories", "On this day")
PICTURES = TP_(
    "bot reply: how many pictures a memory shows",
    "{{ count | number }} picture",
    "{{ count | number }} pictures",
)
STATUS_REACHABLE = T_("/immich status: Immich answers", "Immich: reachable (version {{ version }})")
STATUS_UNREACHABLE = T_("/immich status: Immich does not answer", "Immich: NOT reachable")
STATUS_POLL = T_(
    "/immich status: when Immich was last polled (when: a Discord timestamp)",
    "Last successful poll: {{ when }}",
)
STATUS_NEVER = T_("/immich status: never polled yet", "never")
STATUS_WAITING = T_(
    "/immich status: notifications not sent yet", "Notifications waiting: {{ count | number }}"
)
STATUS_FAILED = T_(
    "/immich status: notifications given up on",
    "Notifications that failed for good: {{ count | number }}",
)
STATUS_CONFIG = T_(
    "/immich status: when the config was loaded (when: a Discord timestamp)",
    "Config loaded: {{ when }}",
)
STATUS_OFF = T_(
    "/immich status: a feature that is off (reason: English, from the log)", "Off: {{ reason }}"
)
STATUS_LATENCY = T_(
    "/immich status: the bot's latency to Discord", "Discord latency: {{ ms | number }} ms"
)
STATUS_ALBUMS = T_(
    "/immich status: the watched albums (albums: 'Holiday (1,204 assets)', ...)",
    "Watched albums: {{ albums | names }}",
)
STATUS_ALBUM = TP_(
    "/immich status: one watched album and its size",
    "{{ name }} ({{ count | number }} asset)",
    "{{ name }} ({{ count | number }} assets)",
)
STATUS_MORE_ALBUMS = TP_(
    "/immich status: albums not listed", "{{ count | number }} more", "{{ count | number }} more"
)
UNNAMED_ALBUM_STATUS = T_("/immich status: an album without a name", "unnamed album")

# -- favourites and claims -----------------------------------------------------------------------
FAVOURITE_NO_ROLE = T_(
    "reply to ♥ Favourite: the member may not",
    "Sorry, you do not have a role that may mark favourites.",
)
FAVOURITE_NOT_OWNER = T_(
    "reply to ♥ Favourite: Immich refuses (another account's photo)",
    "Sorry, Immich lets only the owner of a photo mark it as a favourite, and this one does not "
    "belong to the sidecar's Immich account (or is no longer in Immich).",
)
IMMICH_DOWN = T_(
    "bot reply: Immich could not be reached", "Sorry, Immich could not be reached; try again later."
)
FAVOURITE_DONE = T_("reply to ♥ Favourite: done", "♥ Marked as a favourite in Immich.")
CLAIMS_NOT_SET_UP = T_(
    "reply to /immich claim: claims are not configured",
    "Claims are not set up on this server: the sidecar's config needs discord.members_channel "
    "and discord.members_approvers (or claims: open).",
)
CLAIM_NO_ONE = T_(
    "reply to /immich claim: no such person", "No one called {{ name }} in Immich to claim."
)
CLAIM_LINKED = T_(
    "reply to /immich claim: linked at once (claims: open)",
    "You are now linked to **{{ name }}** in Immich.",
)
CLAIM_NOT_POSTED = T_(
    "reply to /immich claim: the request could not be posted",
    "Sorry, the claim could not be posted for approval; the sidecar's log says why.",
)
CLAIM_WAITS = T_(
    "reply to /immich claim: waiting for approval (channel: a Discord channel link)",
    "Your claim to be **{{ name }}** waits for an approver in {{ channel }}.",
)
CLAIM_REQUEST = T_(
    "the request approvers see (member: a Discord mention)",
    "{{ member }} claims to be **{{ name }}** in Immich. Approve to link them: they will be told "
    "by DM when they are in a new photo.",
)
UNCLAIM_CONFIG = T_(
    "reply to /immich unclaim: the link is in the config",
    "Your link is set in the sidecar's config; ask its admin to remove it.",
)
UNCLAIM_DONE = T_(
    "reply to /immich unclaim: done", "Your link to Immich is removed; no more spotted DMs."
)
NO_LINK = T_("reply: the member has no link", "You have no link to Immich.")
NO_LINK_HINT = T_(
    "reply to /immich members: the member has no link",
    "You have no link to Immich (/immich claim).",
)
NO_LINKS = T_("reply to /immich members: nobody is linked", "No links yet.")
LINK_CONFIG = T_(
    "/immich members: a link set in the config (member: a Discord mention; status: on or off)",
    "**{{ name }}** ↔ {{ member }} (set in the config; {{ status }})",
)
LINK_CLAIMED = T_(
    "/immich members: a claimed link (member: a Discord mention; status: on or off)",
    "**{{ name }}** ↔ {{ member }} (claimed; {{ status }})",
)
LINK_PENDING = T_(
    "/immich members: a claim waiting for approval (member: a Discord mention)",
    "**{{ name }}** ← {{ member }} (claim waiting for approval)",
)
DMS_ON = T_("reply to /immich dm on", "Spotted DMs are on.")
DMS_OFF = T_("reply to /immich dm off", "Spotted DMs are off; /immich dm on turns them back on.")
DMS_NO_LINK = T_(
    "reply to /immich dm: after on or off, for a member without a link",
    "(You have no link to Immich yet: /immich claim.)",
)
DECIDE_NO_ROLE = T_(
    "reply to Approve or Deny: the member may not",
    "Sorry, only members with an approver role decide claims.",
)
CLAIM_GONE = T_("a claim request already decided", "This claim was withdrawn or decided already.")
CLAIM_DENIED = T_(
    "a claim request denied (member, approver: Discord mentions)",
    "{{ member }}'s claim to be **{{ name }}** was denied by {{ approver }}.",
)
CLAIM_CANNOT = T_(
    "a claim request that cannot be approved (reason: English, from the member directory)",
    "{{ member }}'s claim to be **{{ name }}** cannot be approved: {{ reason }}.",
)
CLAIM_APPROVED = T_(
    "a claim request approved (member, approver: Discord mentions)",
    "{{ member }} is **{{ name }}** in Immich: approved by {{ approver }}.",
)

# -- galleries (components v2) and videos --------------------------------------------------------
KIND_PHOTO = T_("a picture nobody is recognised in", "photo")
KIND_VIDEO = T_("a video nobody is recognised in; a video's mark in a gallery", "video")
VIDEO_PREVIEW = T_("a gallery's video shown by its preview (not attached)", "video (preview)")
RULE_ONLY = T_(
    "embed description of a summary of many new pictures, without links", "Rule **{{ rule }}**."
)
TOO_LARGE = T_(
    "why a video is not attached (size: in MB)", "too large to attach: {{ size | number }} MB"
)
TOO_LARGE_OVER = T_(
    "why a video is not attached, its size unknown (size: the limit in MB)",
    "too large to attach: over {{ size | number }} MB",
)

# -- several Immich accounts ----------------------------------------------------------------------
UNKNOWN_ACCOUNT = T_(
    "bot reply: the account option names no configured account (accounts: the names)",
    "No Immich account called {{ name }} here; pick one of: {{ accounts | names }}.",
)
ACCOUNT = T_("/immich person: the Immich account the person was found in", "account {{ account }}")
