"""The curated data, checked as the API serves it from the seeded database (SQLite or PostgreSQL).

`app/seed_checks.py` holds the editorial checks; `python -m app.seed` runs them before writing,
and the first test here runs them again on what each database actually serves. The rest pin the
audit's fixes (issue 26) through the API, and show that each check fails on the defect it is for.
"""

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.seed import SeedError, load
from app.seed_checks import check_event, check_events
from tests import oracle
from tests.test_seed import copy_seed, counts, edit_event


def detail(client: TestClient, event_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/events/{event_id}")
    assert response.status_code == 200, event_id
    body: dict[str, Any] = response.json()
    return body


def claims(event: dict[str, Any], topic: str) -> list[dict[str, Any]]:
    return [c for c in event["claims"] if c["topic"] == topic]


def claimant(claim: dict[str, Any]) -> str:
    who = claim["claimant"]
    return str(who.get("state") or who.get("organisation") or who.get("group"))


def roles(event: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (str(p.get("state") or p.get("organisation") or p.get("group")), p["role"])
        for p in event["participants"]
    }


def test_every_served_event_passes_the_data_checks(client: TestClient) -> None:
    served = [detail(client, e["id"]) for e in oracle.events()]
    links = {
        e["id"]: [
            {"type": link["type"], "event": link["event"]["id"]} for link in e["links"]["outgoing"]
        ]
        for e in served
    }
    notes = {e["id"]: e["sources_note"] for e in oracle.events() if e.get("sources_note")}
    assert check_events(served, links, notes) == []


# --- each check fails on the defect it is for ------------------------------------------------

DAY = dt.date(2025, 1, 29)


def event(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "2025-01-29-example",
        "date": DAY.isoformat(),
        "category": "statement",
        "title": "An example",
        "summary": "A summary.",
        "participants": [{"state": "MLI", "role": "initiator"}],
        "sources": [
            {"url": "https://example.org/a", "publisher": "X", "published_on": "2025-01-29"}
        ],
        "claims": [],
    }
    return base | changes


def problems(e: dict[str, Any], links: list[dict[str, str]] | None = None, **kw: Any) -> set[str]:
    dates = {
        "2025-01-29-example": DAY,
        "2025-01-23-earlier": dt.date(2025, 1, 23),
        "2025-02-01-later": dt.date(2025, 2, 1),
    }
    return {p.check for p in check_event(e, links or [], dates, **kw)}


def test_a_clean_event_passes() -> None:
    assert problems(event()) == set()


def test_claims_need_a_claimant_and_a_source() -> None:
    bad = event(claims=[{"topic": "t", "claimant": {}, "statement": "s", "sources": []}])
    assert problems(bad) == {"claim-claimant", "claim-source"}


def test_a_source_published_on_or_after_the_date_or_a_note() -> None:
    # The audit's case: an exit that took effect on 29 January cited only December articles.
    december = event(
        sources=[{"url": "https://example.org/a", "publisher": "X", "published_on": "2024-12-16"}]
    )
    undated = event(
        sources=[{"url": "https://example.org/a", "publisher": "X", "published_on": None}]
    )
    assert problems(december) == {"dated-source"}
    assert problems(undated) == {"dated-source"}
    assert (
        problems(undated, sources_note="Only undated copies of the wire report were found.")
        == set()
    )
    assert problems(undated, sources_note="   ") == {"dated-source"}


@pytest.mark.parametrize(
    "url",
    [
        "https://lemagazinedumali.com/blog/page/21",
        "https://elbeyan.info/Actualit%C3%A9s?page=527",
        "https://actuniger.com/international.html?lang=x&start=9",
        "https://example.org/tag/mali/",
        "https://example.org/category/afrique/",
    ],
)
def test_listing_pages_are_refused(url: str) -> None:
    assert problems(
        event(sources=[{"url": url, "publisher": "X", "published_on": "2025-01-29"}])
    ) == {"listing-page"}


def test_an_article_id_under_archives_is_not_a_listing() -> None:
    source = {
        "url": "https://article19.ma/accueil/archives/183578",
        "publisher": "X",
        "published_on": "2025-01-29",
    }
    assert problems(event(sources=[source])) == set()


def test_links_point_from_the_later_event_to_the_earlier() -> None:
    assert problems(event(), [{"type": "related_to", "event": "2025-02-01-later"}]) == {
        "link-direction"
    }
    assert problems(event(), [{"type": "related_to", "event": "2025-01-23-earlier"}]) == set()


@pytest.mark.parametrize("field", ["title", "summary"])
def test_internal_reference_numbers_stay_out_of_text(field: str) -> None:
    assert problems(event(**{field: "Mali summoned the ambassador the next day (EV-027)."})) == {
        "internal-reference"
    }
    assert problems(
        event(
            claims=[
                {
                    "topic": "t",
                    "claimant": {"state": "MLI"},
                    "statement": "See AD-003.",
                    "sources": [{"url": "https://example.org/b"}],
                }
            ]
        )
    ) == {"internal-reference"}


def test_an_alleged_act_has_no_plain_initiator() -> None:
    alleged = event(
        category="airspace_violation_claim",
        participants=[{"state": "MLI", "role": "initiator"}, {"state": "DZA", "role": "target"}],
    )
    assert problems(alleged) == {"alleged-initiator"}
    claim = {
        "topic": "t",
        "claimant": {"state": "DZA"},
        "statement": "s",
        "sources": [{"url": "https://x.org/c"}],
    }
    fixed = alleged | {
        "participants": [
            {"state": "MLI", "role": "alleged_initiator"},
            {"state": "DZA", "role": "target"},
        ],
        "claims": [claim],
    }
    assert problems(fixed) == set()
    assert problems(fixed | {"claims": []}) == {"alleged-initiator"}


def test_the_loader_refuses_data_that_fails_a_check(session: Session, tmp_path: Path) -> None:
    root = copy_seed(tmp_path)
    event_id = "2025-01-23-aes-announces-common-passport"
    record = next(e for e in oracle.events() if e["id"] == event_id)
    edit_event(
        root,
        "addendum.yaml",
        event_id,
        links=[
            *record.get("links", []),
            {"type": "related_to", "event": "2025-01-29-aes-exit-from-ecowas-takes-effect"},
        ],
    )
    before = counts(session)
    with pytest.raises(SeedError, match="link-direction"):
        load(session, root, progress=lambda _: None)
    session.rollback()
    assert counts(session) == before


def test_sources_note_is_seed_metadata_not_part_of_the_event(client: TestClient) -> None:
    noted = [e["id"] for e in oracle.events() if e.get("sources_note")]
    assert noted
    assert "sources_note" not in detail(client, noted[0])


# --- the audit's defects, as the API shows them ------------------------------------------------


def test_niger_rejected_the_mediation_conclusions_on_2_or_3_october(client: TestClient) -> None:
    e = detail(client, "2023-10-02-algeria-says-niger-accepted-mediation")
    assert "Later in October" not in e["summary"]
    rejection = [
        c for c in claims(e, "niger-acceptance-of-algerian-mediation") if claimant(c) == "NER"
    ]
    assert any("rejects the conclusions" in c["statement"] for c in rejection)
    assert {claimant(c) for c in claims(e, "niger-rejection-date")} == {
        "Seneweb",
        "Barlamane via Maghress",
    }


def test_the_2_april_version_of_niger_summons_is_a_claim(client: TestClient) -> None:
    e = detail(client, "2024-04-03-niger-summons-algerian-ambassador")
    assert e["date"] == "2024-04-03"
    dated = {claimant(c): c["statement"] for c in claims(e, "summons-date")}
    assert "2 April" in dated["The Maghreb Times"]


def test_the_protest_turnout_is_stored_as_claims(client: TestClient) -> None:
    e = detail(client, "2025-04-08-protest-at-algerian-embassy-bamako")
    turnout = claims(e, "turnout")
    assert len({claimant(c) for c in turnout}) >= 4
    assert {c["value"] for c in turnout if c["value"] is not None} == {100, 1000}
    assert all(c["sources"] for c in turnout)


@pytest.mark.parametrize(
    "event_id",
    [
        "2024-08-27-alleged-malian-drone-incursion",
        "2024-12-29-second-alleged-malian-drone-incursion",
    ],
)
def test_alleged_incursions_show_mali_as_alleged(client: TestClient, event_id: str) -> None:
    e = detail(client, event_id)
    assert ("MLI", "alleged_initiator") in roles(e)
    assert ("MLI", "initiator") not in roles(e)
    assert {claimant(c) for c in claims(e, "drone-incursion")} == {"DZA"}
    as_actor = client.get(
        "/v1/timeline", params={"actor": "MLI", "category": "airspace_violation_claim"}
    )
    assert as_actor.json()["items"] == []
    involving = client.get(
        "/v1/timeline", params={"state": "MLI", "category": "airspace_violation_claim"}
    )
    assert event_id in {i["id"] for i in involving.json()["items"]}


def test_the_shoot_down_stores_every_account_and_a_neutral_place(client: TestClient) -> None:
    e = detail(client, "2025-04-01-algeria-shoots-down-malian-drone")
    assert "Azawad Liberation Front (FLA)" in {claimant(c) for c in claims(e, "who-downed-drone")}
    assert ("Azawad Liberation Front (FLA)", "alleged_initiator") in roles(e)
    assert {claimant(c) for c in claims(e, "shoot-down-time")} == {"DZA", "MLI"}
    western = [c for c in claims(e, "who-downed-drone") if "Western intelligence" in c["statement"]]
    assert [claimant(c) for c in western] == [
        "Sahel-Intelligence (citing unnamed Western intelligence services)"
    ]
    assert all(c["sources"] for c in western)
    assert e["location"]["country"] is None
    place = client.get(f"/v1/places/{e['location']['place']}").json()
    assert place["state"] is None
    assert {"Tinzaouaten", "Tin Zaouatine"} <= set(place["aliases"])
    found = client.get("/v1/timeline", params={"q": "tinzawatene drone"}).json()["items"]
    assert e["id"] in {i["id"] for i in found}


def test_the_21_december_version_of_malis_summons_is_a_claim(client: TestClient) -> None:
    e = detail(client, "2023-12-20-mali-summons-algerian-ambassador")
    assert e["date"] == "2023-12-20"
    dated = {claimant(c): c["statement"] for c in claims(e, "mali-summons-date")}
    assert "21 December" in dated["Ivoire TV5"]
    assert all("20 December" in dated[g] for g in ("Sputnik Afrique", "Reflet Info"))


def test_cemoc_withdrawal_affects_the_remaining_members(client: TestClient) -> None:
    e = detail(client, "2025-04-06-mali-withdraws-from-cemoc")
    assert {("DZA", "affected"), ("MRT", "affected"), ("NER", "affected")} <= roles(e)


def test_russia_and_jnim_take_part_as_the_sources_say(client: TestClient) -> None:
    kidal = detail(client, "2023-11-14-mali-takes-kidal")
    assert ("RUS", "initiator") in roles(kidal)
    battle = detail(client, "2024-07-25-battle-of-tinzaouaten")
    assert {("RUS", "target"), ("JNIM", "alleged_initiator")} <= roles(battle)
    assert {claimant(c) for c in claims(battle, "jnim-involvement")} == {"JNIM", "CSP-DPA"}


def test_burkina_faso_is_a_target_of_algerias_recall(client: TestClient) -> None:
    e = detail(client, "2025-04-07-algeria-recalls-ambassadors-from-mali-and-niger")
    assert {("MLI", "target"), ("NER", "target"), ("BFA", "target")} <= roles(e)


def test_the_oif_is_an_organisation(client: TestClient) -> None:
    oif = client.get("/v1/organisations/OIF").json()
    assert (oif["founded_on"], oif["headquarters"]) == ("1970-03-20", "Paris")
    for event_id in ("2025-03-17-niger-burkina-leave-oif", "2025-03-18-mali-leaves-oif"):
        assert ("OIF", "target") in roles(detail(client, event_id))


def test_g5_sahel_was_founded_at_the_nouakchott_summit(client: TestClient) -> None:
    g5 = client.get("/v1/organisations/G5-SAHEL").json()
    assert (g5["founded_on"], g5["founded_precision"]) == ("2014-02-16", "day")
    assert "19 December 2014" in g5["description"]


def test_the_au_suspension_of_niger_has_both_dates(client: TestClient) -> None:
    suspended = [
        m
        for m in client.get("/v1/states/NER").json()["memberships"]
        if m["organisation"] == "AU" and m["status"] == "suspended"
    ]
    assert [m["start_on"] for m in suspended] == ["2023-08-14"]
    assert "2023-08-22" in suspended[0]["note"]
    e = detail(client, "2023-08-14-au-suspends-niger")
    assert {claimant(c) for c in claims(e, "suspension-date")} == {"TASS", "Reuters"}


def test_the_ecowas_exit_cites_a_source_from_the_day(client: TestClient) -> None:
    e = detail(client, "2025-01-29-aes-exit-from-ecowas-takes-effect")
    assert any(s["published_on"] and s["published_on"] >= "2025-01-29" for s in e["sources"])


@pytest.mark.parametrize(
    ("event_id", "topic"),
    [
        ("2023-07-26-niger-coup", "takeover-announcement-time"),
        ("2022-05-02-mali-ends-defence-agreements-with-france", "announcement-date"),
        ("2023-09-16-aes-founded", "charter-signature-date"),
        ("2024-01-05-algerian-ambassador-returns-to-bamako", "return-date"),
        ("2025-01-23-aes-announces-common-passport", "announcement-date"),
    ],
)
def test_disputes_are_claims_not_only_summary_text(
    client: TestClient, event_id: str, topic: str
) -> None:
    found = claims(detail(client, event_id), topic)
    assert len({claimant(c) for c in found}) >= 2
    assert all(c["sources"] for c in found)


def test_the_passport_link_points_back_from_the_exit(client: TestClient) -> None:
    passport = detail(client, "2025-01-23-aes-announces-common-passport")
    assert passport["links"]["outgoing"] == []
    exit_ = detail(client, "2025-01-29-aes-exit-from-ecowas-takes-effect")
    assert ("related_to", passport["id"]) in {
        (link["type"], link["event"]["id"]) for link in exit_["links"]["outgoing"]
    }


def test_no_internal_reference_in_the_dicko_summary(client: TestClient) -> None:
    assert "EV-027" not in detail(client, "2023-12-19-tebboune-receives-imam-dicko")["summary"]
