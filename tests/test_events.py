from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from app.db import utcnow
from app.events.schemas import EventDetail
from app.models import Event
from tests import oracle
from tests.helpers import assert_problem

SHOOT_DOWN = "2025-04-01-algeria-shoots-down-malian-drone"
AES_RECALL = "2025-04-06-aes-recall-ambassadors-from-algiers"


class TestGetEvent:
    def test_detail_matches_the_documented_schema(self, client: TestClient) -> None:
        for event in oracle.events():
            response = client.get(f"/v1/events/{event['id']}")
            assert response.status_code == 200, event["id"]
            EventDetail.model_validate(response.json())

    def test_detail_fields(self, client: TestClient) -> None:
        body = client.get(f"/v1/events/{SHOOT_DOWN}").json()
        assert body["kind"] == "incident"
        assert body["category"] == "shoot_down"
        assert body["cameo_code"] == "190"
        assert body["goldstein"] == -10.0
        # The border area, not either country's commune: where the drone was hit is disputed.
        assert body["location"]["place"] == "tinzaouaten-tin-zaouatine-border"
        assert body["location"]["lat"] == 19.9486
        assert body["fact_ref"] == "EV-046"

    def test_links_in_both_directions(self, client: TestClient) -> None:
        recall = client.get(f"/v1/events/{AES_RECALL}").json()
        outgoing = {(link["type"], link["event"]["id"]) for link in recall["links"]["outgoing"]}
        seeded = next(e for e in oracle.events() if e["id"] == AES_RECALL)
        assert outgoing == {(link["type"], link["event"]) for link in seeded["links"]}
        # Whatever the recall links to lists the recall among its incoming links.
        for link_type, target in outgoing:
            incoming = client.get(f"/v1/events/{target}").json()["links"]["incoming"]
            assert (link_type, AES_RECALL) in {(i["type"], i["event"]["id"]) for i in incoming}

    def test_permalink_reproduces_the_cited_version(self, client: TestClient) -> None:
        body = client.get(f"/v1/events/{SHOOT_DOWN}").json()
        assert body["permalink"].startswith("http")
        assert body["permalink"] in body["citation"]
        assert "Reuters via Devdiscourse" in body["citation"]
        pinned = client.get(body["permalink"])
        assert pinned.status_code == 200
        assert pinned.json()["title"] == body["title"]
        assert pinned.json()["updated_at"] == body["updated_at"]

    def test_unknown_id_is_a_404_problem(self, client: TestClient) -> None:
        body = assert_problem(client.get("/v1/events/2099-01-01-nothing"), 404)
        assert "2099-01-01-nothing" in body["detail"]

    def test_malformed_id_is_a_422_problem(self, client: TestClient) -> None:
        assert_problem(client.get("/v1/events/Not_A_Slug"), 422, "id")

    def test_deleted_event_is_gone_and_leaves_the_timeline(
        self, client: TestClient, engine: Engine
    ) -> None:
        target = "2022-01-31-mali-expels-french-ambassador"
        with engine.begin() as conn:
            conn.execute(update(Event).where(Event.public_id == target).values(deleted_at=utcnow()))
        try:
            assert_problem(client.get(f"/v1/events/{target}"), 410)
            timeline = client.get("/v1/timeline", params={"from": "2022-01", "to": "2022-01"})
            assert target not in [i["id"] for i in timeline.json()["items"]]
        finally:
            with engine.begin() as conn:
                conn.execute(update(Event).where(Event.public_id == target).values(deleted_at=None))
        assert client.get(f"/v1/events/{target}").status_code == 200
