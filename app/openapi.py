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
                _media_examples(media)
    return spec


def _parameter(parameter: dict[str, Any]) -> None:
    schema = parameter.get("schema", {})
    options = schema.get("anyOf")
    if options and len(options) == 2 and _NULL in options:
        (kept,) = (option for option in options if option != _NULL)
        rest = {key: value for key, value in schema.items() if key != "anyOf"}
        schema = parameter["schema"] = {**kept, **rest}
    examples = schema.pop("examples", None)
    if examples and "examples" not in parameter and "example" not in parameter:
        parameter["examples"] = _named(examples)


def _media_examples(media: dict[str, Any]) -> None:
    examples = media.get("schema", {}).pop("examples", None)
    if examples and "examples" not in media and "example" not in media:
        media["examples"] = _named(examples)


def _named(values: list[Any]) -> dict[str, dict[str, Any]]:
    """An OpenAPI `examples` map from JSON Schema `examples`: Swagger UI offers its names."""
    if len(values) == 1:
        return {"example": {"value": values[0]}}
    return {f"example {n}": {"value": value} for n, value in enumerate(values, 1)}


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
