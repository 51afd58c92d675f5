"""Keep webhook deliveries away from our own network.

Checked twice: when an endpoint's URL is saved (a clear 422 for the subscriber) and when each
connection is made, on every address the name resolves to (the real defence: DNS can change
between the two, and a public name can point at 127.0.0.1). Both checks apply both rules: every
address is public or inside WEBHOOK_ALLOWED_SUBNETS, and plain http:// goes only to the latter.
"""

import ipaddress
import logging
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from app.addresses import (
    IPAddress,
    Network,
    address_allowed,
    in_allowlist,
    parse_subnets,
)

logger = logging.getLogger("app.webhooks")


class SSRFBlocked(httpcore.ConnectError):
    """A connection refused by the guard. A ConnectError, so httpx maps it like one and keeps
    it as the `__cause__`, where the worker finds it."""


def resolve(host: str, port: int) -> list[IPAddress]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def url_problem(url: str, allowed: list[Network]) -> str | None:
    """Why this URL may not receive webhooks, or None. Resolves the host name."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"}:
        return "must be an https:// URL"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "must not contain a user name or password"
    host = parts.hostname
    if not host:
        return "has no host"
    if host == "localhost" or host.endswith(".localhost"):
        return "must not point at this machine"
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "has an invalid port"
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            host.encode("idna")
            addresses = resolve(host, port)
        except (OSError, UnicodeError):
            return f"host {host!r} does not resolve"
    if not all(address_allowed(ip, allowed) for ip in addresses):
        return "must point at a public address"
    if parts.scheme == "http" and not all(in_allowlist(ip, allowed) for ip in addresses):
        return "must be an https:// URL"
    return None


class GuardedBackend(httpcore.SyncBackend):
    """Resolves the host itself, refuses unless every address is allowed, then connects to the
    checked address (so a second, different DNS answer cannot slip in). TLS still uses the
    original host name for SNI and certificate checks: httpcore passes it separately."""

    def __init__(self, allowed: list[Network], *, plain_http: bool = False) -> None:
        self.allowed = allowed
        # This backend's connections carry plain http://: only to allowlisted addresses.
        self.plain_http = plain_http

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if not addresses or not all(address_allowed(ip, self.allowed) for ip in addresses):
            logger.warning("ssrf_blocked host=%s port=%s", host, port)
            raise SSRFBlocked("the address is not allowed to receive webhooks")
        if self.plain_http and not all(in_allowlist(ip, self.allowed) for ip in addresses):
            logger.warning("ssrf_blocked host=%s port=%s plain http", host, port)
            raise SSRFBlocked("plain http:// only to WEBHOOK_ALLOWED_SUBNETS; use https://")
        return super().connect_tcp(str(addresses[0]), port, timeout, local_address, socket_options)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise SSRFBlocked("unix sockets are not webhook receivers")


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport with the guarded network backend. httpx has no public argument for the
    backend, so the connection pool is rebuilt here (pinned: httpx 0.28, httpcore 1.0)."""

    def __init__(
        self, allowed: list[Network], *, plain_http: bool = False, max_connections: int = 32
    ) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            http1=True,
            http2=False,
            network_backend=GuardedBackend(allowed, plain_http=plain_http),
        )


class WebhookClient:
    """POSTs webhook deliveries through the guarded transport.

    httpx's `Client` puts every request through machinery a delivery never uses: merging
    defaults, cookies (kept from one receiver's answer for its next delivery, which webhooks
    should not do anyway), auth and redirect handling: a measurable share of a delivery's CPU
    (bench/README.md, webhook section). The transport is httpx's public
    interface below the client: it maps httpcore's errors to httpx's, so a caller sees the same
    exceptions (`httpx.ConnectError` caused by `SSRFBlocked`, `httpx.TimeoutException`, …).
    Redirects are never followed; a 3xx is the receiver's answer.

    https:// and http:// URLs go through pools of their own, so that the connect-time check
    knows which rule applies: a URL saved as http:// while its name pointed into the allowlist
    is refused once it points anywhere else, public or not."""

    def __init__(self, allowed: list[Network], *, timeout: float) -> None:
        self.transport = GuardedTransport(allowed)
        self.plain_transport = GuardedTransport(allowed, plain_http=True)
        self.timeout = httpx.Timeout(timeout, connect=min(5.0, timeout)).as_dict()

    @contextmanager
    def post(
        self, url: str, *, content: bytes, headers: dict[str, str]
    ) -> Iterator[httpx.Response]:
        parsed = _parsed(url)
        request = httpx.Request(
            "POST", parsed, content=content, headers=headers, extensions={"timeout": self.timeout}
        )
        # Any scheme but https goes to the strict pool, which httpcore refuses anyway unless
        # it is http.
        transport = self.transport if parsed.scheme == "https" else self.plain_transport
        response = transport.handle_request(request)
        try:
            yield response
        finally:
            response.close()

    def close(self) -> None:
        self.transport.close()
        self.plain_transport.close()


def peer_address(response: httpx.Response) -> IPAddress | None:
    """The address this response came from, or None if the transport does not say."""
    stream = response.extensions.get("network_stream")
    peer = stream.get_extra_info("server_addr") if stream is not None else None
    if not isinstance(peer, tuple) or not peer:
        return None
    try:
        return ipaddress.ip_address(str(peer[0]).split("%")[0])
    except ValueError:
        return None


@lru_cache(maxsize=1024)
def _parsed(url: str) -> httpx.URL:
    """An endpoint's URL, parsed once rather than for each of its deliveries (bench/README.md,
    webhook section). `httpx.URL` is immutable, so one object can be shared."""
    return httpx.URL(url)


def guarded_client(allowed_subnets: Iterable[str], *, timeout: float) -> WebhookClient:
    return WebhookClient(parse_subnets(allowed_subnets), timeout=timeout)
