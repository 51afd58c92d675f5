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
from tests.conftest import ThrowawayDatabases
from tests.live import LiveServer

# Fixed, so a failure in CI is the same failure on a laptop (`make fuzz` with the same seed).
SEED = int(os.environ.get("FUZZ_SEED", "20250401"))
# Examples per operation in the examples and fuzzing phases; CI keeps it small (the coverage
# phase, which derives boundary and invalid values from the schema, is most of the run anyway).
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))
# The whole run's budget in seconds (schemathesis --max-time): the fuzzing and stateful phases
# repeat with new cases until it is spent. CI's fits a minute or two; `make fuzz` gives 600.
MAX_TIME = int(os.environ.get("FUZZ_MAX_TIME", "90"))
PHASES = os.environ.get("FUZZ_PHASES", "examples,coverage,fuzzing,stateful")
# Where to write the run's one-line summary (`make fuzz` sets it).
SUMMARY = os.environ.get("FUZZ_SUMMARY")
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
# The live stream (GET /v1/changes/stream) is fuzzed like any operation, not excluded: it only
# ends when the client hangs up, so the servers here end every stream after a second
# (STREAM_MAX_SECONDS, which EventSource clients ride through by reconnecting). Schemathesis then
# reads a whole, bounded response and checks its status, content type and headers, and its
# refusals (422 before the stream starts) like any other operation's.
SERVER_ENV = {"WEBHOOK_ALLOWED_SUBNETS": "127.0.0.0/8", "STREAM_MAX_SECONDS": "1"}

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
    # One line: cases sent, operations with server errors, undocumented statuses, ...
    counts: str

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
    databases: ThrowawayDatabases, seeded_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzServer]:
    url = databases.copy_of(seeded_template)
    tokens = add_keys(url)
    log = tmp_path_factory.mktemp("fuzz") / "server.log"
    server = LiveServer(url, log, **SERVER_ENV).start(timeout=START_TIMEOUT)
    try:
        yield FuzzServer(server, url, tokens)
    finally:
        server.__exit__(None, None, None)


# What each check's failure means to a client, for the run's one-line summary.
CHECK_NAMES = {
    "not_a_server_error": "server errors",
    "status_code_conformance": "undocumented status codes",
    "response_schema_conformance": "schema violations",
    "content_type_conformance": "undocumented content types",
    "response_headers_conformance": "missing documented headers",
}


@dataclass
class Report:
    """What a schemathesis NDJSON event report says: the statuses seen per operation, the
    cases sent, and the failed checks as (check, METHOD path) pairs."""

    observed: Observed = field(default_factory=lambda: defaultdict(set))
    cases: int = 0
    failures: set[tuple[str, str]] = field(default_factory=set)

    def summary(self) -> str:
        counts = {
            label: len({where for check, where in self.failures if check == name})
            for name, label in CHECK_NAMES.items()
        }
        return (
            f"{self.cases} cases on {len(self.observed)} (method, path) pairs; operations with "
            + ", ".join(f"{count} {label}" for label, count in counts.items())
        )


def read_report(ndjson: Path) -> Report:
    report = Report()
    if not ndjson.exists():
        return report
    with ndjson.open() as lines:
        for line in lines:
            event = json.loads(line)
            recorder = event.get("ScenarioFinished", {}).get("recorder")
            if not recorder:
                continue
            cases = recorder.get("cases", {})
            report.cases += len(cases)
            for case_id, interaction in recorder.get("interactions", {}).items():
                case = cases[case_id]["value"]
                response = interaction.get("response")
                if response is not None:
                    where = (case["method"].upper(), case["path"])
                    report.observed[where].add(response["status_code"])
            for case_id, checks in recorder.get("checks", {}).items():
                case = cases[case_id]["value"]
                for check in checks:
                    if check["status"] == "failure":
                        where = f"{case['method'].upper()} {case['path']}"
                        report.failures.add((check["name"], where))
    return report


# Webhook endpoints and deliveries belong to a `webhooks` key: with the editor key they would
# only ever answer 403.
WEBHOOK_PATHS = "^/v1/webhook-(endpoints|deliveries)"


def keys_config(tokens: dict[str, str]) -> str:
    """schemathesis.toml: the editor key on every operation, the webhooks key on its own."""
    return (
        f'headers = {{ Authorization = "Bearer {tokens["editor"]}" }}\n\n'
        "[[operations]]\n"
        f'include-path-regex = "{WEBHOOK_PATHS}"\n'
        f'headers = {{ Authorization = "Bearer {tokens["hooks"]}" }}\n'
    )


@pytest.fixture(scope="package")
def fuzz_run(fuzz_server: FuzzServer, tmp_path_factory: pytest.TempPathFactory) -> FuzzRun:
    reports = tmp_path_factory.mktemp("schemathesis")
    ndjson = reports / "events.ndjson"
    config = reports / "schemathesis.toml"
    config.write_text(keys_config(fuzz_server.tokens))
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(config),
        "run",
        f"{fuzz_server.base_url}/openapi.json",
        # The document's `servers` entry is relative; name the server anyway, so a
        # PUBLIC_BASE_URL in the environment can never send the fuzzer elsewhere.
        "--url",
        fuzz_server.base_url,
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
        "--max-time",
        str(MAX_TIME),
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
        command,
        capture_output=True,
        text=True,
        timeout=MAX_TIME + 1800,
        check=False,
        cwd=reports,
    )
    seconds = time.monotonic() - started
    report = read_report(ndjson)
    counts = (
        f"seed {SEED}, budget {MAX_TIME} s, {EXAMPLES} examples per operation and phase,"
        f" {seconds:.0f} s, exit {done.returncode}: {report.summary()}"
    )
    if SUMMARY:
        # `make fuzz` prints it after the run, whichever test stopped first.
        Path(SUMMARY).write_text(f"schemathesis, {counts}\n")
    return FuzzRun(done.returncode, done.stdout + done.stderr, seconds, report.observed, counts)
