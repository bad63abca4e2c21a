"""``python -m tests.docs_picture``: docs/images/notification.png, the picture in the README.

It is a drawing, not a screenshot of Discord: the sidecar's own renderer (``render_batch``, what
a webhook target sends) makes the message for one new photo of Alice and Bob, and this draws
that message's text, title, fields and link as Discord lays out an embed, with the attached
picture as a labelled box. The picture says so in its caption. Needs Debian's ``chromium``.
"""

from __future__ import annotations

import html
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sidecar.immich.models import Asset, PersonRef
from sidecar.targets.base import Batch, Delivery
from sidecar.targets.discord.render.batch import render_batch
from sidecar.targets.discord.render.message import Thumbnail

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "images" / "notification.png"
EXTERNAL_URL = "https://photos.example.com"
TAKEN = datetime(2026, 7, 14, 16, 42, tzinfo=UTC)
CAPTION = (
    "The message the sidecar sends for one new photo, drawn from its renderer's output "
    "(not a screenshot of Discord; the photo is attached where the box is)"
)


def message() -> dict[str, Any]:
    asset = Asset(
        id="6f0c9a3e-2b1d-4c5e-9f7a-8b2c1d0e3f4a",
        type="IMAGE",
        created_at=TAKEN,
        taken_at=TAKEN,
        original_file_name="IMG_2041.jpg",
        visibility="timeline",
        is_trashed=False,
        people=(PersonRef("a1", "Alice"), PersonRef("b2", "Bob")),
        city="Annecy",
        country="France",
    )
    batch = Batch("kids", "family", (Delivery(1, "kids", "family", asset),))
    thumbnail = Thumbnail(b"\xff\xd8\xff\xd9", "image/jpeg")
    (rendered,) = render_batch(batch, EXTERNAL_URL, {asset.id: thumbnail})
    return rendered.payload()


def _value(text: str) -> str:
    """A field value as Discord shows it: <t:...:f> in the reader's time, [name](url) a link."""
    if text.startswith("<t:"):
        stamp = int(text[3:].split(":")[0])
        return datetime.fromtimestamp(stamp, UTC).strftime("%-d %B %Y %H:%M")
    return html.escape(text)


def page(payload: dict[str, Any]) -> str:
    (embed,) = payload["embeds"]
    fields = "".join(
        f'<div class="field{" inline" if f.get("inline") else ""}"><b>{html.escape(f["name"])}'
        f"</b><span>{_value(f['value'])}</span></div>"
        for f in embed["fields"]
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><style>
body {{ margin: 0; background: #313338; font: 15px/1.4 sans-serif; color: #dbdee1; }}
.msg {{ display: flex; gap: 14px; padding: 18px 20px 10px; }}
.avatar {{ width: 40px; height: 40px; border-radius: 50%; background: #5865f2; flex: none; }}
.name {{ color: #f2f3f5; font-weight: 600; }} .tag {{ background: #5865f2; color: #fff;
  font-size: 10px; padding: 1px 4px; border-radius: 3px; margin-left: 4px; }}
.embed {{ margin-top: 6px; background: #2b2d31; border-left: 4px solid #1e1f22;
  border-radius: 4px; padding: 10px 14px 14px; width: 420px; }}
.embed a {{ color: #00a8fc; font-weight: 600; text-decoration: none; }}
.fields {{ display: flex; flex-wrap: wrap; margin-top: 8px; }}
.field {{ width: 100%; margin-top: 6px; }} .field.inline {{ width: 33%; }}
.field b {{ display: block; font-size: 13px; color: #f2f3f5; }}
.photo {{ margin-top: 12px; height: 210px; border-radius: 4px; background: #404249;
  display: flex; align-items: center; justify-content: center; text-align: center;
  color: #949ba4; padding: 0 30px; }}
.caption {{ color: #949ba4; font-size: 12px; padding: 0 20px 14px 74px; }}
</style></head><body><div class="msg"><div class="avatar"></div><div>
<span class="name">Immich</span><span class="tag">APP</span>
<div>{html.escape(payload["content"])}</div>
<div class="embed"><a href="{html.escape(embed["url"])}">{html.escape(embed["title"])}</a>
<div class="fields">{fields}</div>
<div class="photo">the photo, attached to the message<br>({html.escape(embed["image"]["url"])})
</div>
</div></div></div><div class="caption">{html.escape(CAPTION)}</div></body></html>"""


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
                "--window-size=560,520",
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
