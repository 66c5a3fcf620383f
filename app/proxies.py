"""Behind a reverse proxy: believe its X-Forwarded-* headers only when it is one we trust.

A request that comes straight from a proxy listed in FORWARDED_ALLOW_IPS (addresses or
networks, or `*`) gets the client's address, scheme and host from the headers the proxy
set (Hypercorn's ProxyFixMiddleware, one hop). From anyone else the headers are ignored:
trusting them by default would let any client claim any address or scheme.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from hypercorn.middleware import ProxyFixMiddleware

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
TRUSTED = "sprintboard.trusted_proxy"  # set in the ASGI scope of a trusted proxy's request


def parse_networks(value: str) -> tuple[Network, ...] | None:
    """FORWARDED_ALLOW_IPS: comma-separated addresses or networks; `*` is everyone (None).
    Raises ValueError for anything else."""
    value = value.strip()
    if value == "*":
        return None
    return tuple(ipaddress.ip_network(part.strip()) for part in value.split(",") if part.strip())


def _websocket_schemes(app: Any) -> Any:
    """X-Forwarded-Proto says http or https, also for a WebSocket, whose scope must say
    ws or wss."""

    async def fixed(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket" and scope.get("scheme") in ("http", "https"):
            scope = {**scope, "scheme": "wss" if scope["scheme"] == "https" else "ws"}
        await app(scope, receive, send)

    return fixed


class TrustedProxies:
    """ASGI middleware: ProxyFix for requests from a trusted proxy, nothing for others."""

    def __init__(self, app: Any, networks: Iterable[Network] | None) -> None:
        self.app = app
        self.fixed = ProxyFixMiddleware(_websocket_schemes(app), mode="legacy", trusted_hops=1)
        self.networks = None if networks is None else tuple(networks)

    def trusts(self, address: str | None) -> bool:
        if self.networks is None:
            return address is not None
        if not self.networks:  # the default: no proxy is trusted (and nothing to parse)
            return False
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:  # a Unix socket, or no address at all
            return False
        return any(ip in network for network in self.networks)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and self.trusts(client[0] if client else None):
            await self.fixed({**scope, TRUSTED: True}, receive, send)  # type: ignore[arg-type]
        else:
            await self.app(scope, receive, send)
