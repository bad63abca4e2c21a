"""``immich-sidecar healthcheck``: asks the running sidecar's /healthz on the address its config
listens on, so that a container's health follows ``metrics.listen`` instead of a fixed port."""

from __future__ import annotations

import ipaddress
import urllib.error
import urllib.request

from sidecar.config.model import MetricsSettings

TIMEOUT_SECONDS = 4.0  # below the image's HEALTHCHECK --timeout, so a hang reports its own line


def healthz_url(metrics: MetricsSettings) -> str:
    """The URL to probe: a wildcard listen address is asked on the loopback of its family."""
    host = metrics.host or "0.0.0.0"  # noqa: S104 - an empty host listens everywhere
    try:
        address = ipaddress.ip_address(host)
    except ValueError:  # a host name, e.g. localhost
        return f"http://{host}:{metrics.port}/healthz"
    if address.is_unspecified:
        address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
    shown = f"[{address}]" if address.version == 6 else str(address)
    return f"http://{shown}:{metrics.port}/healthz"


def probe(metrics: MetricsSettings, timeout: float = TIMEOUT_SECONDS) -> str | None:
    """None when /healthz answers 200, else one line saying what went wrong."""
    url = healthz_url(metrics)
    try:
        # The URL is built above from the config's own listen address, always http.
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{url}: no answer ({reason})"
    return None if status == 200 else f"{url}: HTTP {status}"
