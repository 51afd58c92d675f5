import os

from sqlalchemy import Engine


def test_suite_runs_on_the_expected_database(engine: Engine) -> None:
    """CI sets EXPECT_DATABASE so a misconfigured run cannot silently test the wrong backend."""
    expected = os.environ.get("EXPECT_DATABASE")
    if expected:
        assert engine.dialect.name == expected
