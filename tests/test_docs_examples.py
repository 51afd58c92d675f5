"""Every `curl` example in README.md and docs/ answers as documented, on a freshly seeded server.

Each ```sh block that calls curl runs in bash, as a reader pasting it would run it, against a
live server holding only the seed: one server per document, since a document's writes (an event
created, patched, deleted) build on each other. What "as documented" means here:
- a comment after a curl naming a status (`# -> 201`, `"status":422`, `HTTP/1.1 413`) is the
  status that curl must get; without one, the answer must be a success;
- a JSON page (`items`) must not be empty: an example that shows nothing on a fresh install
  teaches nothing (the `as_known_at` example did, before the history of the seed was explained).
A block that cannot run here is listed in EXEMPT with the reason and the test that covers it
instead, so no example is left out silently.
"""

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from app import writes
from app.auth import service as auth_service
from app.callers import Scope
from app.config import PROJECT_ROOT
from tests.conftest import ThrowawayDatabases
from tests.live import LiveServer

DOCUMENTS = [
    "README.md",
    *sorted(str(p.relative_to(PROJECT_ROOT)) for p in (PROJECT_ROOT / "docs").glob("*.md")),
]

# A substring of a block that cannot run against a healthy local server: why, and what covers it.
EXEMPT = {
    "HTTP/1.1 503 Service Unavailable": "needs the database down; tests/faults/ checks this answer",
    "RateLimit-Remaining": "needs rate limits on; tests/test_ratelimit.py",
    "curl -N": "the live stream never ends by itself; tests/test_stream.py reads it",
    "https://example.org/hooks/timeline": (
        "registering resolves the receiver's host, and CI has no DNS; tests/webhooks/ registers"
        " local receivers"
    ),
}

STATUS = re.compile(r"->\s*(\d{3})\b|\"status\":\s*(\d{3})\b|HTTP/1\.1 (\d{3})\b")
MARKER = re.compile(r"\n?@@DTL-STATUS (\d{3})@@\n")
PREAMBLE = """set -u
curl() { command curl -sS --max-time 60 -w '\\n@@DTL-STATUS %{http_code}@@\\n' "$@"; }
"""


@dataclass(frozen=True)
class Example:
    document: str
    line: int
    code: str

    @property
    def id(self) -> str:
        return f"{self.document}:{self.line}"

    def expectations(self) -> list[int | None]:
        """For each curl in the block, in order, the status its comments name (None: any 2xx)."""
        expected: list[int | None] = []
        for line in self.code.splitlines():
            stripped = line.strip()
            if stripped.startswith("#"):
                match = STATUS.search(stripped)
                if match and expected and expected[-1] is None:
                    expected[-1] = int(next(g for g in match.groups() if g))
                continue
            expected.extend(None for _ in re.finditer(r"(?:^|[|(;]\s*)curl\s", stripped))
        return expected


def examples(document: str) -> list[Example]:
    text = (PROJECT_ROOT / document).read_text()
    found = []
    for match in re.finditer(r"^```sh\n(.*?)^```", text, re.S | re.M):
        code = match.group(1)
        if re.search(r"(?:^|[|(;]\s*)curl\s", code, re.M):
            found.append(Example(document, text[: match.start()].count("\n") + 1, code))
    return found


def test_the_documents_have_examples() -> None:
    assert {d for d in DOCUMENTS if examples(d)} >= {"README.md", "docs/api-guide.md"}


@pytest.fixture(scope="module")
def servers(
    databases: ThrowawayDatabases, seeded_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, tuple[LiveServer, dict[str, str]]]]:
    """One freshly seeded server per document, started when the document's first block runs."""
    started: dict[str, tuple[LiveServer, dict[str, str]]] = {}

    class Lazy(dict[str, tuple[LiveServer, dict[str, str]]]):
        def __missing__(self, document: str) -> tuple[LiveServer, dict[str, str]]:
            url = databases.copy_of(seeded_template)
            engine = create_engine(url)
            tokens = {}
            with writes.session_factory(engine).begin() as session:
                for name, scope in {
                    "TOKEN": Scope.editor,
                    "ADMIN_TOKEN": Scope.admin,
                    "HOOKS_TOKEN": Scope.webhooks,
                }.items():
                    tokens[name] = auth_service.create_key(session, f"docs-{name}", [scope])[1]
            engine.dispose()
            log = tmp_path_factory.mktemp("docs") / "server.log"
            server = LiveServer(url, log).start()
            started[document] = self[document] = (server, tokens)
            return self[document]

    yield Lazy()
    for server, _ in started.values():
        server.__exit__(None, None, None)


ALL = [example for document in DOCUMENTS for example in examples(document)]


@pytest.mark.parametrize("example", ALL, ids=[e.id for e in ALL])
def test_example_answers_as_documented(
    example: Example,
    servers: dict[str, tuple[LiveServer, dict[str, str]]],
    tmp_path: Path,
) -> None:
    if reason := next((why for text, why in EXEMPT.items() if text in example.code), None):
        assert reason  # listed on purpose: the reason says what covers it
        return
    server, tokens = servers[example.document]
    # The examples call `.venv/bin/python`, as a reader in the project folder would.
    (tmp_path / ".venv").symlink_to(sys.prefix)
    result = subprocess.run(
        # The documents show `make run`'s address; this server has a port of its own.
        [
            "/bin/bash",
            "-c",
            PREAMBLE + example.code.replace("http://127.0.0.1:8000", server.base_url),
        ],
        cwd=tmp_path,
        env={
            **os.environ,
            "API": server.base_url,
            "DATABASE_URL": server.database_url,
            **tokens,
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    outputs = MARKER.split(result.stdout)
    statuses = [int(s) for s in outputs[1::2]]
    bodies = outputs[0::2]
    expected = example.expectations()
    context = f"{example.id}\nstdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    assert len(statuses) == len(expected), (
        f"ran {len(statuses)} of {len(expected)} curls: {context}"
    )
    for number, (status, want, body) in enumerate(zip(statuses, expected, bodies, strict=False)):
        where = f"curl #{number + 1} of {context}"
        if want is None:
            assert 200 <= status < 300, f"status {status}: {where}"
        else:
            assert status == want, f"status {status}, documented {want}: {where}"
        page = json_or_none(body) if status == 200 else None
        if isinstance(page, dict) and isinstance(page.get("items"), list):
            assert page["items"], f"an empty page: {where}"


def json_or_none(body: str) -> object:
    """The body as JSON, or None for another format (CSV, NDJSON, iCalendar, headers with -i)."""
    try:
        return json.loads(body)
    except ValueError:
        return None
