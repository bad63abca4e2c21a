"""``python -m tests.docs_picture``: docs/images/notification.png, the picture in the README.

It is a drawing, not a screenshot of Discord: the sidecar's own renderer (``render_gallery``,
what a webhook target sends in the default layout) makes the message for three new photos and
videos of Alice and Bob, and this draws that message's text block, its gallery and its button as
Discord lays out a components v2 message, with each attached picture or video as a labelled
box. The picture says so in its caption. Needs Debian's ``chromium``.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sidecar.immich.models import Asset, PersonRef
from sidecar.targets.base import Batch, Delivery
from sidecar.targets.discord.render.batch import drafts
from sidecar.targets.discord.render.fit import fit
from sidecar.targets.discord.render.gallery import render_gallery
from sidecar.targets.discord.render.message import Media, Thumbnail
from sidecar.targets.links import Links

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "images" / "notification.png"
EXTERNAL_URL = "https://photos.example.com"
TAKEN = datetime(2026, 7, 14, 16, 42, tzinfo=UTC)
CAPTION = (
    "The message the sidecar sends for three new photos and videos, drawn from its renderer's "
    "output (not a screenshot of Discord; each picture or video is attached where its box is)"
)
ALICE, BOB = PersonRef("a1", "Alice"), PersonRef("b2", "Bob")


def _asset(n: int, kind: str, people: tuple[PersonRef, ...]) -> Asset:
    return Asset(
        id=f"6f0c9a3e-2b1d-4c5e-9f7a-8b2c1d0e3f4{n}",
        type=kind,
        created_at=TAKEN,
        taken_at=TAKEN + timedelta(minutes=n),
        original_file_name=f"IMG_204{n}.jpg",
        visibility="timeline",
        is_trashed=False,
        people=people,
        city="Annecy",
        country="France",
    )


def message() -> dict[str, Any]:
    assets = [
        _asset(1, "IMAGE", (ALICE, BOB)),
        _asset(2, "IMAGE", (ALICE,)),
        _asset(3, "VIDEO", (BOB,)),
    ]
    batch = Batch(
        "kids", "family", tuple(Delivery(n, "kids", "family", a) for n, a in enumerate(assets, 1))
    )
    picture = Thumbnail(b"\xff\xd8\xff\xd9", "image/jpeg")
    media = {a.id: Media(picture) for a in assets}
    media[assets[2].id] = Media(picture, Thumbnail(b"\x00\x00\x00\x18ftypmp42", "video/mp4"))
    (draft,) = drafts(batch, gallery=True)
    (part,) = fit(draft, media)
    return render_gallery(batch, draft, part, Links("immich", EXTERNAL_URL), media).payload()


def _line(text: str) -> str:
    """A text line as Discord shows it: **bold**, [name](url) a link, <t:...:f> a local time."""
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    text = re.sub(r"\[(.+?)\]\((.+?)\)", r'<a href="\2">\1</a>', text)
    return re.sub(
        r"&lt;t:(\d+):f&gt;",
        lambda m: datetime.fromtimestamp(int(m[1]), UTC).strftime("%-d %B %Y %H:%M"),
        text,
    )


def _what(url: str) -> str:
    return (
        "▶ the video, attached: Discord plays it" if url.endswith(".mp4") else "a photo, attached"
    )


def page(payload: dict[str, Any]) -> str:
    text, gallery, row = payload["components"]
    lines = "".join(f"<div>{_line(line)}</div>" for line in text["content"].splitlines())
    boxes = "".join(
        f'<div class="box">{_what(item["media"]["url"])}'
        f"<br>({html.escape(item['description'])})</div>"
        for item in gallery["items"]
    )
    buttons = "".join(
        f'<span class="button">{html.escape(b["label"])} ↗</span>' for b in row["components"]
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><style>
body {{ margin: 0; background: #313338; font: 15px/1.45 sans-serif; color: #dbdee1; }}
.msg {{ display: flex; gap: 14px; padding: 18px 20px 10px; }}
.avatar {{ width: 40px; height: 40px; border-radius: 50%; background: #5865f2; flex: none; }}
.name {{ color: #f2f3f5; font-weight: 600; }} .tag {{ background: #5865f2; color: #fff;
  font-size: 10px; padding: 1px 4px; border-radius: 3px; margin-left: 4px; }}
a {{ color: #00a8fc; text-decoration: none; }} b {{ color: #f2f3f5; }}
.gallery {{ display: grid; grid-template-columns: 1fr 1fr; gap: 4px; margin-top: 8px;
  width: 440px; }}
.box {{ height: 130px; border-radius: 4px; background: #404249; display: flex;
  align-items: center; justify-content: center; text-align: center; color: #949ba4;
  font-size: 13px; padding: 0 14px; }}
.box:first-child {{ grid-column: 1 / 3; height: 170px; }}
.button {{ display: inline-block; margin-top: 8px; background: #4e5058; color: #fff;
  border-radius: 3px; padding: 4px 14px; font-size: 14px; }}
.caption {{ color: #949ba4; font-size: 12px; padding: 0 20px 14px 74px; }}
</style></head><body><div class="msg"><div class="avatar"></div><div>
<span class="name">Immich</span><span class="tag">APP</span>
{lines}<div class="gallery">{boxes}</div><div>{buttons}</div>
</div></div><div class="caption">{html.escape(CAPTION)}</div></body></html>"""


def main() -> int:
    chromium = shutil.which("chromium")
    if chromium is None:
        print("needs chromium (apt-get install chromium)")
        return 1
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "notification.html"
        source.write_text(page(message()), encoding="utf-8")
        OUT.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={work}/profile",
                "--window-size=560,560",
                f"--screenshot={OUT}",
                source.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
