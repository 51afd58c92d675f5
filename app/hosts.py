"""The service's public address, and the Host headers it answers.

Absolute links (`Link: rel="next"`, `links.next`, permalinks and citations, the URLs inside
Atom, ICS and TimelineJS) are built from `PUBLIC_BASE_URL` when it is set. Without it (`make
run`, the tests) they follow the request: its scheme and its `Host` header. Two rules keep a
forged `Host` from reaching anyone but the client who sent it:

* The response cache keys every entry by `base_url(scope)`, the base its links were built
  from, so a response rendered for one host is never replayed to another.
* With `PUBLIC_BASE_URL` set, only its host is answered (or the hosts in `ALLOWED_HOSTS`); any
  other `Host` gets a 400 problem before routing. The health probes are exempt: orchestrators
  call them by the container's address, and they carry no links.
"""

from starlette.datastructures import URL, Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.config import Settings
from app.errors import problem

PROBES = frozenset({"/healthz", "/readyz"})


def base_url(scope: Scope) -> str:
    """Scheme, host and root path of this request's links, without a trailing slash."""
    settings: Settings = scope["app"].state.settings
    if settings.public_base_url:
        return settings.public_base_url
    return str(URL(scope=scope).replace(path=scope.get("root_path", ""), query="")).rstrip("/")


def public_url(request: Request, *, query: str | None = None) -> str:
    """The absolute URL of this request as a client should see it; `query` replaces its query."""
    root = request.scope.get("root_path", "")
    path = request.url.path
    if root and path.startswith(root):
        path = path[len(root) :]
    given = request.url.query if query is None else query
    return base_url(request.scope) + path + (f"?{given}" if given else "")


def hostname(host_header: str) -> str:
    """`Host` without its port, lower case: `[::1]:8000` -> `[::1]`."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def allowed(host: str, patterns: frozenset[str]) -> bool:
    """`*` allows any host, `*.example.org` its subdomains, anything else that exact host."""
    if "*" in patterns or host in patterns:
        return True
    return any(p.startswith("*.") and host.endswith(p[1:]) for p in patterns)


class TrustedHosts:
    """Answers 400 to a request whose `Host` the settings do not allow (see the module doc)."""

    def __init__(self, app: ASGIApp, *, hosts: frozenset[str]) -> None:
        self.app = app
        self.hosts = frozenset(hostname(h) if not h.startswith("*") else h for h in hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or "*" in self.hosts or scope["path"] in PROBES:
            await self.app(scope, receive, send)
            return
        host = Headers(scope=scope).get("host", "")
        if allowed(hostname(host), self.hosts):
            await self.app(scope, receive, send)
            return
        response = problem(
            Request(scope),
            400,
            "untrusted-host",
            "Untrusted host",
            f"This service does not answer for the host {host!r} (header Host). Use its public"
            " address, the host of PUBLIC_BASE_URL, or add the host to ALLOWED_HOSTS.",
            errors=[{"loc": ["header", "Host"], "msg": "not an allowed host", "type": "host"}],
        )
        await response(scope, receive, send)
