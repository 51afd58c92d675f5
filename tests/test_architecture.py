"""The layering rules of the README's Conventions, checked on the source."""

import ast
from pathlib import Path

from app.main import create_app

APP = Path(__file__).resolve().parent.parent / "app"


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_routers_do_not_touch_sql() -> None:
    for path in APP.glob("*/router.py"):
        assert "sqlalchemy" not in imports(path), path


def test_services_know_nothing_of_http() -> None:
    for path in APP.glob("*/service.py"):
        assert not {"fastapi", "starlette"} & imports(path), path


def test_services_never_commit() -> None:
    for path in APP.glob("*/service.py"):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in {"commit", "rollback"}:
                raise AssertionError(f"{path}:{node.lineno} calls {node.attr}()")


def test_every_domain_package_has_its_three_files() -> None:
    for package in (p for p in APP.iterdir() if (p / "router.py").exists()):
        for name in ("router.py", "schemas.py", "service.py"):
            assert (package / name).exists(), f"{package.name}/{name}"


def test_every_write_needs_an_api_key() -> None:
    spec = create_app().openapi()
    operations = [
        (method, path, op) for path, ops in spec["paths"].items() for method, op in ops.items()
    ]
    writes = [(m, p, op) for m, p, op in operations if m in {"post", "patch", "put", "delete"}]
    assert len(writes) >= 15  # the routes are really enumerated
    for method, path, op in writes:
        assert {"ApiKey": []} in op.get("security", []), f"{method.upper()} {path}"
        assert "401" in op["responses"] and "403" in op["responses"], f"{method.upper()} {path}"
