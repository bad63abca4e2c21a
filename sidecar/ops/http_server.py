"""The operations HTTP endpoint: /metrics for Prometheus, /healthz and /readyz for Kubernetes.

It runs on the sidecar's own event loop (aiohttp is already a discord.py dependency), so a
scrape sees the same metric objects the poller and dispatcher update, without threads.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from sidecar.ops.metrics import Metrics

Readiness = Callable[[], list[str]]


class MetricsServer:
    """Serves /metrics, /healthz and /readyz on ``host:port`` (port 0 picks a free port).

    ``readiness`` returns the reasons the sidecar is not ready yet (an empty list when it is);
    it is called on every /readyz request, so it must be cheap and must not block.
    """

    def __init__(self, metrics: Metrics, readiness: Readiness, host: str, port: int) -> None:
        self._metrics = metrics
        self._readiness = readiness
        self._host = host
        self._requested_port = port
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    @property
    def port(self) -> int:
        """The port actually bound (differs from the requested one when 0 was given)."""
        if self._runner is None:
            raise RuntimeError("the metrics server is not started")
        for address in self._runner.addresses:
            return int(address[1])
        raise RuntimeError("the metrics server has no listening socket")

    async def start(self) -> None:
        if self._runner is not None:
            return
        app = web.Application()
        # prometheus_client's own handler: text or OpenMetrics by Accept, gzip when asked.
        app.router.add_get("/metrics", make_aiohttp_handler(self._metrics.registry))
        app.router.add_get("/healthz", self._handle_healthz)
        app.router.add_get("/readyz", self._handle_readyz)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._requested_port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise OSError(
                f"cannot listen for metrics on {self._host}:{self._requested_port}: "
                f"{exc.strerror or exc}"
            ) from None
        self._runner, self._site = runner, site

    async def stop(self) -> None:
        runner, self._runner, self._site = self._runner, None, None
        if runner is not None:
            await runner.cleanup()

    async def _handle_healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _handle_readyz(self, request: web.Request) -> web.Response:
        try:
            reasons = self._readiness()
        except Exception as exc:  # a broken check must answer "not ready", not a 500
            reasons = [f"readiness check failed: {type(exc).__name__}"]
        if not reasons:
            return web.Response(text="ready\n")
        return web.Response(status=503, text="".join(f"{reason}\n" for reason in reasons))
