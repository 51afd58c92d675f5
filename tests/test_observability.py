"""Structured logs with a request id, and secrets kept out of every log line.

The log output checked here is the real one: the handler `configure_logging` installs writes to
whatever sys.stderr is, which `capsys` captures; the last test reads a real uvicorn process's
output.
"""

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from alembic import command
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from sqlalchemy import text

from app import observability, writes
from app.auth import service as auth_service
from app.callers import Scope
from app.config import Settings
from app.db import create_db_engine
from app.main import create_app
from app.observability import configure_logging, redact
from tests.conftest import ON_POSTGRES, ThrowawayDatabases, alembic_config
from tests.helpers import assert_problem
from tests.live import LiveServer

GENERATED_ID = re.compile(r"[0-9a-f]{32}")
# Anything shaped like one of our secrets: an API token or a webhook signing secret.
SECRET_SHAPED = re.compile(r"dtl_[A-Za-z0-9_-]{6,}|whsec_[A-Za-z0-9+/=]{6,}")
CAPTURED = pytest.CaptureFixture[str]


def log_lines(capsys: CAPTURED) -> list[dict[str, Any]]:
    """The JSON log lines written so far (every line must be JSON)."""
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


def access_lines(lines: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    return [x for x in lines if x["logger"] == "app.access" and x.get("request_id") == request_id]


class Keyed:
    """A migrated database of its own (no seed: these tests need keys, not data) and an app
    with two test-only routes: one that logs from a worker thread, one that fails."""

    def __init__(self, url: str) -> None:
        command.upgrade(alembic_config(url), "head")
        self.engine = create_db_engine(url)
        self.tokens: dict[str, str] = {}
        with writes.session_factory(self.engine).begin() as session:
            for name, scope in (("admin", Scope.admin), ("hooks", Scope.webhooks)):
                _, self.tokens[name] = auth_service.create_key(session, f"obs-{name}", [scope])
        self.app = create_app(
            Settings(
                database_url=url,
                cursor_secret="test-secret",
                webhook_worker="off",
                webhook_allowed_subnets=["127.0.0.0/8"],
            )
        )
        add_test_routes(self.app)
        self.client = TestClient(self.app, raise_server_exceptions=False)

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def add_test_routes(app: FastAPI) -> None:
    def logs_inside(request: Request) -> dict[str, str]:
        # A sync endpoint: it runs in a worker thread, whose log lines must carry the id too.
        logging.getLogger("tests.inside").warning("working on %s", request.url.path)
        return {"ok": "yes"}

    def fails(request: Request) -> dict[str, str]:
        # The worst case: a bug that puts the caller's credentials into an exception message.
        raise RuntimeError(f"could not handle {request.headers.items()!r}")

    app.add_api_route("/test/logs-inside", logs_inside)
    app.add_api_route("/test/fails", fails, methods=["POST"])


@pytest.fixture(scope="module")
def keyed(databases: ThrowawayDatabases) -> Iterator[Keyed]:
    k = Keyed(databases.new())
    with k.client:
        yield k
    k.app.state.engine.dispose()
    k.engine.dispose()


@pytest.fixture(autouse=True)
def json_logs() -> Iterator[None]:
    """Every test starts and ends with the default set-up (JSON at INFO)."""
    configure_logging("INFO", "json")
    yield
    configure_logging("INFO", "json")


class TestRequestId:
    def test_made_when_absent_returned_and_logged_once(
        self, keyed: Keyed, capsys: CAPTURED
    ) -> None:
        capsys.readouterr()
        response = keyed.client.get("/healthz")
        request_id = response.headers["x-request-id"]
        assert GENERATED_ID.fullmatch(request_id)
        [line] = access_lines(log_lines(capsys), request_id)
        assert line["level"] == "info"
        assert line["method"] == "GET" and line["path"] == "/healthz" and line["status"] == 200
        assert line["duration_ms"] >= 0
        assert line["client_ip"] == "testclient"
        assert "key_id" not in line
        assert line["time"].endswith("Z")

    @pytest.mark.parametrize(
        "sent",
        [
            "abc-123",
            "0f6c1d2e-9a8b-4c7d-8e9f-0a1b2c3d4e5f",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "01JDQ7Z3K8X9V2M4N6P8R0T2W4",
            "x" * 128,
        ],
    )
    def test_a_sane_incoming_id_is_kept(self, keyed: Keyed, sent: str) -> None:
        response = keyed.client.get("/healthz", headers={"X-Request-ID": sent})
        assert response.headers["x-request-id"] == sent

    @pytest.mark.parametrize(
        "sent",
        [
            "x" * 129,
            "has space",
            'quote"inside',
            "semi;colon",
            "<script>",
            "",
            "caf\u00e9",
        ],
    )
    def test_an_unsafe_incoming_id_is_replaced(self, keyed: Keyed, sent: str) -> None:
        response = keyed.client.get("/healthz", headers=[(b"X-Request-ID", sent.encode("latin-1"))])
        assert GENERATED_ID.fullmatch(response.headers["x-request-id"])

    def test_on_every_kind_of_response(self, keyed: Keyed) -> None:
        c = keyed.client
        not_found = c.get("/v1/nowhere")
        assert_problem(not_found, 404)
        invalid = c.get("/v1/timeline?limit=0")
        assert_problem(invalid, 422)
        refused = c.post("/v1/keys", json={})
        assert_problem(refused, 401)
        preflight = c.options(
            "/v1/events",
            headers={"Origin": "https://newsroom.example", "Access-Control-Request-Method": "GET"},
        )
        assert preflight.status_code == 200
        for response in (not_found, invalid, refused, preflight):
            assert GENERATED_ID.fullmatch(response.headers["x-request-id"])

    def test_browsers_may_read_it(self, keyed: Keyed) -> None:
        response = keyed.client.get("/healthz", headers={"Origin": "https://newsroom.example"})
        exposed = response.headers["access-control-expose-headers"].lower().split(", ")
        assert "x-request-id" in exposed

    def test_log_lines_from_inside_the_request_carry_it(
        self, keyed: Keyed, capsys: CAPTURED
    ) -> None:
        capsys.readouterr()
        response = keyed.client.get("/test/logs-inside", headers={"X-Request-ID": "inside-1"})
        assert response.status_code == 200
        lines = log_lines(capsys)
        [inside] = [x for x in lines if x["logger"] == "tests.inside"]
        assert inside["request_id"] == "inside-1"
        assert inside["message"] == "working on /test/logs-inside"
        assert len(access_lines(lines, "inside-1")) == 1

    def test_the_access_line_names_the_key_but_never_the_query(
        self, keyed: Keyed, capsys: CAPTURED
    ) -> None:
        capsys.readouterr()
        # A parameter the endpoint reads: an unknown one is refused (tests/test_inputs.py).
        response = keyed.client.get(
            "/v1/webhook-endpoints/whep_x/deliveries?event_type=private-words",
            headers=keyed.auth("hooks"),
        )
        assert response.status_code == 404
        [line] = access_lines(log_lines(capsys), response.headers["x-request-id"])
        assert isinstance(line["key_id"], int)
        assert line["path"] == "/v1/webhook-endpoints/whep_x/deliveries"
        assert "private-words" not in json.dumps(line)


class TestServerErrors:
    def test_a_500_problem_names_the_request_id_its_log_lines_carry(
        self, keyed: Keyed, capsys: CAPTURED
    ) -> None:
        capsys.readouterr()
        response = keyed.client.post(
            "/test/fails", headers={**keyed.auth("admin"), "X-Request-ID": "failing-1"}
        )
        body = assert_problem(response, 500)
        assert body["request_id"] == "failing-1"
        assert response.headers["x-request-id"] == "failing-1"
        assert response.headers.get_list("x-request-id") == ["failing-1"]
        lines = log_lines(capsys)
        [error] = [x for x in lines if x["level"] == "error"]
        assert error["request_id"] == "failing-1"
        assert "RuntimeError" in error["exception"]
        [access] = access_lines(lines, "failing-1")
        assert access["status"] == 500

    def test_client_errors_do_not_carry_it_in_the_body(self, keyed: Keyed) -> None:
        body = assert_problem(keyed.client.get("/v1/nowhere"), 404)
        assert "request_id" not in body

    def test_the_problem_schema_documents_it(self, keyed: Keyed) -> None:
        schema = keyed.client.get("/openapi.json").json()["components"]["schemas"]["Problem"]
        assert "5xx" in schema["properties"]["request_id"]["description"]


class TestSecretsNeverReachTheLog:
    def test_tokens_secrets_and_tracebacks(self, keyed: Keyed, capsys: CAPTURED) -> None:
        c = keyed.client
        admin = keyed.tokens["admin"]
        capsys.readouterr()
        # A real key, an unknown one, a token in the query string and in a refused body.
        assert c.get("/v1/keys", headers=keyed.auth("admin")).status_code == 200
        bogus = "dtl_" + "A" * 43
        assert c.post("/v1/keys", json={}, headers={"Authorization": f"Bearer {bogus}"}).is_error
        assert c.get(f"/v1/timeline?token={admin}&limit=0").status_code == 422
        assert c.post("/v1/keys", json={"name": admin}, headers=keyed.auth("admin")).is_error
        # A webhook secret, shown once in a response body.
        created = c.post(
            "/v1/webhook-endpoints",
            json={"url": "http://127.0.0.1:9/hook"},
            headers=keyed.auth("hooks"),
        )
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        # A failure whose exception message and traceback hold the Authorization header and the
        # secret, as a careless error message would.
        failed = c.post(
            "/test/fails",
            headers={**keyed.auth("admin"), "X-Webhook-Secret": secret, "Cookie": "s=1"},
        )
        assert failed.status_code == 500
        logging.getLogger("tests").error(
            "an operator's mistake: Authorization: Bearer %s, secret %s", admin, secret
        )

        output = capsys.readouterr().err
        assert output.count("\n") >= 8
        for value in (admin, keyed.tokens["hooks"], bogus, secret, secret.removeprefix("whsec_")):
            assert value not in output
        assert not SECRET_SHAPED.search(output), SECRET_SHAPED.search(output)
        assert "[REDACTED]" in output
        assert "RuntimeError" in output  # the traceback itself is kept

    def test_text_format_is_redacted_too(self, keyed: Keyed, capsys: CAPTURED) -> None:
        configure_logging("INFO", "text")
        capsys.readouterr()
        keyed.client.post("/test/fails", headers=keyed.auth("admin"))
        output = capsys.readouterr().err
        assert "ERROR app.errors [" in output
        assert keyed.tokens["admin"] not in output
        assert "Traceback" in output

    @pytest.mark.parametrize(
        ("raw", "kept"),
        [
            ("Authorization: Bearer abc.def.ghi", "Authorization: "),
            ("[(b'authorization', b'Basic dXNlcjpwYXNzd29yZA==')]", "authorization"),
            ("postgresql://postgres:hunter2@db:5432/timeline", "postgresql://postgres:"),
            ("GET /v1/x?api_key=abc123&limit=5", "limit=5"),
            ("key dtl_abcdefghijklmnop used", "key dtl_"),
            ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_"),
        ],
    )
    def test_redact(self, raw: str, kept: str) -> None:
        cleaned = redact(raw)
        assert "[REDACTED]" in cleaned and kept in cleaned
        for secret in ("abc.def.ghi", "dXNlcjpwYXNzd29yZA", "hunter2", "abc123", "abcdefghij"):
            assert secret not in cleaned
        assert "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" not in cleaned

    def test_a_redacted_json_line_stays_json(self, capsys: CAPTURED) -> None:
        headers = {"authorization": "Bearer dtl_abcdefghijkl", "cookie": "s=1", "x": 'say "hi"'}
        logging.getLogger("tests").warning('headers %s; password="p"', json.dumps(headers))
        [line] = log_lines(capsys)
        assert "dtl_abcdefghijkl" not in line["message"] and "s=1" not in line["message"]
        assert 'say \\"hi\\"' in line["message"]

    def test_ordinary_text_is_left_alone(self) -> None:
        text_ = "GET /v1/timeline?state=DZA 200 the token is unknown"
        assert redact(text_) == text_


class TestAccessLinesWrittenDirectly:
    """With the installed handler alone on the root logger, the middleware writes access lines
    itself instead of through `logging` (app/observability.py, `_direct_handler`). pytest puts
    its own capture handlers on the root logger, so elsewhere in this suite lines go through
    `logging`; here they are moved aside. The real server's test below gets direct lines."""

    FIELDS: ClassVar[dict[str, Any]] = {
        "method": "GET",
        "path": "/v1/keys/dtl_abcdefghijkl",
        "status": 200,
        "duration_ms": 1.25,
        "client_ip": "127.0.0.1",
        "key_id": 3,
    }
    MESSAGE = "GET /v1/keys/dtl_abcdefghijkl 200"

    def _line(self, capsys: CAPTURED) -> dict[str, Any]:
        observability._log_access(self.MESSAGE, "req-1", dict(self.FIELDS))
        [line] = log_lines(capsys)
        return line

    def test_the_same_line_either_way(
        self, capsys: CAPTURED, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        handler = configure_logging("INFO", "json")
        capsys.readouterr()
        monkeypatch.setattr(logging.root, "handlers", [handler])
        assert observability._direct_handler() is handler
        direct = self._line(capsys)
        # Through logging, whose filter reads the request id from the request's context.
        monkeypatch.setattr(logging.root, "handlers", [handler, logging.NullHandler()])
        assert observability._direct_handler() is None
        token = observability._request_id.set("req-1")
        try:
            logged = self._line(capsys)
        finally:
            observability._request_id.reset(token)
        for line in (direct, logged):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line.pop("time"))
        assert list(direct.items()) == list(logged.items())
        assert direct["message"] == "GET /v1/keys/dtl_[REDACTED] 200"
        assert direct["path"] == "/v1/keys/dtl_[REDACTED]"
        assert direct["request_id"] == "req-1" and direct["key_id"] == 3

    def test_only_when_nothing_else_would_see_the_line(
        self, capsys: CAPTURED, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        handler = configure_logging("INFO", "json")
        monkeypatch.setattr(logging.root, "handlers", [handler])
        assert observability._direct_handler() is handler
        parent = logging.getLogger("app")
        monkeypatch.setattr(parent, "handlers", [logging.NullHandler()])
        assert observability._direct_handler() is None
        monkeypatch.setattr(parent, "handlers", [])
        monkeypatch.setattr(observability.access_logger, "filters", [logging.Filter("x")])
        assert observability._direct_handler() is None
        monkeypatch.setattr(observability.access_logger, "filters", [])
        # The text format (json_logs puts JSON back afterwards).
        monkeypatch.setattr(logging.root, "handlers", [configure_logging("INFO", "text")])
        assert observability._direct_handler() is None


def test_a_real_server_logs_json_with_request_ids_and_no_secrets(
    databases: ThrowawayDatabases, tmp_path: Path
) -> None:
    """uvicorn as `make run` starts it: its own lines are JSON too, its access log is replaced
    by ours (one line per request), and a failing write's SQL parameters are redacted."""
    url = databases.new()
    command.upgrade(alembic_config(url), "head")
    engine = create_db_engine(url)
    with writes.session_factory(engine).begin() as session:
        _, token = auth_service.create_key(session, "live-hooks", [Scope.webhooks])
    auth = {"Authorization": f"Bearer {token}"}
    log = tmp_path / "server.log"
    with LiveServer(url, log, WEBHOOK_ALLOWED_SUBNETS="127.0.0.0/8") as server:
        api = server.base_url
        ok = httpx.get(f"{api}/healthz", headers={"X-Request-ID": "live-1"})
        assert ok.headers["x-request-id"] == "live-1"
        made = httpx.post(
            f"{api}/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/a"}, headers=auth
        )
        assert made.status_code == 201, made.text
        # The next insert fails inside the database, with the new secret among its parameters.
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE webhook_endpoint" + (" CASCADE" if ON_POSTGRES else "")))
        failed = httpx.post(
            f"{api}/v1/webhook-endpoints",
            json={"url": "http://127.0.0.1:9/b"},
            headers={**auth, "X-Request-ID": "live-2"},
        )
        assert failed.status_code >= 500
        assert failed.json()["request_id"] == "live-2"
    engine.dispose()

    output = log.read_text()
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert any(x["logger"].startswith("uvicorn") for x in lines)  # uvicorn's own, as JSON
    assert '"GET /healthz HTTP/1.1"' not in output  # uvicorn's access log is off
    assert [x["status"] for x in access_lines(lines, "live-1")] == [200]
    assert [x["status"] for x in access_lines(lines, "live-2")] == [failed.status_code]
    [error] = [x for x in lines if x["logger"] == "app.errors" and x["request_id"] == "live-2"]
    if ON_POSTGRES:
        # A 500 whose traceback lists the failed INSERT's parameters: the new secret among them.
        assert "[parameters:" in error["exception"]
        assert "whsec_[REDACTED]" in error["exception"]
    else:
        # SQLite's "no such table" is an OperationalError: a one-line 503 warning (app/errors.py).
        assert error["level"] == "warning"
    assert token not in output
    assert made.json()["secret"] not in output
    assert not SECRET_SHAPED.search(output), SECRET_SHAPED.search(output)
