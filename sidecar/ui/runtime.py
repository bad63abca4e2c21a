"""The status page as a part of the running sidecar: what it reads of it (``Running``), and
the listener's start and stop."""

from __future__ import annotations

import contextlib
from typing import Any, Protocol

from sidecar.clock import utc_now
from sidecar.config.model import Settings, UiSettings
from sidecar.engine.accounts import Accounts
from sidecar.engine.explain.reader import Explainer, ExplainError
from sidecar.engine.explain.verdict import Explanation
from sidecar.engine.session import ImmichSession
from sidecar.engine.status import StatusInfo
from sidecar.engine.store.database import Store
from sidecar.ui.server import StatusPageServer
from sidecar.ui.snapshot import status_data


class Running(Protocol):
    """The parts of the running sidecar (``app.Sidecar``) the page reads; it changes none."""

    settings: Settings
    store: Store
    accounts: Accounts
    session: ImmichSession

    def status(self) -> StatusInfo: ...


class StatusPage:
    """The page's listener over a running sidecar; ``server.port`` is the port it got."""

    def __init__(self, ui: UiSettings, sidecar: Running) -> None:
        self._sidecar = sidecar
        self.server = StatusPageServer(ui, self.data, self.explain, self.thumbnail)

    @classmethod
    async def open(
        cls, ui: UiSettings, sidecar: Running, stack: contextlib.AsyncExitStack
    ) -> StatusPage:
        page = cls(ui, sidecar)
        await page.server.start()
        stack.push_async_callback(page.server.stop)
        return page

    def data(self) -> dict[str, Any]:
        sidecar = self._sidecar
        return status_data(sidecar.settings, sidecar.status(), sidecar.store, utc_now())

    async def explain(self, asset_id: str) -> Explanation:
        """``explain`` with the running sidecar's rules, accounts and state."""
        sidecar = self._sidecar
        rules = sidecar.session.rules
        if rules is None:
            raise ExplainError("the sidecar has not reached Immich yet; try again after a poll")
        explainer = Explainer(sidecar.settings, sidecar.accounts, rules, sidecar.store)
        return await explainer.explain(asset_id)

    async def thumbnail(self, asset_id: str) -> tuple[bytes, str]:
        return await self._sidecar.accounts.asset_thumbnail(asset_id, "thumbnail")
