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
