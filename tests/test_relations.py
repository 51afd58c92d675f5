"""Relations between two states over time, memberships over time, event threads, and the page."""

import datetime as dt
import re
from itertools import pairwise
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from app.db import utcnow
from app.models import Event, Membership, Organisation, State
from app.organisations.schemas import MembersAsOf
from app.relations import service
from app.relations.schemas import (
    MembershipHistory,
    RelationsHistory,
    RelationsRead,
    StateMemberships,
    Thread,
)
from tests import oracle
from tests.helpers import assert_problem

SHOOT_DOWN = "2025-04-01-algeria-shoots-down-malian-drone"
AES_RECALL = "2025-04-06-aes-recall-ambassadors-from-algiers"
ALGERIA_RECALL = "2025-04-07-algeria-recalls-ambassadors-from-mali-and-niger"
ALGERIA_CLOSES = "2025-04-07-algeria-closes-airspace-to-mali"
MALI_CLOSES = "2025-04-07-mali-closes-airspace-to-algeria"


def relations(client: TestClient, a: str, b: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"/v1/relations/{a}/{b}", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    RelationsRead.model_validate(body)
    return body


def history(client: TestClient, a: str, b: str) -> dict[str, Any]:
    response = client.get(f"/v1/relations/{a}/{b}/history")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    RelationsHistory.model_validate(body)
    return body


def direction(body: dict[str, Any], sender: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in body["representation"] if r["sending_state"] == sender)
    return found


def airspace_of(body: dict[str, Any], owner: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in body["airspace"] if r["airspace_of"] == owner)
    return found


class TestSeedChecks:
    """The checks the issue sets on the real seed."""

    def test_both_ambassadors_recalled_after_the_december_2023_crisis(
        self, client: TestClient
    ) -> None:
        body = relations(client, "MLI", "DZA", as_of="2023-12-25")
        for sender, event in (
            ("MLI", "2023-12-22-mali-recalls-ambassador-from-algiers"),
            ("DZA", "2023-12-22-algeria-recalls-ambassador-from-bamako"),
        ):
            status = direction(body, sender)
            assert status["status"] == "recalled"
            assert status["since"] == "2023-12-22"
            assert status["set_by"]["id"] == event
        assert body["relations"]["status"] == "downgraded"

    def test_recalled_both_ways_and_airspace_closed_both_ways_on_10_april_2025(
        self, client: TestClient
    ) -> None:
        body = relations(client, "MLI", "DZA", as_of="2025-04-10")
        assert direction(body, "MLI")["status"] == "recalled"
        assert direction(body, "MLI")["set_by"]["id"] == AES_RECALL
        assert direction(body, "DZA")["status"] == "recalled"
        assert direction(body, "DZA")["set_by"]["id"] == ALGERIA_RECALL
        assert airspace_of(body, "DZA")["status"] == "closed"
        assert airspace_of(body, "DZA")["set_by"]["id"] == ALGERIA_CLOSES
        assert airspace_of(body, "MLI")["status"] == "closed"
        assert airspace_of(body, "MLI")["set_by"]["id"] == MALI_CLOSES
        assert airspace_of(body, "MLI")["since"] == "2025-04-07"

    def test_mali_leaves_cemoc_on_6_april_2025(self, client: TestClient) -> None:
        before = relations(client, "MLI", "DZA", as_of="2025-04-05")
        assert [o["organisation"] for o in before["shared_organisations"]] == ["CEMOC"]
        after = relations(client, "MLI", "DZA", as_of="2025-04-06")
        assert after["shared_organisations"] == []
        (cemoc,) = after["formerly_shared_organisations"]
        assert cemoc["organisation"] == "CEMOC"
        assert [(s["state"], s["since"]) for s in cemoc["left"]] == [("MLI", "2025-04-06")]

        periods = {
            s["state"]: s["periods"]
            for s in client.get("/v1/organisations/CEMOC/members/history").json()["states"]
        }
        assert [(p["status"], p["start_on"], p["end_on"]) for p in periods["MLI"]] == [
            ("founding_member", "2010-04-01", "2025-04-06"),
            ("left", "2025-04-06", None),
        ]

    def test_the_returns_of_january_2024_end_the_december_recalls(self, client: TestClient) -> None:
        # Without the returns in seed/events/addendum.yaml the April 2025 recalls would follow the
        # December 2023 ones with no return between, and all of 2024 would be unknown.
        body = relations(client, "MLI", "DZA", as_of="2024-06-01")
        assert direction(body, "DZA")["status"] == "in_post"
        assert direction(body, "DZA")["since"] == "2024-01-05"
        assert direction(body, "MLI")["status"] == "in_post"
        assert direction(body, "MLI")["since"] == "2024-01-07"
        assert body["relations"]["status"] == "normal"
        between = relations(client, "MLI", "DZA", as_of="2024-01-06")
        assert direction(between, "DZA")["status"] == "in_post"
        assert direction(between, "MLI")["status"] == "recalled"
        assert between["relations"]["status"] == "downgraded"


class TestRelationsAsOf:
    def test_aes_wide_recall_counts_for_each_initiating_state(self, client: TestClient) -> None:
        for member in ("NER", "BFA"):
            body = relations(client, member, "DZA", as_of="2025-04-10")
            assert direction(body, member)["status"] == "recalled"
            assert direction(body, member)["set_by"]["id"] == AES_RECALL

    def test_the_pair_can_be_given_either_way_round(self, client: TestClient) -> None:
        ab = relations(client, "MLI", "DZA", as_of="2025-04-10")
        ba = relations(client, "DZA", "MLI", as_of="2025-04-10")
        assert ba["a"]["code"] == "DZA"
        assert [r["sending_state"] for r in ba["representation"]] == ["DZA", "MLI"]
        assert direction(ab, "MLI") == direction(ba, "MLI")
        assert ab["relations"] == ba["relations"]
        assert ab["tension"] == ba["tension"]

    def test_before_any_event_nothing_is_guessed(self, client: TestClient) -> None:
        body = relations(client, "MLI", "DZA", as_of="2019-01-01")
        for entry in body["representation"]:
            assert entry["status"] == "unknown"
            assert entry["since"] is None
            assert entry["set_by"] is None
        assert body["relations"]["status"] == "unknown"
        assert [a["status"] for a in body["airspace"]] == ["open", "open"]
        assert body["latest_events"] == []
        assert body["tension"]["goldstein_sum"] == 0

    def test_a_summons_shows_an_ambassador_in_post(self, client: TestClient) -> None:
        body = relations(client, "NER", "DZA", as_of="2024-04-05")
        assert direction(body, "DZA")["status"] == "in_post"
        assert (
            direction(body, "DZA")["set_by"]["id"] == "2024-04-03-niger-summons-algerian-ambassador"
        )
        assert body["relations"]["status"] == "normal"

    def test_expulsion_then_recall(self, client: TestClient) -> None:
        expelled = relations(client, "FRA", "NER", as_of="2023-09-01")
        assert direction(expelled, "FRA")["status"] == "expelled"
        recalled = relations(client, "FRA", "NER", as_of="2023-10-01")
        assert direction(recalled, "FRA")["status"] == "recalled"
        assert direction(recalled, "NER")["status"] == "unknown"
        assert recalled["relations"]["status"] == "downgraded"

    def test_severance(self, client: TestClient) -> None:
        body = relations(client, "MLI", "UKR", as_of="2024-09-01")
        assert body["relations"]["status"] == "severed"
        assert [r["status"] for r in body["representation"]] == ["severed", "severed"]
        assert body["relations"]["set_by"]["id"] == "2024-08-04-mali-severs-relations-with-ukraine"

    def test_latest_events_newest_first_up_to_as_of(self, client: TestClient) -> None:
        body = relations(client, "MLI", "DZA", as_of="2025-04-06", latest=3)
        latest = body["latest_events"]
        assert len(latest) == 3
        assert [e["date"] for e in latest] == sorted((e["date"] for e in latest), reverse=True)
        assert all(e["date"] <= "2025-04-06" for e in latest)
        assert relations(client, "MLI", "DZA", as_of="2025-04-06", latest=0)["latest_events"] == []

    @pytest.mark.parametrize(("as_of", "window"), [("2025-04-10", 90), ("2024-01-10", 30)])
    def test_tension_is_the_sum_of_goldstein_scores_over_the_window(
        self, client: TestClient, as_of: str, window: int
    ) -> None:
        body = relations(client, "MLI", "DZA", as_of=as_of, window_days=window)
        tension = body["tension"]
        first = dt.date.fromisoformat(as_of) - dt.timedelta(days=window - 1)
        assert tension["window_start"] == first.isoformat()
        assert tension["window_end"] == as_of
        # An independent count: the timeline's own filter for events of both states.
        items = client.get(
            "/v1/timeline",
            params={"between": "MLI,DZA", "from": first.isoformat(), "to": as_of, "limit": 500},
        ).json()["items"]
        scores = [e["goldstein"] for e in items if e["goldstein"] is not None]
        assert tension["events"] == len(scores)
        assert tension["unscored"] == len(items) - len(scores)
        assert tension["goldstein_sum"] == pytest.approx(sum(scores))
        assert tension["goldstein_sum"] < 0

    def test_as_of_defaults_to_today(self, client: TestClient) -> None:
        body = relations(client, "MLI", "DZA")
        assert body["as_of"] == dt.datetime.now(dt.UTC).date().isoformat()


class TestRelationsHistory:
    @pytest.mark.parametrize(
        ("a", "b"), [("MLI", "DZA"), ("NER", "DZA"), ("FRA", "NER"), ("MLI", "UKR"), ("BFA", "MLI")]
    )
    def test_periods_are_contiguous_step_functions(
        self, client: TestClient, a: str, b: str
    ) -> None:
        body = history(client, a, b)
        tracks = [
            *(r["periods"] for r in body["representation"]),
            *(r["periods"] for r in body["airspace"]),
            body["relations"],
        ]
        for periods in tracks:
            assert periods[0]["start_on"] == body["data_start"]
            assert periods[-1]["end_on"] is None
            assert periods[-1]["closed_by"] is None
            for earlier, later in pairwise(periods):
                assert earlier["end_on"] == later["start_on"]
                assert earlier["start_on"] < earlier["end_on"]
                assert earlier["closed_by"] == later["opened_by"]

    @pytest.mark.parametrize(("a", "b"), [("MLI", "DZA"), ("NER", "DZA"), ("FRA", "NER")])
    def test_history_agrees_with_as_of_on_every_change(
        self, client: TestClient, a: str, b: str
    ) -> None:
        body = history(client, a, b)
        for period in body["relations"]:
            day = period["start_on"]
            assert relations(client, a, b, as_of=day)["relations"]["status"] == period["status"]
        for track in body["representation"]:
            for period in track["periods"]:
                now = relations(client, a, b, as_of=period["start_on"])
                assert direction(now, track["sending_state"])["status"] == period["status"]

    def test_mali_algeria_representation(self, client: TestClient) -> None:
        body = history(client, "MLI", "DZA")
        steps = [
            (p["status"], p["start_on"], (p["opened_by"] or {}).get("id"))
            for p in direction(body, "MLI")["periods"]
        ]
        assert steps == [
            ("unknown", "2020-08-18", None),
            ("in_post", "2023-12-21", "2023-12-21-algeria-summons-malian-ambassador"),
            ("recalled", "2023-12-22", "2023-12-22-mali-recalls-ambassador-from-algiers"),
            ("in_post", "2024-01-07", "2024-01-07-malian-ambassador-returns-to-algiers"),
            ("recalled", "2025-04-06", AES_RECALL),
        ]
        assert [p["status"] for p in body["relations"]] == [
            "unknown",
            "normal",
            "downgraded",
            "normal",
            "downgraded",
        ]

    def test_lists_every_event_of_the_pair(self, client: TestClient) -> None:
        body = history(client, "MLI", "DZA")
        expected = oracle.in_order([e for e in oracle.events() if {"MLI", "DZA"} <= _states(e)])
        assert [e["id"] for e in body["events"]] == expected


def _states(event: dict[str, Any]) -> set[str]:
    return {p["state"] for p in event["participants"] if "state" in p}


class TestRelationsErrors:
    @pytest.mark.parametrize("path", ["/v1/relations/MLI/MLI", "/v1/relations/MLI/MLI/history"])
    def test_same_state_twice(self, client: TestClient, path: str) -> None:
        assert_problem(client.get(path), 422, "b")

    @pytest.mark.parametrize(
        ("path", "param"),
        [
            ("/v1/relations/Mali/DZA", "a"),
            ("/v1/relations/MLI/DZ", "b"),
            ("/v1/relations/MLI/DZA1/history", "b"),
        ],
    )
    def test_malformed_codes(self, client: TestClient, path: str, param: str) -> None:
        assert_problem(client.get(path), 422, param)

    @pytest.mark.parametrize("path", ["/v1/relations/XXX/DZA", "/v1/relations/MLI/XXX/history"])
    def test_unknown_states(self, client: TestClient, path: str) -> None:
        body = assert_problem(client.get(path), 404)
        assert "XXX" in body["detail"]

    def test_a_deleted_state_is_gone(self, client: TestClient, engine: Engine) -> None:
        with engine.begin() as conn:
            conn.execute(update(State).where(State.code == "UKR").values(deleted_at=utcnow()))
        try:
            assert_problem(client.get("/v1/relations/MLI/UKR"), 410)
            assert_problem(client.get("/v1/relations/UKR/MLI/history"), 410)
            assert_problem(client.get("/v1/states/UKR/memberships"), 410)
        finally:
            with engine.begin() as conn:
                conn.execute(update(State).where(State.code == "UKR").values(deleted_at=None))

    @pytest.mark.parametrize(
        ("params", "param"),
        [
            ({"as_of": "2025-02-30"}, "as_of"),
            ({"as_of": "10/04/2025"}, "as_of"),
            ({"window_days": "0"}, "window_days"),
            ({"window_days": "3651"}, "window_days"),
            ({"latest": "-1"}, "latest"),
        ],
    )
    def test_bad_parameters(self, client: TestClient, params: dict[str, str], param: str) -> None:
        assert_problem(client.get("/v1/relations/MLI/DZA", params=params), 422, param)


def _event(
    public_id: str,
    category: str,
    day: str,
    initiator: State,
    target: State,
) -> service.PairEvent:
    return service.PairEvent(
        public_id=public_id,
        date=dt.date.fromisoformat(day),
        date_precision="day",
        kind="diplomatic_action",
        category=category,
        title=public_id,
        cameo_code=None,
        goldstein=None,
        roles={initiator.id: frozenset({"initiator"}), target.id: frozenset({"target"})},
    )


S = State(id=1, code="SSS", name="Sender")
R = State(id=2, code="RRR", name="Receiver")
START = dt.date(2020, 1, 1)


def _steps(periods: list[service.Period]) -> list[tuple[str, str, str | None]]:
    return [
        (p.status, str(p.start_on), p.opened_by.public_id if p.opened_by else None) for p in periods
    ]


class TestRules:
    """The rules of the module docstring, on synthetic events."""

    def test_a_recall_after_a_recall_makes_the_period_between_unknown(self) -> None:
        events = [
            _event("first", "ambassador_recall", "2021-01-01", S, R),
            _event("second", "ambassador_recall", "2022-01-01", S, R),
        ]
        periods = service.representation_periods(events, S, R, START)
        assert _steps(periods) == [
            ("unknown", "2020-01-01", None),
            ("unknown", "2021-01-01", "first"),
            ("recalled", "2022-01-01", "second"),
        ]
        assert periods[1].closed_by is not None and periods[1].closed_by.public_id == "second"
        assert periods[1].note == (
            "Recalled on 2021-01-01; the ambassador recall of 2022-01-01 implies a return on a"
            " date the data lacks."
        )

    def test_a_return_between_two_recalls_keeps_both(self) -> None:
        events = [
            _event("recall", "ambassador_recall", "2021-01-01", S, R),
            _event("return", "ambassador_return", "2021-02-01", S, R),
            _event("again", "ambassador_recall", "2022-01-01", S, R),
        ]
        assert [p.status for p in service.representation_periods(events, S, R, START)] == [
            "unknown",
            "recalled",
            "in_post",
            "recalled",
        ]

    def test_direction_comes_from_the_roles(self) -> None:
        # R recalls its ambassador from S: S's ambassador in R is unaffected.
        events = [_event("recall", "ambassador_recall", "2021-01-01", R, S)]
        assert [p.status for p in service.representation_periods(events, S, R, START)] == [
            "unknown"
        ]
        assert [p.status for p in service.representation_periods(events, R, S, START)] == [
            "unknown",
            "recalled",
        ]

    def test_expulsion_is_by_the_receiving_state(self) -> None:
        events = [
            _event("expel", "ambassador_expulsion", "2021-01-01", R, S),
            _event("recall", "ambassador_recall", "2021-02-01", S, R),
        ]
        assert _steps(service.representation_periods(events, S, R, START)) == [
            ("unknown", "2020-01-01", None),
            ("expelled", "2021-01-01", "expel"),
            ("recalled", "2021-02-01", "recall"),
        ]

    def test_a_summons_during_a_recall_changes_nothing(self) -> None:
        events = [
            _event("summons", "ambassador_summons", "2021-01-01", R, S),
            _event("recall", "ambassador_recall", "2021-02-01", S, R),
            _event("summons-2", "ambassador_summons", "2021-03-01", R, S),
        ]
        assert [p.status for p in service.representation_periods(events, S, R, START)] == [
            "unknown",
            "in_post",
            "recalled",
        ]

    def test_severance_and_restoration(self) -> None:
        events = [
            _event("sever", "severance_of_relations", "2021-01-01", S, R),
            _event("return", "ambassador_return", "2022-01-01", S, R),
        ]
        sr = service.representation_periods(events, S, R, START)
        rs = service.representation_periods(events, R, S, START)
        assert [p.status for p in sr] == ["unknown", "severed", "in_post"]
        assert [p.status for p in rs] == ["unknown", "severed", "unknown"]
        assert [p.status for p in service.relations_periods(sr, rs)] == [
            "unknown",
            "severed",
            "unknown",
        ]

    def test_a_second_closure_makes_the_period_between_unknown(self) -> None:
        events = [
            _event("close", "airspace_closure", "2021-01-01", S, R),
            _event("close-again", "airspace_closure", "2022-01-01", S, R),
        ]
        assert [p.status for p in service.airspace_periods(events, S, R, START)] == [
            "open",
            "unknown",
            "closed",
        ]
        assert [p.status for p in service.airspace_periods(events, R, S, START)] == ["open"]

    def test_same_day_events_leave_no_empty_period(self) -> None:
        events = [
            _event("summons", "ambassador_summons", "2021-01-01", R, S),
            _event("recall", "ambassador_recall", "2021-01-01", S, R),
        ]
        periods = service.representation_periods(events, S, R, START)
        assert _steps(periods) == [
            ("unknown", "2020-01-01", None),
            ("recalled", "2021-01-01", "recall"),
        ]
        assert periods[0].closed_by is not None and periods[0].closed_by.public_id == "recall"

    @pytest.mark.parametrize(
        ("one", "other", "level"),
        [
            ("in_post", "in_post", "normal"),
            ("in_post", "recalled", "downgraded"),
            ("expelled", "unknown", "downgraded"),
            ("severed", "severed", "severed"),
            ("in_post", "unknown", "unknown"),
        ],
    )
    def test_levels_of_relations(self, one: str, other: str, level: str) -> None:
        def only(status: str) -> list[service.Period]:
            return [service.Period(status, START, "day", None)]

        assert service.relations_periods(only(one), only(other))[0].status == level


class TestMembershipHistory:
    def test_matches_the_documented_schema(self, client: TestClient) -> None:
        for org in ("AES", "ECOWAS", "AU", "G5-SAHEL", "CEMOC", "UN"):
            response = client.get(f"/v1/organisations/{org}/members/history")
            assert response.status_code == 200, response.text
            MembershipHistory.model_validate(response.json())

    def test_periods_never_overlap(self, client: TestClient) -> None:
        for org in ("AES", "ECOWAS", "AU", "G5-SAHEL", "CEMOC"):
            body = client.get(f"/v1/organisations/{org}/members/history").json()
            for state in body["states"]:
                periods = state["periods"]
                assert periods[-1]["end_on"] is None
                for earlier, later in pairwise(periods):
                    assert earlier["end_on"] == later["start_on"], (org, state["state"])
                    assert (
                        earlier["status"] != later["status"] or earlier["basis"] != later["basis"]
                    )

    def test_suspensions_and_exits(self, client: TestClient) -> None:
        body = client.get("/v1/organisations/ECOWAS/members/history").json()
        mali = next(s for s in body["states"] if s["state"] == "MLI")["periods"]
        assert [(p["status"], p["start_on"], p["certain"]) for p in mali] == [
            ("founding_member", "1975-05-28", True),
            ("suspended", "2020-08-01", False),
            ("suspended", "2021-05-30", False),
            ("left", "2025-01-29", True),
        ]
        assert mali[1]["start_precision"] == "month"
        assert [b["status"] for b in mali[2]["basis"]] == ["founding_member", "suspended"]

    def test_a_membership_whose_end_is_unknown_is_not_certain(self, client: TestClient) -> None:
        body = client.get("/v1/organisations/G5-SAHEL/members/history").json()
        chad = next(s for s in body["states"] if s["state"] == "TCD")["periods"]
        assert [(p["status"], p["certain"], p["end"]) for p in chad] == [
            ("founding_member", False, "unknown")
        ]

    @pytest.mark.parametrize("org", ["AES", "ECOWAS", "AU", "G5-SAHEL", "CEMOC"])
    def test_agrees_with_members_as_of(self, client: TestClient, org: str) -> None:
        body = client.get(f"/v1/organisations/{org}/members/history").json()
        days = sorted(
            {
                dt.date.fromisoformat(p["start_on"]) + dt.timedelta(days=shift)
                for s in body["states"]
                for p in s["periods"]
                for shift in (-1, 0, 1)
            }
        )
        for day in days:
            expected = {}
            for s in body["states"]:
                p = _period_on(s["periods"], day)
                certain_member = p is not None and p["basis"][0]["end"] != "unknown"
                if certain_member and p is not None and p["status"] != "left":
                    expected[s["state"]] = (
                        None
                        if p["status"] == "suspended" and not p["certain"]
                        else p["status"] == "suspended"
                    )
            snapshot = MembersAsOf.model_validate(
                client.get(f"/v1/organisations/{org}/members", params={"as_of": str(day)}).json()
            )
            assert {m.state: m.suspended for m in snapshot.members} == expected, (org, day)

    def test_errors(self, client: TestClient) -> None:
        assert_problem(client.get("/v1/organisations/NOPE/members/history"), 404)
        assert_problem(client.get("/v1/organisations/A%20ES/members/history"), 422, "code")

    def test_deleted_records_are_left_out(self, client: TestClient, engine: Engine) -> None:
        cemoc = select(Organisation.id).where(Organisation.code == "CEMOC").scalar_subquery()
        mali = select(State.id).where(State.code == "MLI").scalar_subquery()
        mine = (Membership.organisation_id == cemoc) & (Membership.state_id == mali)
        with engine.begin() as conn:
            conn.execute(update(Membership).where(mine).values(deleted_at=utcnow()))
        try:
            body = client.get("/v1/organisations/CEMOC/members/history").json()
            assert "MLI" not in [s["state"] for s in body["states"]]
            shared = relations(client, "MLI", "DZA", as_of="2025-01-01")["shared_organisations"]
            assert shared == []
        finally:
            with engine.begin() as conn:
                conn.execute(update(Membership).where(mine).values(deleted_at=None))
        with engine.begin() as conn:
            conn.execute(
                update(Organisation).where(Organisation.code == "UN").values(deleted_at=utcnow())
            )
        try:
            assert_problem(client.get("/v1/organisations/UN/members/history"), 410)
        finally:
            with engine.begin() as conn:
                conn.execute(
                    update(Organisation).where(Organisation.code == "UN").values(deleted_at=None)
                )

    def test_existing_routes_still_answer(self, client: TestClient) -> None:
        assert client.get("/v1/organisations/AES/members").status_code == 200
        assert client.get("/v1/organisations/AES").status_code == 200
        assert client.get("/v1/states/MLI").status_code == 200


def _period_on(periods: list[dict[str, Any]], day: dt.date) -> dict[str, Any] | None:
    for p in periods:
        start = dt.date.fromisoformat(p["start_on"])
        end = dt.date.fromisoformat(p["end_on"]) if p["end_on"] else None
        if start <= day and (end is None or day < end):
            return p
    return None


class TestStateMemberships:
    def get(self, client: TestClient, code: str, day: str) -> dict[str, dict[str, Any]]:
        response = client.get(f"/v1/states/{code}/memberships", params={"as_of": day})
        assert response.status_code == 200, response.text
        body = StateMemberships.model_validate(response.json())
        assert str(body.as_of) == day
        return {m["organisation"]: m for m in response.json()["memberships"]}

    def test_cemoc_ends_on_6_april_2025(self, client: TestClient) -> None:
        before = self.get(client, "MLI", "2025-04-05")
        assert before["CEMOC"]["status"] == "founding_member"
        assert before["CEMOC"]["until"] == "2025-04-06"
        after = self.get(client, "MLI", "2025-04-06")
        assert after["CEMOC"]["status"] == "left"
        assert after["CEMOC"]["since"] == "2025-04-06"

    def test_names_as_of_and_organisations_not_yet_joined(self, client: TestClient) -> None:
        early = self.get(client, "MLI", "2024-01-01")
        assert early["AES"]["organisation_name"] == "Alliance of Sahel States"
        assert self.get(client, "MLI", "2024-07-06")["AES"]["organisation_name"] == (
            "Confederation of Sahel States"
        )
        assert "AES" not in self.get(client, "MLI", "2023-09-15")

    def test_suspension_with_unknown_end(self, client: TestClient) -> None:
        au = self.get(client, "MLI", "2022-01-01")["AU"]
        assert (au["status"], au["certain"], au["since"]) == ("suspended", False, "2021-06-01")

    def test_a_state_with_no_memberships(self, client: TestClient) -> None:
        assert self.get(client, "UKR", "2025-01-01") == {}

    def test_errors(self, client: TestClient) -> None:
        assert_problem(client.get("/v1/states/XXX/memberships"), 404)
        assert_problem(client.get("/v1/states/Mali/memberships"), 422, "code")
        assert_problem(
            client.get("/v1/states/MLI/memberships", params={"as_of": "2025-13-01"}), 422, "as_of"
        )


class TestThread:
    def thread(self, client: TestClient, event_id: str) -> dict[str, Any]:
        response = client.get(f"/v1/events/{event_id}/thread")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        Thread.model_validate(body)
        return body

    def test_the_shoot_down_thread_covers_the_april_2025_crisis(self, client: TestClient) -> None:
        body = self.thread(client, SHOOT_DOWN)
        ids = [item["id"] for item in body["items"]]
        for expected in (
            SHOOT_DOWN,
            "2025-04-06-mali-blames-algeria-for-drone",
            "2025-04-06-mali-summons-algerian-ambassador",
            AES_RECALL,
            ALGERIA_RECALL,
            ALGERIA_CLOSES,
            MALI_CLOSES,
            "2025-04-07-mali-writes-to-unsc",
            "2025-04-09-algeria-writes-to-unsc",
        ):
            assert expected in ids
        positions = {item["id"]: item["thread"] for item in body["items"]}
        assert positions[SHOOT_DOWN] == {"position": "self", "depth": 0}
        assert positions[AES_RECALL] == {"position": "downstream", "depth": 1}
        assert positions["2024-08-27-alleged-malian-drone-incursion"]["position"] == "upstream"

    def test_date_order_and_answers_after_what_they_answer(self, client: TestClient) -> None:
        body = self.thread(client, SHOOT_DOWN)
        ids = [item["id"] for item in body["items"]]
        dates = [item["date"] for item in body["items"]]
        assert dates == sorted(dates)
        for link in body["links"]:
            if dates[ids.index(link["from"])] == dates[ids.index(link["to"])]:
                assert ids.index(link["to"]) < ids.index(link["from"]), link

    def test_links_are_the_seeded_links_between_thread_events(self, client: TestClient) -> None:
        body = self.thread(client, SHOOT_DOWN)
        ids = {item["id"] for item in body["items"]}
        seeded = {
            (e["id"], link["type"], link["event"])
            for e in oracle.events()
            for link in e.get("links") or []
            if e["id"] in ids and link["event"] in ids
        }
        assert {(x["from"], x["type"], x["to"]) for x in body["links"]} == seeded

    def test_upstream_from_a_response(self, client: TestClient) -> None:
        body = self.thread(client, MALI_CLOSES)
        positions = {item["id"]: item["thread"]["position"] for item in body["items"]}
        assert positions[ALGERIA_CLOSES] == "upstream"
        assert positions[SHOOT_DOWN] == "upstream"
        assert "2025-04-09-algeria-writes-to-unsc" not in positions

    def test_an_event_without_links_is_its_own_thread(self, client: TestClient) -> None:
        lonely = next(
            e["id"]
            for e in oracle.events()
            if not e.get("links")
            and not any(
                link["event"] == e["id"]
                for other in oracle.events()
                for link in other.get("links") or []
            )
        )
        body = self.thread(client, lonely)
        assert [item["id"] for item in body["items"]] == [lonely]
        assert body["links"] == []

    def test_errors(self, client: TestClient, engine: Engine) -> None:
        assert_problem(client.get("/v1/events/2099-01-01-nothing/thread"), 404)
        assert_problem(client.get("/v1/events/Not_A_Slug/thread"), 422, "id")
        with engine.begin() as conn:
            conn.execute(
                update(Event).where(Event.public_id == MALI_CLOSES).values(deleted_at=utcnow())
            )
        try:
            assert_problem(client.get(f"/v1/events/{MALI_CLOSES}/thread"), 410)
            ids = [i["id"] for i in self.thread(client, SHOOT_DOWN)["items"]]
            assert MALI_CLOSES not in ids
        finally:
            with engine.begin() as conn:
                conn.execute(
                    update(Event).where(Event.public_id == MALI_CLOSES).values(deleted_at=None)
                )


class TestPage:
    def test_the_page_is_served_from_our_own_process(self, client: TestClient) -> None:
        response = client.get("/")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "connect-src 'self'" in policy
        assert '<script src="/static/app.js"' in response.text
        assert '<link rel="stylesheet" href="/static/style.css">' in response.text

    @pytest.mark.parametrize(
        ("name", "kind"), [("app.js", "text/javascript"), ("style.css", "text/css")]
    )
    def test_assets(self, client: TestClient, name: str, kind: str) -> None:
        response = client.get(f"/static/{name}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(kind)

    def test_no_external_resources(self, client: TestClient) -> None:
        # Sources are links the reader may follow; nothing is loaded from another origin (the
        # oEmbed discovery link is absolute, as the specification asks, and names this server).
        for path in (
            "/",
            "/static/app.js",
            "/static/common.js",
            "/static/timeline.js",
            "/static/style.css",
        ):
            text = client.get(path).text
            assert not re.search(
                r"(src|href|url)\s*[=(]\s*[\"']?(https?:)?//(?!testserver/)", text
            ), path
            assert "@import" not in text
            assert "fonts." not in text

    @pytest.mark.parametrize(
        "path", ["/static/index.html", "/static/nope.js", "/static/..%2Fservice.py", "/nope"]
    )
    def test_unknown_paths_are_problem_404s(self, client: TestClient, path: str) -> None:
        assert_problem(client.get(path), 404)

    def test_the_rules_are_in_the_openapi_description(self, client: TestClient) -> None:
        spec = client.get("/openapi.json").json()
        description = spec["paths"]["/v1/relations/{a}/{b}"]["get"]["description"]
        for text in ("ambassador_recall", "ambassador_return", "airspace_closure", "goldstein_sum"):
            assert text in description
        assert "/" not in spec["paths"]
