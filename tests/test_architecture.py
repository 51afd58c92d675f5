"""The layering rules of docs/architecture.md's Conventions, checked on the source. The import
layers themselves are import-linter's contracts in pyproject.toml (`make lint`)."""

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from app.db import create_session_factory
from app.main import create_app
from app.revisions import service as revision_service

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


def test_no_listener_is_registered_on_the_session_class() -> None:
    """A commit's side effects run from the write step installed on a factory (app/writes.py),
    never from listeners that importing a module adds to every session of the process."""
    create_app()  # imports every module of the app
    plain = create_session_factory(create_engine("sqlite://"))()
    for name in ("after_flush", "before_commit", "after_commit", "after_rollback"):
        assert len(getattr(plain.dispatch, name)) == 0, name


def test_a_session_without_the_write_step_cannot_record_a_revision() -> None:
    engine = create_engine("sqlite://")
    with create_session_factory(engine)() as session, pytest.raises(RuntimeError, match="writes"):
        revision_service.record(
            session,
            resource="state",
            key="XXX",
            version=1,
            operation="create",
            actor="test",
            before=None,
            after={"code": "XXX"},
        )


def test_no_function_imports_a_module_of_the_app() -> None:
    """Imports of the app's own modules sit at the top of a module, where import-linter's
    contracts (pyproject.toml) see them: an import inside a function hides a cycle."""
    hidden = []
    for path in sorted(APP.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for inner in ast.walk(node):
                    names = (
                        [inner.module or ""]
                        if isinstance(inner, ast.ImportFrom)
                        else [alias.name for alias in inner.names]
                        if isinstance(inner, ast.Import)
                        else []
                    )
                    hidden += [
                        f"{path}:{inner.lineno} {name}"
                        for name in names
                        if name == "app" or name.startswith("app.")
                    ]
    assert hidden == []


# A measured duration or rate: "0.4 ms", "3.2 s", "580 req/s", "31 MB/s", "1.10x".
MEASURED = re.compile(
    r"\b\d+(?:[.,]\d+)*(?:\s?(?:-|to)\s?\d+(?:[.,]\d+)*)?"
    r"(?:\s?(?:ns|µs|us|ms|req/s|rows/s|[KMG]i?B/s)|\s(?:s|seconds?|milliseconds?))\b"
    r"|\b\d+(?:\.\d+)?\s?[x×](?![\w])"
)
# Settings and documented limits written in units, not measurements of speed.
NOT_MEASURED = {
    # app/config.py: the retry schedule's default, in words.
    "then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h,",
    # app/webhooks/wake.py: issue 7's target, a requirement rather than a measurement.
    "Issue 7 asks for commit -> receipt within 50 ms",
}


def _comments_and_docstrings(path: Path) -> Iterator[tuple[int, str]]:
    source = path.read_text("utf-8")
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
    for node in ast.walk(ast.parse(source)):
        if isinstance(
            node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
        ) and (docstring := ast.get_docstring(node, clean=False)):
            first = node.body[0].lineno
            for offset, line in enumerate(docstring.splitlines()):
                yield first + offset, line


def test_no_comment_cites_a_benchmark_figure() -> None:
    """Comments and docstrings say why; the figures that show it live in bench/README.md, where
    they can be dated and measured again, not in code that outlives the measurement."""
    cited = [
        f"{path.relative_to(APP.parent)}:{line}: {text.strip()}"
        for path in sorted(APP.rglob("*.py"))
        for line, text in _comments_and_docstrings(path)
        if MEASURED.search(text) and not any(allowed in text for allowed in NOT_MEASURED)
    ]
    assert cited == []


@pytest.mark.parametrize(
    ("text", "measured"),
    [
        ("each trip costs about 0.12 ms here", True),
        ("served 580 req/s with 1 thread", True),
        ("a CSV export at 31 MB/s", True),
        ("PostgreSQL served 1.10x the req/s", True),
        ("about 9 s and 6 s for 1M events", True),
        ("65-85 µs of CPU a call", True),
        ("the 5xx problems", False),
        ("413s, 429s and 304s", False),
        ("(data[end] & 0xC0) == 0x80", False),
        ("a timeline page, bench/README.md", False),
    ],
)
def test_the_figure_pattern(text: str, measured: bool) -> None:
    assert bool(MEASURED.search(text)) is measured
