"""Schemathesis against our own OpenAPI document, on a live seeded server, writes included.

Every operation is exercised with the editor key, and the webhook endpoints and deliveries with a
webhooks key (the operations that need the admin scope answer with their documented 403). A
failure is a 5xx, a status the operation does not document, or a body, content type or header
that differs from the documentation. Reproduce and explore locally with `make fuzz`
(FUZZ_SECONDS, FUZZ_SEED; README, "Fuzzing").
"""

from tests.fuzz.conftest import FuzzRun, FuzzServer


def test_the_api_keeps_its_documented_contract(fuzz_server: FuzzServer, fuzz_run: FuzzRun) -> None:
    if fuzz_run.returncode != 0:
        raise AssertionError(
            f"schemathesis found problems ({fuzz_run.counts}); each failure below has a curl"
            " line to reproduce it.\n\n"
            f"{fuzz_run.summary()}\n\nLast server log lines:\n"
            + "\n".join(fuzz_server.server.log().splitlines()[-20:])
        )
    # Guard against a run that passed because it tested nothing (a schema that failed to load).
    assert len(fuzz_run.observed) >= 40, fuzz_run.summary()
