"""The OpenAPI document as its readers use it: generated clients, linters, Swagger UI and ReDoc.

FastAPI derives operation ids and summaries from function names (`get_timeline_v1_timeline_get`,
"Get Timeline"), which become the method and class names of every generated client, and it
leaves examples inside the parameter schemas, where Swagger UI does not show them. This module
finishes the generated document in one pass, so the routers keep their plain signatures and a
new route is covered by the same rules:

* every operation takes its id and summary from `OPERATIONS` (a test fails on a route missing
  from it);
* an operation that needs no key says so (`security: []`), one that needs a key keeps its scheme;
* `servers` names where the API is served: `PUBLIC_BASE_URL`, or `/` (the host the document was
  fetched from);
* parameter and request-body examples move from the schema to the parameter and the media type,
  where Swagger UI and ReDoc both show them;
* an optional query or path parameter is documented as its type, not "that type or null": a
  query string cannot carry a null, and the `anyOf` becomes `…Type0` classes in generated clients.
"""

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from app.config import Settings
from app.errors import PROBLEM_BASE

# (METHOD, path) -> (operationId, summary). The summary is what Swagger UI and ReDoc list and
# what a generated client's docstring starts with: say what a reader gets, in their words.
OPERATIONS: dict[tuple[str, str], tuple[str, str]] = {
    # Timeline and events
    ("GET", "/v1/timeline"): ("listTimeline", "Find events, in date order (a page at a time)"),
    ("GET", "/v1/timeline.csv"): ("exportTimelineCsv", "Download matching events as CSV"),
    ("GET", "/v1/timeline.ndjson"): (
        "exportTimelineNdjson",
        "Download matching events as NDJSON (one JSON event per line)",
    ),
    ("GET", "/v1/timeline.geojson"): (
        "exportTimelineGeojson",
        "Download matching events as a map layer (GeoJSON)",
    ),
    ("GET", "/v1/timeline.ics"): (
        "exportTimelineIcs",
        "Subscribe to matching events as a calendar (iCalendar)",
    ),
    ("GET", "/v1/timeline.atom"): (
        "exportTimelineAtom",
        "Follow the latest changes to matching events in a feed reader (Atom)",
    ),
    ("GET", "/v1/timeline.timelinejs"): (
        "exportTimelineTimelinejs",
        "Matching events as a Knight Lab TimelineJS document",
    ),
    ("GET", "/v1/timeline/facets"): (
        "listTimelineFacets",
        "Count matching events by kind, category, state, organisation and month",
    ),
    ("GET", "/v1/events/{id}"): ("getEvent", "Read one event, with its sources and claims"),
    ("POST", "/v1/events"): ("createEvent", "Add an event"),
    ("PATCH", "/v1/events/{id}"): ("updateEvent", "Correct an event"),
    ("DELETE", "/v1/events/{id}"): ("deleteEvent", "Delete an event"),
    ("GET", "/v1/events/{id}/revisions"): ("listEventRevisions", "Every change made to an event"),
    ("GET", "/v1/events/{id}/thread"): (
        "getEventThread",
        "The chain of events that answered one another, around one event",
    ),
    # States, organisations and memberships
    ("GET", "/v1/states"): ("listStates", "List states and every spelling of their names"),
    ("POST", "/v1/states"): ("createState", "Add a state"),
    ("GET", "/v1/states/{code}"): ("getState", "Read one state and its memberships"),
    ("PATCH", "/v1/states/{code}"): ("updateState", "Correct a state"),
    ("DELETE", "/v1/states/{code}"): ("deleteState", "Delete a state"),
    ("GET", "/v1/states/{code}/revisions"): ("listStateRevisions", "Every change made to a state"),
    ("GET", "/v1/states/{code}/memberships"): (
        "getStateMemberships",
        "Where a state stood in each of its organisations on a date",
    ),
    ("GET", "/v1/organisations"): ("listOrganisations", "List organisations and alliances"),
    ("POST", "/v1/organisations"): ("createOrganisation", "Add an organisation"),
    ("GET", "/v1/organisations/{code}"): ("getOrganisation", "Read one organisation"),
    ("PATCH", "/v1/organisations/{code}"): ("updateOrganisation", "Correct an organisation"),
    ("DELETE", "/v1/organisations/{code}"): ("deleteOrganisation", "Delete an organisation"),
    ("GET", "/v1/organisations/{code}/members"): (
        "listOrganisationMembers",
        "The members of an organisation on a date",
    ),
    ("GET", "/v1/organisations/{code}/members/history"): (
        "getOrganisationMembershipHistory",
        "When each state joined, was suspended from and left an organisation",
    ),
    ("GET", "/v1/organisations/{code}/revisions"): (
        "listOrganisationRevisions",
        "Every change made to an organisation",
    ),
    ("GET", "/v1/memberships/{membership_id}"): ("getMembership", "Read one membership period"),
    ("POST", "/v1/memberships"): ("createMembership", "Record a membership period"),
    ("PATCH", "/v1/memberships/{membership_id}"): (
        "updateMembership",
        "Correct a membership period",
    ),
    ("DELETE", "/v1/memberships/{membership_id}"): (
        "deleteMembership",
        "Delete a membership period",
    ),
    ("GET", "/v1/memberships/{membership_id}/revisions"): (
        "listMembershipRevisions",
        "Every change made to a membership period",
    ),
    # Relations between two states
    ("GET", "/v1/relations/{a}/{b}"): ("getRelations", "How two states stood on a date"),
    ("GET", "/v1/relations/{a}/{b}/history"): (
        "getRelationsHistory",
        "How relations between two states changed over time",
    ),
    # Places, sources, vocabulary
    ("GET", "/v1/places"): ("listPlaces", "List places and every spelling of their names"),
    ("GET", "/v1/places/{code}"): ("getPlace", "Read one place"),
    ("GET", "/v1/places/{code}/revisions"): ("listPlaceRevisions", "Every change made to a place"),
    ("GET", "/v1/sources"): ("listSources", "List the sources events cite"),
    ("POST", "/v1/sources"): ("createSource", "Add a source"),
    ("GET", "/v1/sources/{source_id}"): ("getSource", "Read one source"),
    ("PATCH", "/v1/sources/{source_id}"): ("updateSource", "Correct a source"),
    ("DELETE", "/v1/sources/{source_id}"): ("deleteSource", "Delete a source"),
    ("GET", "/v1/sources/{source_id}/revisions"): (
        "listSourceRevisions",
        "Every change made to a source",
    ),
    ("GET", "/v1/categories"): ("listCategories", "Event categories and their CAMEO codes"),
    # Changes, keys, audit, archive
    ("GET", "/v1/changes"): ("listChanges", "Every change to the dataset, to keep a copy in step"),
    ("GET", "/v1/changes/stream"): (
        "streamChanges",
        "Every change as it happens, live (Server-Sent Events)",
    ),
    ("GET", "/v1/keys"): ("listKeys", "List API keys"),
    ("POST", "/v1/keys"): ("createKey", "Create an API key"),
    ("DELETE", "/v1/keys/{key_id}"): ("revokeKey", "Revoke an API key"),
    ("GET", "/v1/audit"): ("listAuditEntries", "Who wrote what, and when"),
    ("GET", "/v1/archive"): ("downloadArchive", "Download the whole dataset as one archive"),
    # Webhooks
    ("GET", "/v1/webhook-event-types"): (
        "listWebhookEventTypes",
        "The kinds of notification a webhook can receive",
    ),
    ("GET", "/v1/webhook-endpoints"): ("listWebhookEndpoints", "List your webhook endpoints"),
    ("POST", "/v1/webhook-endpoints"): ("createWebhookEndpoint", "Subscribe a URL to changes"),
    ("GET", "/v1/webhook-endpoints/{id}"): ("getWebhookEndpoint", "Read one webhook endpoint"),
    ("PATCH", "/v1/webhook-endpoints/{id}"): (
        "updateWebhookEndpoint",
        "Change a webhook endpoint",
    ),
    ("DELETE", "/v1/webhook-endpoints/{id}"): (
        "deleteWebhookEndpoint",
        "Unsubscribe a webhook endpoint",
    ),
    ("POST", "/v1/webhook-endpoints/{id}/secret/rotate"): (
        "rotateWebhookSecret",
        "Give a webhook endpoint a new signing secret",
    ),
    ("POST", "/v1/webhook-endpoints/{id}/secret/revoke-previous"): (
        "revokePreviousWebhookSecret",
        "Stop signing with a webhook endpoint's previous secret",
    ),
    ("POST", "/v1/webhook-endpoints/{id}/disable"): (
        "disableWebhookEndpoint",
        "Pause deliveries to a webhook endpoint",
    ),
    ("POST", "/v1/webhook-endpoints/{id}/enable"): (
        "enableWebhookEndpoint",
        "Resume deliveries to a webhook endpoint",
    ),
    ("POST", "/v1/webhook-endpoints/{id}/test"): (
        "sendWebhookTest",
        "Send a test notification to a webhook endpoint",
    ),
    ("POST", "/v1/webhook-endpoints/{id}/recover"): (
        "recoverWebhookDeliveries",
        "Queue again the deliveries a webhook endpoint missed",
    ),
    ("GET", "/v1/webhook-endpoints/{id}/deliveries"): (
        "listWebhookDeliveries",
        "List the deliveries to a webhook endpoint",
    ),
    ("GET", "/v1/webhook-deliveries/{id}"): ("getWebhookDelivery", "Read one webhook delivery"),
    ("POST", "/v1/webhook-deliveries/{id}/redeliver"): (
        "redeliverWebhook",
        "Try a webhook delivery once more",
    ),
    # Embeds (on main since the drawn timeline)
    ("GET", "/oembed"): ("getOembed", "The embed snippet for a timeline address (oEmbed)"),
    # Probes
    ("GET", "/healthz"): ("checkLiveness", "Is the service running?"),
    ("GET", "/readyz"): ("checkReadiness", "Can the service answer (database reachable)?"),
}

# SPDX identifiers of licences DATA_LICENCE may name, so the document can say which one it is.
SPDX = {
    "CC BY 4.0": "CC-BY-4.0",
    "CC BY-SA 4.0": "CC-BY-SA-4.0",
    "CC0 1.0": "CC0-1.0",
    "ODbL 1.0": "ODbL-1.0",
}
_NULL = {"type": "null"}

# An example problem for each documented status, in the API's own words, so Swagger UI and ReDoc
# show a 422 as a 422 (generated from the Problem schema, every one looked like a 404). The ids
# and codes are ones that exist nowhere. Keyed by the path's first segment after /v1/.
_MISSING = {
    "events": ("event with id '1999-01-01-no-such-event'", "Event '1999-01-01-no-such-event'"),
    "states": ("state with code 'ZZZ'; codes are ISO 3166-1 alpha-3, like MLI", "State 'ZZZ'"),
    "relations": ("state with code 'ZZZ'; codes are ISO 3166-1 alpha-3, like MLI", "State 'ZZZ'"),
    "organisations": (
        "organisation with code 'NO-SUCH-ORG'; see GET /v1/organisations",
        "Organisation 'NO-SUCH-ORG'",
    ),
    "memberships": ("membership with id 999999", "Membership 999999"),
    "sources": ("source with id 999999", "Source 999999"),
    "places": ("place with code 'no-such-place'; see GET /v1/places", "Place 'no-such-place'"),
    "keys": ("API key with id 999999", "API key 999999"),
    "webhook-endpoints": ("webhook endpoint 'whep_0000000000000000000000'", "Endpoint"),
    "webhook-deliveries": ("webhook delivery 999999", "Delivery 999999"),
}
_PROBLEMS: dict[str, tuple[str, str, str]] = {
    "401": (
        "unauthorized",
        "Unauthorized",
        "This operation needs an API key: send Authorization: Bearer <key>.",
    ),
    "403": ("forbidden", "Forbidden", "The key 'newsroom' lacks the '{scope}' scope."),
    "404": ("not-found", "Not found", "No {missing}."),
    "409": (
        "conflict",
        "Conflict",
        "This request conflicts with another write that happened at the same time.",
    ),
    "410": ("gone", "Gone", "{deleted} was deleted on 2026-01-05T09:30:00+00:00."),
    "412": (
        "precondition-failed",
        "Precondition failed",
        "Another write changed this resource first; fetch it again and retry with its ETag.",
    ),
    "413": (
        "payload-too-large",
        "Payload too large",
        "The request body is larger than the limit of 1 MiB (1048576 bytes); send a smaller body.",
    ),
    "428": (
        "precondition-required",
        "Precondition required",
        "Send If-Match with the ETag of the version you read, so a concurrent edit is not lost.",
    ),
    "429": (
        "rate-limited",
        "Too many requests",
        "Callers without an API key may make 300 requests per 60 s from one address; retry in"
        " 42 s, or send an API key for a higher limit.",
    ),
    "503": (
        "service-unavailable",
        "Service unavailable",
        "The database is unavailable or too busy to answer. Retry after a few seconds (a POST"
        " with the same Idempotency-Key).",
    ),
}
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def finish(spec: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Apply the rules of the module docstring to a generated document, in place."""
    licence = spec.get("info", {}).get("license")
    if licence is not None and settings.data_licence in SPDX:
        licence["identifier"] = SPDX[settings.data_licence]
    spec["servers"] = [
        {
            "url": settings.public_base_url or "/",
            "description": "This server" if not settings.public_base_url else "The public API",
        }
    ]
    for path, item in spec.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            named = OPERATIONS.get((method.upper(), path))
            if named is not None:
                operation["operationId"], operation["summary"] = named
            operation.setdefault("security", [])
            for parameter in operation.get("parameters", []):
                _parameter(parameter)
            for media in operation.get("requestBody", {}).get("content", {}).values():
                _move_examples(media.get("schema", {}), media)
            for status, response in operation.get("responses", {}).items():
                _problem_example(path, operation, status, response)
    return spec


def _parameter(parameter: dict[str, Any]) -> None:
    schema = parameter.get("schema", {})
    options = schema.get("anyOf")
    if options and len(options) == 2 and _NULL in options:
        (kept,) = (option for option in options if option != _NULL)
        rest = {key: value for key, value in schema.items() if key != "anyOf"}
        schema = parameter["schema"] = {**kept, **rest}
    _move_examples(schema, parameter)


def _problem_example(
    path: str, operation: dict[str, Any], status: str, response: dict[str, Any]
) -> None:
    media = response.get("content", {}).get("application/problem+json")
    if media is None or "example" in media or "examples" in media:
        return
    example: dict[str, Any]
    if status == "422":
        names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        if "limit" in names:
            where, msg = ["query", "limit"], "Input should be less than or equal to 500"
            kind = "less_than_equal"
        else:
            # The shape, where no one message fits every way the operation's input can be wrong.
            where, msg = ["query", "<parameter>"], "<what is wrong, and what to send instead>"
            kind = "<error type>"
        example = {
            "type": PROBLEM_BASE + "validation-error",
            "title": "Invalid request",
            "status": 422,
            "detail": f"{where[-1]}: {msg}",
            "errors": [{"loc": where, "msg": msg, "type": kind}],
        }
    elif status in _PROBLEMS:
        slug, title, detail = _PROBLEMS[status]
        segment = path.removeprefix("/v1/").split("/")[0]
        missing, deleted = _MISSING.get(segment, ("resource at this address", "It"))
        scope = (
            "webhooks"
            if segment.startswith("webhook")
            else "admin"
            if segment in {"keys", "audit", "archive"}
            else "editor"
        )
        example = {
            "type": PROBLEM_BASE + slug,
            "title": title,
            "status": int(status),
            "detail": detail.format(missing=missing, deleted=deleted, scope=scope),
        }
    else:
        return
    if int(status) >= 500:
        example["request_id"] = "0f6c1d2e9a8b4c7d8e9f0a1b2c3d4e5f"
    media["example"] = example


def _move_examples(schema: dict[str, Any], target: dict[str, Any]) -> None:
    """JSON Schema `examples` to the parameter or media type: one as its `example` (shown
    inline and filled in by "Try it out"), several as an `examples` map (offered in a list)."""
    examples = schema.pop("examples", None)
    if not examples or "examples" in target or "example" in target:
        return
    if len(examples) == 1:
        target["example"] = examples[0]
    else:
        target["examples"] = {f"example {n}": {"value": v} for n, v in enumerate(examples, 1)}


def document_operations(app: FastAPI, settings: Settings) -> None:
    """Make `app.openapi()` (and so /openapi.json) the finished document."""
    generate: Callable[[], dict[str, Any]] = app.openapi
    done: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        spec = generate()
        if not done or done[0] is not spec:
            done[:] = [finish(spec, settings)]
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
