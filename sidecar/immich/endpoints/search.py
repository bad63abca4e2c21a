"""Reading a ``POST /search/metadata`` answer (both the page and the cursor form)."""

from __future__ import annotations

from typing import Any

from sidecar.immich.models import Asset, SearchPage
from sidecar.immich.transport import ShapeError, require_dict, require_list

SEARCH_PAGE_SIZE = 1000  # Immich's maximum for search/metadata
MAX_SEARCH_PAGES = 10_000  # hard stop for a server that keeps answering "next page"


def check_size(size: int) -> None:
    if not 1 <= size <= SEARCH_PAGE_SIZE:
        raise ValueError("search page size must be between 1 and 1000")


def search_page(data: Any, *, cursor_form: bool) -> SearchPage:
    assets = require_dict(require_dict(data, "body")["assets"], "assets")
    items = require_list(assets["items"], "assets.items")
    following = assets.get("nextCursor") if cursor_form else assets["nextPage"]
    if following is not None and not isinstance(following, str):
        raise ShapeError("the next page token is not a string")
    if following is not None and not cursor_form and not following.isdigit():
        raise ShapeError("assets.nextPage is not a page number")
    return SearchPage(
        assets=tuple(Asset.from_dict(require_dict(a, "asset")) for a in items),
        next_page=following,
    )
