"""A statement that runs past DB_STATEMENT_TIMEOUT is cancelled, and the request gets a 503
problem telling the client to narrow the query or retry: never a 500, never a hung worker.

The slow statement is a real one: the facets of the package's synthetic database (thousands of
events, bench/synth.py) through a real server, with the limit set to 1 ms, the smallest
PostgreSQL's statement_timeout takes. Facets of an organisation with its members read the record
of most events, which takes far longer than that on either database; the same request answers
200 under the default limit. Nothing about the query is faked or routed around the code that
serves it.
"""

from collections.abc import Callable

import httpx

from tests.conftest import ON_POSTGRES
from tests.faults.conftest import Database, wait_for
from tests.helpers import assert_problem
from tests.live import LiveServer

# Facets over the events of the UN and of its members at each event's date: counted from every
# matching event's record, one statement over most of the events. (Unfiltered facets are summed
# from kept counts, too quickly for any limit.)
FACETS = "/v1/timeline/facets?interval=month&organisation=UN&include_members=true"
# Generous: a hung worker shows as this timeout, a cancelled statement answers long before.
CLIENT_TIMEOUT = 60.0


def assert_timed_out(
    response: httpx.Response, limit: str, instance: str = "/v1/timeline/facets"
) -> None:
    body = assert_problem(response, 503)
    assert body["type"].endswith("/query-timeout"), body
    assert f"after {limit} s" in body["detail"]
    assert "Narrow it" in body["detail"] and "retry in 5 s" in body["detail"]
    assert body["instance"] == instance
    assert int(response.headers["retry-after"]) == 5
    assert response.headers["x-request-id"] == body["request_id"]


def test_a_statement_past_the_limit_is_cancelled_with_a_503_problem(
    database: Database, serve: Callable[..., LiveServer]
) -> None:
    strict = serve(database.url, DB_STATEMENT_TIMEOUT="0.001")
    with httpx.Client(base_url=strict.base_url, timeout=CLIENT_TIMEOUT) as http:
        # Twice: the worker and its pooled connection survive the first cancellation, and each
        # answer comes promptly (a hung worker would show as the client's timeout).
        for _ in range(2):
            assert_timed_out(http.get(FACETS), "0.001")
        assert http.get("/healthz").status_code == 200
    if ON_POSTGRES:
        # Cancelled, not abandoned: the server runs no statement for this database any more.
        wait_for(
            lambda: (
                database.scalar(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND state = 'active' AND pid <> pg_backend_pid()"
                )
                == 0
            ),
            30,
            "a cancelled statement is still running",
        )
    assert "statement time limit (0.001 s) reached on GET /v1/timeline/facets" in strict.log()
    assert "Traceback" not in strict.log()
    assert strict.process is not None and strict.process.poll() is None

    # The same request under the default limit: the 503 above was the limit, not the query.
    default = serve(database.url)
    with httpx.Client(base_url=default.base_url, timeout=CLIENT_TIMEOUT) as http:
        facets = http.get(FACETS)
        assert facets.status_code == 200, facets.text
        assert facets.json()["total"] >= 1000


def test_an_export_past_the_limit_in_its_renderer_is_the_same_503_problem(
    database: Database, serve: Callable[..., LiveServer]
) -> None:
    """An export's statements run in a renderer process (app/timeline/renderers.py) under the
    same limit; its first batch is read before the response starts, so the client gets the
    problem, not a 200 whose body stops short. The renderer lives on for the next export."""
    strict = serve(database.url, DB_STATEMENT_TIMEOUT="0.001")
    export = "/v1/timeline?format=ndjson&organisation=UN&include_members=true"
    with httpx.Client(base_url=strict.base_url, timeout=CLIENT_TIMEOUT) as http:
        for _ in range(2):
            assert_timed_out(http.get(export), "0.001", instance="/v1/timeline")
        assert http.get("/healthz").status_code == 200
    assert "Traceback" not in strict.log()
    default = serve(database.url)
    with httpx.Client(base_url=default.base_url, timeout=CLIENT_TIMEOUT) as http:
        whole = http.get(export)
        assert whole.status_code == 200, whole.text
        assert whole.text.count("\n") >= 1000
