"""The request body limit (413) and the OpenAPI entries for the size and rate limits."""

import json
import select
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from fastapi.testclient import TestClient

from app import writes
from app.auth import service as auth_service
from app.callers import Scope
from app.config import Settings
from app.db import create_db_engine
from app.main import create_app
from tests.conftest import ThrowawayDatabases, alembic_config
from tests.helpers import assert_problem
from tests.live import LiveServer

LIMIT = 4096


def padded(name: str, size: int) -> bytes:
    """A valid key-creation body of exactly `size` bytes: JSON allows trailing whitespace."""
    body = json.dumps({"name": name, "scopes": ["editor"]}).encode()
    assert len(body) <= size
    return body + b" " * (size - len(body))


def chunks(data: bytes, size: int = 1000) -> Iterator[bytes]:
    """A generator body: httpx sends it chunked, without a Content-Length."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


class Small:
    """A migrated database (no seed: nothing here needs it) with an admin key, served with a
    4 KiB body limit, the smallest the setting allows."""

    def __init__(self, url: str) -> None:
        command.upgrade(alembic_config(url), "head")
        engine = create_db_engine(url)
        with writes.session_factory(engine).begin() as session:
            _, token = auth_service.create_key(session, "limits-admin", [Scope.admin])
        engine.dispose()
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        settings = Settings(
            database_url=url,
            cursor_secret="test-secret",
            webhook_worker="off",
            max_request_bytes=LIMIT,
        )
        self.app = create_app(settings)
        self.client = TestClient(self.app)

    def post(self, content: bytes | Iterator[bytes]) -> Any:
        return self.client.post("/v1/keys", content=content, headers=self.headers)

    def key_names(self) -> set[str]:
        response = self.client.get("/v1/keys", headers=self.headers)
        assert response.status_code == 200
        return {key["name"] for key in response.json()["items"]}


@pytest.fixture(scope="module")
def small(databases: ThrowawayDatabases) -> Iterator[Small]:
    served = Small(databases.new())
    with served.client:
        yield served
    served.app.state.engine.dispose()


def assert_too_large(response: Any) -> None:
    body = assert_problem(response, 413)
    assert body["type"].endswith("/payload-too-large")
    assert "4 KiB" in body["detail"]
    assert "4096 bytes" in body["detail"]
    assert response.headers["cache-control"] == "no-store"


class TestBodyLimit:
    @pytest.mark.parametrize("chunked", [False, True])
    def test_an_oversized_body_is_refused_and_nothing_is_written(
        self, small: Small, chunked: bool
    ) -> None:
        name = f"too-large-{chunked}"
        body = padded(name, LIMIT + 1)
        assert_too_large(small.post(chunks(body) if chunked else body))
        assert name not in small.key_names()

    @pytest.mark.parametrize("chunked", [False, True])
    def test_a_body_at_the_limit_is_served(self, small: Small, chunked: bool) -> None:
        name = f"at-the-limit-{chunked}"
        body = padded(name, LIMIT)
        response = small.post(chunks(body) if chunked else body)
        assert response.status_code == 201, response.text
        assert name in small.key_names()

    def test_the_default_limit_is_one_mebibyte(self, client: TestClient) -> None:
        assert Settings().max_request_bytes == 1024 * 1024
        response = client.post("/v1/events", content=b" " * (1024 * 1024 + 1))
        assert assert_problem(response, 413)["detail"].startswith(
            "The request body is larger than the limit of 1 MiB"
        )
        # A body under the limit goes on to authentication; reads are untouched.
        assert client.post("/v1/events", content=b" " * (1024 * 1024)).status_code == 401
        assert client.get("/v1/categories").status_code == 200


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        part = sock.recv(65536)
        assert part, f"connection closed before a response: {data!r}"
        data += part
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    while len(body) < int(headers["content-length"]):
        part = sock.recv(65536)
        assert part
        body += part
    return int(status_line.split()[1]), headers, body


@pytest.fixture(scope="module")
def live(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    log = tmp_path_factory.mktemp("limits") / "server.log"
    with LiveServer(database_url, log) as server:
        yield server


class TestOverTheWire:
    """Against a real uvicorn: the refusal comes before the body is sent, or part-way through."""

    def connect(self, live: LiveServer) -> socket.socket:
        return socket.create_connection(("127.0.0.1", live.port), timeout=30)

    def test_a_declared_size_is_refused_before_any_body_is_sent(self, live: LiveServer) -> None:
        with self.connect(live) as sock:
            sock.sendall(
                b"POST /v1/events HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                b"Content-Length: 52428800\r\n\r\n"
            )
            # Not one byte of the 50 MB follows: the answer cannot depend on reading it.
            status, headers, body = read_response(sock)
        assert status == 413
        assert headers["content-type"] == "application/problem+json"
        assert json.loads(body)["status"] == 413

    def test_a_chunked_body_is_refused_before_it_ends(self, live: LiveServer) -> None:
        chunk = b"x" * 65536
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        sent = 0
        with self.connect(live) as sock:
            sock.sendall(
                b"POST /v1/events HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            # Keep sending, never the final chunk, until the server answers (64 MiB at most).
            while sent < 64 * 1024 * 1024:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break
                sock.sendall(frame)
                sent += len(chunk)
            status, _, body = read_response(sock)
        assert status == 413
        assert json.loads(body)["type"].endswith("/payload-too-large")
        assert 1024 * 1024 < sent < 64 * 1024 * 1024
        # The server is still serving.
        with self.connect(live) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
            assert read_response(sock)[0] == 200
        # A refused body is an answer, not a failure: nothing was logged as an error.
        assert "Traceback" not in live.log()


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, ops in spec["paths"].items() for m, op in ops.items()]


@pytest.fixture(scope="module")
def spec(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec


class TestOpenApi:
    def test_every_operation_with_a_body_documents_413(self, spec: dict[str, Any]) -> None:
        with_body = [(m, p, op) for m, p, op in operations(spec) if "requestBody" in op]
        assert len(with_body) >= 15
        for method, path, op in with_body:
            response = op["responses"].get("413")
            assert response is not None, f"{method.upper()} {path}"
            schema = response["content"]["application/problem+json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}
        without = [op for _, _, op in operations(spec) if "requestBody" not in op]
        assert without and all("413" not in op["responses"] for op in without)

    def test_every_limited_operation_documents_429(self, spec: dict[str, Any]) -> None:
        for method, path, op in operations(spec):
            if path in ("/healthz", "/readyz"):
                assert "429" not in op["responses"], path
                continue
            response = op["responses"].get("429")
            assert response is not None, f"{method.upper()} {path}"
            assert {"Retry-After", "RateLimit-Limit", "RateLimit-Remaining"} <= set(
                response["headers"]
            )
