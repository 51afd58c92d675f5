"""One live, seeded server for the fuzz tests, and one schemathesis run against it.

The run is a package fixture so that the schemathesis test and the documented-status test share
it: the second reads what the first observed instead of fuzzing again.
"""

import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app import writes
from app.auth import service as auth_service
from app.callers import Scope
from app.db import create_db_engine
from tests.conftest import ThrowawayDatabases, seeded_database
from tests.live import LiveServer

# Fixed, so a failure in CI is the same failure on a laptop (`make fuzz` with the same seed).
SEED = int(os.environ.get("FUZZ_SEED", "20250401"))
# Examples per operation in the examples and fuzzing phases; CI keeps it small (the coverage
# phase, which derives boundary and invalid values from the schema, is most of the run anyway).
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))
PHASES = os.environ.get("FUZZ_PHASES", "examples,coverage,fuzzing,stateful")
# One worker thread. With two, Hypothesis in both threads parses source files to describe
# filter lambdas, and CPython 3.11 keeps the AST builder's recursion counter per interpreter, not
# per thread: a thread switch inside ast.parse fails the other's with "SystemError: AST
# constructor recursion depth mismatch" (1 run in 3 on PostgreSQL, schemathesis 4.32.5 with
# hypothesis 6.170). One worker also replays a run exactly in the same order.
WORKERS = int(os.environ.get("FUZZ_WORKERS", "1"))
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)
# Webhook endpoints may point at this machine (the hand-written webhook requests need one).
SERVER_ENV = {"WEBHOOK_ALLOWED_SUBNETS": "127.0.0.0/8"}

# Generous: on a loaded machine a cold uvicorn import takes tens of seconds.
START_TIMEOUT = 120.0

Observed = dict[tuple[str, str], set[int]]


@dataclass
class FuzzServer:
    server: LiveServer
    database_url: str
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@dataclass
class FuzzRun:
    returncode: int
    output: str
    seconds: float
    # (METHOD, path template) -> the statuses schemathesis saw.
    observed: Observed

    def summary(self, limit: int = 12_000) -> str:
        """The failures and the summary schemathesis printed, without the progress lines."""
        start = self.output.find("FAILURES")
        text = self.output[start:] if start >= 0 else self.output
        if len(text) > limit:
            text = text[: limit // 2] + "\n[…]\n" + text[-limit // 2 :]
        return text


def add_keys(database_url: str) -> dict[str, str]:
    engine = create_db_engine(database_url)
    tokens = {}
    with writes.session_factory(engine).begin() as session:
        for name, scope in (
            ("editor", Scope.editor),
            ("admin", Scope.admin),
            ("hooks", Scope.webhooks),
        ):
            _, tokens[name] = auth_service.create_key(session, f"fuzz-{name}", [scope])
    engine.dispose()
    return tokens


@pytest.fixture(scope="package")
def fuzz_server(
    databases: ThrowawayDatabases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzServer]:
    url = seeded_database(databases)
    tokens = add_keys(url)
    log = tmp_path_factory.mktemp("fuzz") / "server.log"
    server = LiveServer(url, log, **SERVER_ENV).start(timeout=START_TIMEOUT)
    try:
        yield FuzzServer(server, url, tokens)
    finally:
        server.__exit__(None, None, None)


def observed_statuses(ndjson: Path) -> Observed:
    """Every (operation, status) pair in a schemathesis NDJSON event report."""
    observed: Observed = defaultdict(set)
    if not ndjson.exists():
        return observed
    with ndjson.open() as lines:
        for line in lines:
            event = json.loads(line)
            recorder = event.get("ScenarioFinished", {}).get("recorder")
            if not recorder:
                continue
            for case_id, interaction in recorder.get("interactions", {}).items():
                case = recorder["cases"][case_id]["value"]
                response = interaction.get("response")
                if response is not None:
                    observed[(case["method"].upper(), case["path"])].add(response["status_code"])
    return observed


@pytest.fixture(scope="package")
def fuzz_run(fuzz_server: FuzzServer, tmp_path_factory: pytest.TempPathFactory) -> FuzzRun:
    reports = tmp_path_factory.mktemp("schemathesis")
    ndjson = reports / "events.ndjson"
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{fuzz_server.base_url}/openapi.json",
        "--checks",
        CHECKS,
        "--phases",
        PHASES,
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        str(WORKERS),
        "--header",
        f"Authorization: Bearer {fuzz_server.tokens['editor']}",
        "--generation-database",
        "none",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(ndjson),
        "--report-dir",
        str(reports),
        "--request-timeout",
        "30",
        "--no-color",
    ]
    started = time.monotonic()
    # Run inside the report folder: schemathesis keeps a crash cache in its working directory.
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=1800, check=False, cwd=reports
    )
    return FuzzRun(
        done.returncode,
        done.stdout + done.stderr,
        time.monotonic() - started,
        observed_statuses(ndjson),
    )
