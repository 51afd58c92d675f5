"""compose.yaml is valid Compose and says what the cluster needs.

There is no Docker engine on our machines, so the file is checked against the Compose
specification's JSON schema with check-jsonschema (pinned in the dev extra; its vendored copy of
the schema works offline), and, since the schema checks structure only (it accepts a depends_on
naming a service that does not exist), the references between services and the settings every
replica must have are checked here. nginx's configuration is checked by tests/cluster/.
"""

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.config import PROJECT_ROOT, Settings

COMPOSE = PROJECT_ROOT / "compose.yaml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def check_jsonschema() -> str:
    found = Path(sys.executable).parent / "check-jsonschema"
    path = str(found) if found.exists() else shutil.which("check-jsonschema")
    assert path, "check-jsonschema is missing: `make install` installs the dev extra"
    return path


def test_compose_yaml_matches_the_compose_specification(tmp_path: Path) -> None:
    result = subprocess.run(
        [check_jsonschema(), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The checker does reject a broken file (so the pass above means something).
    broken = tmp_path / "compose.yaml"
    text = COMPOSE.read_text()
    assert '    ports:\n      - "8080:80"\n' in text
    broken.write_text(text.replace('    ports:\n      - "8080:80"\n', "    ports: 8080\n"))
    refused = subprocess.run(
        [check_jsonschema(), "--builtin-schema", "vendor.compose-spec", str(broken)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode != 0


def test_services_refer_to_services_that_exist(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        depends = service.get("depends_on", [])
        for target in depends if isinstance(depends, list) else depends.keys():
            assert target in services, f"{name} depends on {target}, which is not a service"
        for network in service.get("networks", []):
            assert network in compose["networks"], f"{name} joins an undeclared {network}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (PROJECT_ROOT / source).exists(), f"{name} mounts a missing {source}"
            else:
                assert source in compose["volumes"], f"{name} mounts an undeclared {source}"


def test_the_shape_is_two_replicas_two_workers_one_proxy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    ours = {name for name, s in services.items() if s.get("build") == "."}
    assert ours == {"migrate", "api-a", "api-b", "worker-1", "worker-2"}  # one Dockerfile
    replicas = [n for n in ours if "uvicorn" in " ".join(services[n]["command"])]
    workers = [n for n in ours if services[n]["command"][-1] == "app.webhooks.worker"]
    assert sorted(replicas) == ["api-a", "api-b"]
    assert sorted(workers) == ["worker-1", "worker-2"]
    nginx = (PROJECT_ROOT / "deploy" / "nginx" / "nginx.conf").read_text()
    for replica in replicas:
        assert f"server {replica}:8000;" in nginx
        assert services[replica]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    assert set(services["proxy"]["depends_on"]) == set(replicas)


def test_every_replica_has_the_settings_a_cluster_needs(compose: dict[str, Any]) -> None:
    services = compose["services"]
    proxy_address = services["proxy"]["networks"]["backend"]["ipv4_address"]
    for name in ("api-a", "api-b"):
        env = services[name]["environment"]
        # Every variable is one the application reads (a typo would be silently ignored).
        known = {field.upper() for field in Settings.model_fields}
        known |= {"WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS"}  # read by uvicorn
        assert set(env) <= known, set(env) - known
        assert env["DATABASE_URL"].startswith("postgresql://")
        assert env["CURSOR_SECRET"].startswith("${CURSOR_SECRET:?")
        assert env["PUBLIC_BASE_URL"].startswith("${PUBLIC_BASE_URL:?")
        assert env["RATE_LIMIT_ENABLED"] == "true"
        assert env["RATE_LIMIT_STORE"] == "redis"
        assert env["REDIS_URL"].startswith("redis://redis:")
        assert env["WEBHOOK_WORKER"] == "off"  # delivery is the workers' job
        assert env["FORWARDED_ALLOW_IPS"] == proxy_address
    # Every replica and worker reads the same database with the same cursor secret.
    ours = [s for s in services.values() if s.get("build") == "."]
    assert len({s["environment"]["DATABASE_URL"] for s in ours}) == 1
    assert len({s["environment"]["CURSOR_SECRET"] for s in ours}) == 1
