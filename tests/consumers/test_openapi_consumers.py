"""Our /openapi.json through the linters integrators run on it: Redocly CLI (`recommended`
ruleset) and Spectral (`spectral:oas`), pinned in tests/consumers/openapi/package.json and
installed by `make test` (npm ci). Both must report no error; each warning left is listed below
with the reason it stays, and any other warning fails the test.
"""

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

TOOLS = Path(__file__).resolve().parent / "openapi"
INSTALL = "run `make test`, or `npm ci` in tests/consumers/openapi"

# (rule, where) -> why the warning stays. The same text is in the README's OpenAPI section.
REDOCLY_ACCEPTED = {
    ("operation-4xx-response", "#/paths/~1healthz/get/responses"): "the liveness probe takes no"
    " input and no key, so no request to it is a client error",
    ("operation-4xx-response", "#/paths/~1readyz/get/responses"): "the readiness probe takes no"
    " input and no key, so no request to it is a client error",
}
SPECTRAL_ACCEPTED = {
    ("info-contact", "info"): "the project publishes no contact address, and the document does"
    " not invent one",
}


def tool(name: str) -> Path:
    path = TOOLS / "node_modules" / ".bin" / name
    if not path.exists():
        pytest.fail(f"{name} is not installed: {INSTALL}")
    return path


def run(command: list[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        # No usage reports or update checks: the linters run offline and quietly.
        "REDOCLY_TELEMETRY": "off",
        "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true",
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def spec_file(client: TestClient, tmp_path_factory: pytest.TempPathFactory) -> Path:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    path = tmp_path_factory.mktemp("openapi") / "openapi.json"
    path.write_bytes(response.content)
    return path


def test_redocly_recommended_finds_no_error(spec_file: Path) -> None:
    done = run(
        [tool("redocly"), "lint", spec_file, "--extends=recommended", "--format=json"],
        cwd=spec_file.parent,
    )
    report: dict[str, Any] = json.loads(done.stdout[done.stdout.index("{") :])
    problems = [
        (p["severity"], p["ruleId"], p["location"][0]["pointer"], p["message"])
        for p in report["problems"]
    ]
    errors = [p for p in problems if p[0] == "error"]
    assert not errors, "\n".join(map(str, errors))
    unexplained = [p for p in problems if (p[1], p[2]) not in REDOCLY_ACCEPTED]
    assert not unexplained, "fix these or justify them:\n" + "\n".join(map(str, unexplained))
    assert report["totals"]["errors"] == 0
    assert done.returncode == 0, done.stderr


def test_spectral_oas_finds_no_error(spec_file: Path) -> None:
    done = run(
        [
            tool("spectral"),
            "lint",
            spec_file,
            "--ruleset",
            TOOLS / ".spectral.yaml",
            "--format=json",
            "--quiet",
        ],
        cwd=spec_file.parent,
    )
    results: list[dict[str, Any]] = json.loads(done.stdout)
    # Severity 0 is an error, 1 a warning.
    problems = [
        (r["severity"], r["code"], "/".join(map(str, r["path"])), r["message"]) for r in results
    ]
    errors = [p for p in problems if p[0] == 0]
    assert not errors, "\n".join(map(str, errors))
    unexplained = [p for p in problems if (p[1], p[2]) not in SPECTRAL_ACCEPTED]
    assert not unexplained, "fix these or justify them:\n" + "\n".join(map(str, unexplained))
    assert done.returncode == 0, done.stderr
