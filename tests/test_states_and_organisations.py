import pytest
from fastapi.testclient import TestClient

from app.organisations.schemas import MembersAsOf, OrganisationList, OrganisationRead
from app.places.schemas import PlaceList, PlaceRead
from app.states.schemas import StateDetail, StateList
from tests.helpers import assert_problem


def members(client: TestClient, org: str, day: str) -> dict[str, bool | None]:
    response = client.get(f"/v1/organisations/{org}/members", params={"as_of": day})
    assert response.status_code == 200, response.text
    body = MembersAsOf.model_validate(response.json())
    return {m.state: m.suspended for m in body.members}


class TestStates:
    def test_list(self, client: TestClient) -> None:
        body = StateList.model_validate(client.get("/v1/states").json())
        codes = [s.code for s in body.items]
        assert codes == sorted(codes)
        assert {"MLI", "DZA", "NER", "BFA"} <= set(codes)

    @pytest.mark.parametrize(
        ("q", "code"), [("algerie", "DZA"), ("ALGÉRIE", "DZA"), ("mli", "MLI")]
    )
    def test_search_by_alias_code_or_name(self, client: TestClient, q: str, code: str) -> None:
        items = client.get("/v1/states", params={"q": q}).json()["items"]
        assert code in [s["code"] for s in items]

    def test_detail_with_memberships(self, client: TestClient) -> None:
        body = StateDetail.model_validate(client.get("/v1/states/MLI").json())
        assert body.name == "Mali"
        assert body.capital == "Bamako"
        cemoc = [m for m in body.memberships if m.organisation == "CEMOC"]
        assert [str(m.end_on) for m in cemoc] == ["2025-04-06"]

    def test_unknown_state(self, client: TestClient) -> None:
        assert_problem(client.get("/v1/states/XXX"), 404)

    def test_malformed_code(self, client: TestClient) -> None:
        # Any case of a code is the code (tests/test_inputs.py); a name is not one.
        assert_problem(client.get("/v1/states/Mali"), 422, "code")


class TestOrganisations:
    def test_list_and_search(self, client: TestClient) -> None:
        body = OrganisationList.model_validate(client.get("/v1/organisations").json())
        assert {"AES", "ECOWAS", "AU", "CEMOC", "G5-SAHEL"} <= {o.code for o in body.items}
        found = client.get("/v1/organisations", params={"q": "cedeao"}).json()["items"]
        assert [o["code"] for o in found] == ["ECOWAS"]

    def test_names_over_time(self, client: TestClient) -> None:
        body = OrganisationRead.model_validate(client.get("/v1/organisations/AES").json())
        names = [(n.name, str(n.valid_from), str(n.valid_to)) for n in body.names]
        assert ("Alliance of Sahel States", "2023-09-16", "2024-07-06") in names
        assert ("Confederation of Sahel States", "2024-07-06", "None") in names

    def test_name_as_of(self, client: TestClient) -> None:
        early = client.get("/v1/organisations/AES/members", params={"as_of": "2024-01-01"}).json()
        late = client.get("/v1/organisations/AES/members", params={"as_of": "2024-07-06"}).json()
        assert early["name_as_of"] == "Alliance of Sahel States"
        assert late["name_as_of"] == "Confederation of Sahel States"

    def test_aes_members_from_its_founding(self, client: TestClient) -> None:
        assert members(client, "AES", "2023-09-15") == {}
        assert set(members(client, "AES", "2023-09-16")) == {"MLI", "NER", "BFA"}

    def test_ecowas_exit_takes_effect_on_29_january_2025(self, client: TestClient) -> None:
        assert {"MLI", "NER", "BFA"} <= set(members(client, "ECOWAS", "2025-01-28"))
        assert not {"MLI", "NER", "BFA"} & set(members(client, "ECOWAS", "2025-01-29"))

    def test_mali_leaves_cemoc_on_6_april_2025(self, client: TestClient) -> None:
        assert "MLI" in members(client, "CEMOC", "2025-04-05")
        after = members(client, "CEMOC", "2025-04-06")
        assert "MLI" not in after
        assert "DZA" in after

    def test_suspension_with_unknown_end_is_neither_true_nor_false(
        self, client: TestClient
    ) -> None:
        # The fact base gives no date for the end of Burkina Faso's ECOWAS suspension.
        assert members(client, "ECOWAS", "2022-02-15")["BFA"] is None
        assert members(client, "ECOWAS", "2021-12-31")["BFA"] is False

    def test_unknown_end_is_reported_not_guessed(self, client: TestClient) -> None:
        body = client.get("/v1/organisations/AU/members", params={"as_of": "2024-01-01"}).json()
        uncertain = [(p["state"], p["status"], p["end"]) for p in body["uncertain"]]
        assert ("MLI", "suspended", "unknown") in uncertain

    def test_default_as_of_is_today(self, client: TestClient) -> None:
        assert client.get("/v1/organisations/AES/members").status_code == 200

    def test_errors(self, client: TestClient) -> None:
        assert_problem(client.get("/v1/organisations/NOPE"), 404)
        assert_problem(client.get("/v1/organisations/NOPE/members"), 404)
        assert_problem(client.get("/v1/organisations/A%20ES"), 422, "code")
        response = client.get("/v1/organisations/AES/members", params={"as_of": "2025-02-30"})
        assert_problem(response, 422, "as_of")


class TestPlaces:
    def test_list_and_detail(self, client: TestClient) -> None:
        body = PlaceList.model_validate(client.get("/v1/places").json())
        assert "tinzaouaten" in {p.code for p in body.items}
        place = PlaceRead.model_validate(client.get("/v1/places/tinzaouaten").json())
        assert "Tinzawatène" in place.aliases
        assert place.state == "MLI"

    def test_errors(self, client: TestClient) -> None:
        assert_problem(client.get("/v1/places/atlantis"), 404)
        assert_problem(client.get("/v1/places/Not%20a%20code"), 422, "code")


class TestMembershipRules:
    def test_dated_suspension_counts_as_suspended_only_inside_its_period(
        self, session: object
    ) -> None:
        import datetime as dt

        from sqlalchemy.orm import Session

        from app.organisations import service
        from app.organisations.schemas import MembershipCreate

        assert isinstance(session, Session)
        source = {"url": "https://example.org/test-only", "publisher": "Test fixture"}
        service.upsert_membership(
            session,
            MembershipCreate.model_validate(
                {
                    "organisation": "AES",
                    "state": "MLI",
                    "status": "suspended",
                    "start_on": "2024-03-01",
                    "start_precision": "day",
                    "end_on": "2024-04-01",
                    "end_precision": "day",
                    "end": "dated",
                    "sources": [source],
                }
            ),
            "test",
        )
        on = {
            m["state"]: m["suspended"]
            for m in service.members_as_of(session, "AES", dt.date(2024, 3, 31))["members"]
        }
        after = {
            m["state"]: m["suspended"]
            for m in service.members_as_of(session, "AES", dt.date(2024, 4, 1))["members"]
        }
        assert on["MLI"] is True and after["MLI"] is False
