"""Every status code the OpenAPI document promises is one a concrete request really produces.

The pairs (operation, status) come from /openapi.json itself, so a status added to the
documentation later is covered here or fails this test. Most pairs were already seen by the
schemathesis run (the `fuzz_run` fixture); the rest are produced by hand-written requests
below: a generic request per status (no key, the wrong key, an unknown id, a deleted one, a
stale ETag...) and the few that need a particular state (a source still cited, a disabled
webhook endpoint). 429 comes from a second server with a tiny rate limit and 503 from one whose
database cannot be reached. A documented status nobody can produce is removed from the
documentation at its source, not skipped here.
"""

import itertools
import re
import string
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from app import writes
from app.db import create_db_engine
from app.models import State, WebhookDelivery, WebhookMessage
from tests.conftest import ON_POSTGRES
from tests.fuzz.conftest import SERVER_ENV, START_TIMEOUT, FuzzRun, FuzzServer
from tests.live import LiveServer

Pair = tuple[str, str, int]  # (METHOD, path template, status)
SEEDED_EVENT = "2025-04-01-algeria-shoots-down-malian-drone"
IN_USE_SOURCE_URL = "https://en.wikipedia.org/wiki/Treaty_of_Lagos"
MAX_BODY = 1024 * 1024  # Settings.max_request_bytes' default: the servers here keep it.
PARAM = re.compile(r"\{([^}]+)\}")

MISSING = {
    "event": "1999-01-01-no-such-event",
    "organisation": "NO-SUCH-ORGANISATION",
    "membership": "999999",
    "source": "999999",
    "place": "no-such-place",
    "key": "999999",
    "endpoint": "whep_nosuchendpoint",
    "delivery": "999999",
}
MALFORMED = {
    "event": "Not A Slug",
    "state": "ML1",  # codes are accepted in any case: a digit is what no code has
    "organisation": "not a code",
    "membership": "first",
    "source": "first",
    "place": "Not A Slug",
    "key": "first",
    "endpoint": "x" * 41,
    "delivery": "first",
}


def documented(spec: dict[str, Any]) -> set[Pair]:
    return {
        (method.upper(), path, int(status))
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        for status in operation.get("responses", {})
        if status.isdigit()
    }


def owner(method: str, path: str, op: dict[str, Any]) -> str | None:
    """The key an operation is meant for: hooks (webhooks), editor (other writes), admin (keys,
    and any other keyed read); public reads need none."""
    if path.startswith(("/v1/webhook-endpoints", "/v1/webhook-deliveries")):
        return "hooks"
    if path.startswith("/v1/keys") or (method == "GET" and op.get("security")):
        return "admin"
    return None if method == "GET" else "editor"


def kind_of(path: str) -> str:
    for prefix, kind in (
        ("/v1/events", "event"),
        ("/v1/states", "state"),
        ("/v1/relations", "state"),
        ("/v1/organisations", "organisation"),
        ("/v1/memberships", "membership"),
        ("/v1/sources", "source"),
        ("/v1/places", "place"),
        ("/v1/keys", "key"),
        ("/v1/webhook-endpoints", "endpoint"),
        ("/v1/webhook-deliveries", "delivery"),
    ):
        if path.startswith(prefix):
            return kind
    raise AssertionError(f"no resource kind for {path}")


class Prober:
    """Makes the resources the hand-written requests need, each in a known state."""

    def __init__(self, server: FuzzServer) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.base_url, timeout=30)
        self.cache: dict[str, str] = {}
        self.serial = itertools.count(1)
        # Codes the fuzzer is unlikely to have made; a clash just moves on to the next one.
        self.codes = ("Q" + a + b for a, b in itertools.product(string.ascii_uppercase, repeat=2))

    def close(self) -> None:
        self.http.close()

    def send(
        self,
        method: str,
        path: str,
        who: str | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        all_headers = {**(self.server.auth(who) if who else {}), **(headers or {})}
        return self.http.request(method, path, json=json, headers=all_headers, **kwargs)

    def created(self, path: str, body: dict[str, Any], who: str = "editor") -> dict[str, Any]:
        response = self.send("POST", path, who, json=body)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    # --- bodies ---------------------------------------------------------------------------

    def source_body(self) -> dict[str, Any]:
        return {"url": f"https://example.org/fuzz/{next(self.serial)}", "publisher": "Probe"}

    def event_body(self) -> dict[str, Any]:
        return {
            "id": f"2025-04-20-probe-{next(self.serial)}",
            "kind": "diplomatic_action",
            "category": "statement",
            "date": "2025-04-20",
            "date_precision": "day",
            "title": "A probe statement",
            "summary": "Written by the documented-status test.",
            "participants": [{"state": "MLI", "role": "initiator"}],
            "sources": [self.source_body()],
        }

    def free_state_code(self) -> str:
        # Its alpha2 must be free too: after a long fuzz run, states the fuzzer created (some
        # since deleted, which keep theirs) hold many two-letter codes.
        engine = create_db_engine(self.server.database_url)
        with writes.session_factory(engine)() as session:
            taken = set(session.scalars(select(State.alpha2)))
        engine.dispose()
        for code in self.codes:
            if code[1:] in taken:
                continue
            if self.send("GET", f"/v1/states/{code}").status_code == 404:
                return code
        raise AssertionError("no free state code")

    def state_body(self) -> dict[str, Any]:
        code = self.free_state_code()
        return {"code": code, "alpha2": code[1:], "name": f"Probe {code}"}

    def state(self) -> str:
        return str(self.created("/v1/states", self.state_body())["code"])

    def organisation_body(self) -> dict[str, Any]:
        code = f"PROBE-{next(self.serial)}"
        return {"code": code, "name": code, "kind": "international_organisation"}

    def membership_body(self, organisation: str = "AES", state: str = "TCD") -> dict[str, Any]:
        return {
            "organisation": organisation,
            "state": state,
            "status": "member",
            "start_on": f"{1900 + next(self.serial)}-01-01",
            "start_precision": "day",
            "end": "open",
            "sources": [self.source_body()],
        }

    def endpoint_body(self) -> dict[str, Any]:
        return {"url": f"http://127.0.0.1:9/hook/{next(self.serial)}", "event_types": ["*"]}

    def body_for(self, method: str, path: str) -> Any:
        """A valid body for the operation, so that only the thing under test is wrong."""
        if method == "PATCH":
            return {}
        if method != "POST":
            return None
        return {
            "/v1/events": self.event_body,
            "/v1/states": self.state_body,
            "/v1/organisations": self.organisation_body,
            "/v1/memberships": self.membership_body,
            "/v1/sources": self.source_body,
            "/v1/keys": lambda: {"name": f"probe-{next(self.serial)}", "scopes": ["editor"]},
            "/v1/webhook-endpoints": self.endpoint_body,
            "/v1/webhook-endpoints/{id}/recover": lambda: {"since": "2020-01-01T00:00:00Z"},
        }.get(path, lambda: None)()

    # --- path values ----------------------------------------------------------------------

    def live(self, kind: str) -> str:
        """A resource of this kind that exists now (made fresh, so nothing else touches it)."""
        if kind == "event":
            return str(self.created("/v1/events", self.event_body())["id"])
        if kind == "state":
            return self.state()
        if kind == "organisation":
            return str(self.created("/v1/organisations", self.organisation_body())["code"])
        if kind == "membership":
            return str(self.created("/v1/memberships", self.membership_body())["id"])
        if kind == "source":
            return str(self.created("/v1/sources", self.source_body())["id"])
        if kind == "place":
            return "tinzaouaten"
        if kind == "key":
            body = {"name": f"probe-{next(self.serial)}", "scopes": ["editor"]}
            return str(self.created("/v1/keys", body, "admin")["id"])
        if kind == "endpoint":
            return str(self.created("/v1/webhook-endpoints", self.endpoint_body(), "hooks")["id"])
        if kind == "delivery":
            return self.finished_delivery()
        raise AssertionError(kind)

    def deleted(self, kind: str) -> str:
        collection = {
            "event": "/v1/events",
            "state": "/v1/states",
            "organisation": "/v1/organisations",
            "membership": "/v1/memberships",
            "source": "/v1/sources",
        }[kind]
        value = self.live(kind)
        response = self.send("DELETE", f"{collection}/{value}", "editor", headers={"If-Match": "*"})
        assert response.status_code == 204, response.text
        return value

    def path(self, template: str, variant: str) -> str:
        """The template with its first parameter as `variant` (live, missing, malformed,
        deleted) and any other one live (the second state of a relation is Mali)."""
        names = PARAM.findall(template)
        if not names:
            return template
        kind = kind_of(template)
        if variant == "missing":
            first = self.free_state_code() if kind == "state" else MISSING[kind]
        elif variant == "malformed":
            first = MALFORMED[kind]
        elif variant == "deleted":
            first = self.deleted(kind)
        else:
            first = self.live(kind)
        values = [first, *(["MLI" if first != "MLI" else "DZA"] * (len(names) - 1))]
        for name, value in zip(names, values, strict=True):
            template = template.replace("{" + name + "}", value, 1)
        return template

    # --- the webhook states ---------------------------------------------------------------

    def disabled_endpoint(self) -> str:
        endpoint = self.live("endpoint")
        response = self.send("POST", f"/v1/webhook-endpoints/{endpoint}/disable", "hooks")
        assert response.status_code == 200, response.text
        return endpoint

    def finished_delivery(self) -> str:
        """The ping of an endpoint that was disabled (so it was skipped) and enabled again."""
        endpoint = self.live("endpoint")
        ping = self.send("POST", f"/v1/webhook-endpoints/{endpoint}/test", "hooks")
        assert ping.status_code == 202, ping.text
        response = self.send("POST", f"/v1/webhook-endpoints/{endpoint}/disable", "hooks")
        assert response.status_code == 200, response.text
        response = self.send(
            "POST", f"/v1/webhook-endpoints/{endpoint}/enable", "hooks", json={"recover": False}
        )
        assert response.status_code == 200, response.text
        deliveries = self.send("GET", f"/v1/webhook-endpoints/{endpoint}/deliveries", "hooks")
        assert deliveries.status_code == 200, deliveries.text
        return str(deliveries.json()["items"][0]["id"])

    def delivery_of_disabled_endpoint(self) -> str:
        delivery = self.finished_delivery()
        endpoint = self.send("GET", f"/v1/webhook-deliveries/{delivery}", "hooks").json()
        self.send("POST", f"/v1/webhook-endpoints/{endpoint['endpoint_id']}/disable", "hooks")
        return delivery

    def expired_delivery(self) -> str:
        """A finished delivery whose payload the retention rule has removed."""
        delivery = int(self.finished_delivery())
        engine = create_db_engine(self.server.database_url)
        with writes.session_factory(engine).begin() as session:
            message_id = session.get(WebhookDelivery, delivery).message_id  # type: ignore[union-attr]
            session.execute(
                update(WebhookMessage).where(WebhookMessage.id == message_id).values(payload=None)
            )
        engine.dispose()
        return str(delivery)


def special(p: Prober) -> dict[Pair, Callable[[], httpx.Response]]:
    """The pairs that need a particular state rather than a generic wrong request."""
    e, h = "editor", "hooks"
    seeded = p.send("GET", f"/v1/events/{SEEDED_EVENT}").json()
    in_use_source = p.send("GET", "/v1/sources", params={"q": "Treaty_of_Lagos"}).json()
    source_id = in_use_source["items"][0]["id"]

    def duplicate_membership() -> httpx.Response:
        body = p.membership_body()
        p.created("/v1/memberships", body)
        return p.send("POST", "/v1/memberships", e, json=body)

    def membership_edited_into_a_duplicate() -> httpx.Response:
        first = p.membership_body()
        p.created("/v1/memberships", first)
        second = p.created("/v1/memberships", p.membership_body())
        return p.send(
            "PATCH",
            f"/v1/memberships/{second['id']}",
            e,
            json={"start_on": first["start_on"]},
            headers={"If-Match": "*"},
        )

    def state_given_a_taken_alpha2() -> httpx.Response:
        code = p.state()
        return p.send(
            "PATCH", f"/v1/states/{code}", e, json={"alpha2": "ML"}, headers={"If-Match": "*"}
        )

    any_version = {"If-Match": "*"}
    return {
        ("POST", "/v1/events", 409): lambda: p.send(
            "POST", "/v1/events", e, json={**p.event_body(), "id": seeded["id"]}
        ),
        ("POST", "/v1/states", 409): lambda: p.send(
            "POST", "/v1/states", e, json={"code": "MLI", "alpha2": "ML", "name": "Mali"}
        ),
        ("POST", "/v1/organisations", 409): lambda: p.send(
            "POST", "/v1/organisations", e, json={**p.organisation_body(), "code": "AES"}
        ),
        ("GET", "/oembed", 200): lambda: p.send(
            "GET", "/oembed", params={"url": f"{p.server.base_url}/?between=MLI,DZA"}
        ),
        ("POST", "/v1/memberships", 409): duplicate_membership,
        ("POST", "/v1/sources", 409): lambda: p.send(
            "POST", "/v1/sources", e, json={"url": IN_USE_SOURCE_URL, "publisher": "Again"}
        ),
        ("POST", "/v1/keys", 409): lambda: p.send(
            "POST", "/v1/keys", "admin", json={"name": "fuzz-editor", "scopes": ["editor"]}
        ),
        ("PATCH", "/v1/states/{code}", 409): state_given_a_taken_alpha2,
        ("PATCH", "/v1/memberships/{membership_id}", 409): membership_edited_into_a_duplicate,
        ("DELETE", "/v1/states/{code}", 409): lambda: p.send(
            "DELETE", "/v1/states/MLI", e, headers=any_version
        ),
        ("DELETE", "/v1/organisations/{code}", 409): lambda: p.send(
            "DELETE", "/v1/organisations/AES", e, headers=any_version
        ),
        ("DELETE", "/v1/sources/{source_id}", 409): lambda: p.send(
            "DELETE", f"/v1/sources/{source_id}", e, headers=any_version
        ),
        ("POST", "/v1/webhook-endpoints/{id}/test", 409): lambda: p.send(
            "POST", f"/v1/webhook-endpoints/{p.disabled_endpoint()}/test", h
        ),
        ("POST", "/v1/webhook-endpoints/{id}/recover", 409): lambda: p.send(
            "POST",
            f"/v1/webhook-endpoints/{p.disabled_endpoint()}/recover",
            h,
            json={"since": "2020-01-01T00:00:00Z"},
        ),
        ("POST", "/v1/webhook-deliveries/{id}/redeliver", 409): lambda: p.send(
            "POST", f"/v1/webhook-deliveries/{p.delivery_of_disabled_endpoint()}/redeliver", h
        ),
        ("POST", "/v1/webhook-deliveries/{id}/redeliver", 410): lambda: p.send(
            "POST", f"/v1/webhook-deliveries/{p.expired_delivery()}/redeliver", h
        ),
    }


def generic(
    p: Prober, method: str, template: str, status: int, op: dict[str, Any]
) -> httpx.Response:
    """One request that should answer `status` because of one wrong thing."""
    who = owner(method, template, op)
    body = p.body_for(method, template)
    if_match = {"If-Match": "*"} if method in {"PATCH", "DELETE"} and "{" in template else {}
    if status < 300:
        return p.send(method, p.path(template, "live"), who, json=body, headers=if_match)
    if status == 401:
        return p.send(method, p.path(template, "live"), None, json=body, headers=if_match)
    if status == 403:
        wrong = "hooks" if who in {"editor", "admin"} else "editor"
        return p.send(method, p.path(template, "live"), wrong, json=body, headers=if_match)
    if status in {404, 410}:
        variant = "missing" if status == 404 else "deleted"
        return p.send(method, p.path(template, variant), who, json=body, headers=if_match)
    if status == 412:
        return p.send(
            method, p.path(template, "live"), who, json=body, headers={"If-Match": '"999"'}
        )
    if status == 428:
        return p.send(method, p.path(template, "live"), who, json=body)
    if status == 413:
        oversized = b"[" + b" " * MAX_BODY + b"]"
        return p.send(
            method,
            p.path(template, "live"),
            who,
            content=oversized,
            headers={**if_match, "Content-Type": "application/json"},
        )
    if status == 422:
        return invalid(p, method, template, op, who, body, if_match)
    raise AssertionError(f"no generic request for {status}")


def invalid(
    p: Prober,
    method: str,
    template: str,
    op: dict[str, Any],
    who: str | None,
    body: Any,
    if_match: dict[str, str],
) -> httpx.Response:
    """A malformed path value, else a query value of the wrong type, else a body that is not
    an object."""
    if "{" in template:
        return p.send(method, p.path(template, "malformed"), who, json=body, headers=if_match)
    queries = [q for q in op.get("parameters", []) if q["in"] == "query"]
    if queries:
        return p.send(method, template, who, params={queries[0]["name"]: "x" * 5000})
    return p.send(method, template, who, json=["not", "an", "object"])


@pytest.fixture(scope="module")
def prober(fuzz_server: FuzzServer) -> Iterator[Prober]:
    p = Prober(fuzz_server)
    yield p
    p.close()


def test_every_documented_status_is_produced(
    fuzz_server: FuzzServer, fuzz_run: FuzzRun, prober: Prober, tmp_path_factory: Any
) -> None:
    spec = prober.send("GET", "/openapi.json").json()
    pairs = documented(spec)
    seen = {(m, p, s) for (m, p), statuses in fuzz_run.observed.items() for s in statuses}
    todo = sorted(pairs - seen)
    specials = special(prober)
    wrong: list[str] = []
    produced_by_hand = 0
    elsewhere = [pair for pair in todo if pair[2] in {429, 503}]
    for method, path, status in todo:
        if status in {429, 503}:
            continue
        op = spec["paths"][path][method.lower()]
        make = specials.get((method, path, status))
        response = make() if make else generic(prober, method, path, status, op)
        produced_by_hand += 1
        if response.status_code != status:
            wrong.append(
                f"{method} {path} {status}: {response.request.method} {response.request.url}"
                f" answered {response.status_code} {response.text[:200]}"
            )
    wrong += limits_and_outages(fuzz_server, spec, elsewhere, tmp_path_factory)
    assert not wrong, (
        f"{len(wrong)} of {len(pairs)} documented (operation, status) pairs were not produced"
        " (remove a status from the documentation only if no request can produce it):\n"
        + "\n".join(wrong)
    )
    assert len(pairs) >= 300 and produced_by_hand + len(seen & pairs) + len(elsewhere) >= len(pairs)


def limits_and_outages(
    fuzz_server: FuzzServer, spec: dict[str, Any], pairs: list[Pair], tmp_path_factory: Any
) -> list[str]:
    """429 from a server allowing one request a minute; 503 from one whose database is gone."""
    wrong = []
    logs = tmp_path_factory.mktemp("limits")
    # A server with no database, and an SQLite file that was never migrated: every query fails.
    empty = logs / "empty.db"
    empty.touch()
    gone = (
        "postgresql://postgres@127.0.0.1:5432/dtl_fuzz_no_such_database"
        if ON_POSTGRES
        else f"sqlite:///{empty}"
    )
    setups = {
        429: (
            fuzz_server.database_url,
            {
                "RATE_LIMIT_ENABLED": "true",
                "RATE_LIMIT_ANONYMOUS": "1",
                "RATE_LIMIT_STORE": "memory",
            },
        ),
        503: (gone, {}),
    }
    for status, (url, env) in setups.items():
        wanted = [(m, p) for m, p, s in pairs if s == status]
        if not wanted:
            continue
        server = LiveServer(url, logs / f"{status}.log", **SERVER_ENV, **env)
        server.start(timeout=START_TIMEOUT)
        try:
            wrong += produce(server, status, wanted)
        finally:
            server.__exit__(None, None, None)
    return wrong


def produce(server: LiveServer, status: int, wanted: list[tuple[str, str]]) -> list[str]:
    wrong = []
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        if status == 429:
            http.get("/v1/categories")  # spends the minute's only request
        for method, template in wanted:
            # Values of the right shape, so the request reaches the database; a key
            # (unknown) so that keyed operations look it up there.
            kind = kind_of(template) if "{" in template else ""
            path = template
            for other in ("ZZA", "ZZB"):  # a relation needs two different states
                path = PARAM.sub(MISSING.get(kind, other), path, count=1)
            response = http.request(
                method,
                path,
                json={} if method in {"POST", "PATCH"} else None,
                headers={"Authorization": "Bearer dtl_no-such-key"},
            )
            if response.status_code != status:
                wrong.append(
                    f"{method} {template} {status}: {method} {path} answered"
                    f" {response.status_code} {response.text[:200]}"
                )
    return wrong
