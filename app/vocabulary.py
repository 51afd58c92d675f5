"""Controlled vocabularies shared by the models, the schemas and `GET /v1/categories`.

Kept as data in one place so that the database checks, the API validation and the published
vocabulary can never drift apart.
"""

from dataclasses import dataclass
from enum import StrEnum


class DatePrecision(StrEnum):
    day = "day"
    month = "month"
    year = "year"


class EventKind(StrEnum):
    diplomatic_action = "diplomatic_action"
    incident = "incident"


class ParticipantRole(StrEnum):
    initiator = "initiator"
    # Only a claimant says this party did it (e.g. Algeria alleging Malian drone incursions);
    # the event's claims hold who alleges it. Never counted as `actor=` or in relations.
    alleged_initiator = "alleged_initiator"
    target = "target"
    affected = "affected"
    mediator = "mediator"
    participant = "participant"
    observer = "observer"


class LinkType(StrEnum):
    in_response_to = "in_response_to"
    escalates = "escalates"
    part_of = "part_of"
    follows_up = "follows_up"
    related_to = "related_to"


class MembershipStatus(StrEnum):
    founding_member = "founding_member"
    member = "member"
    suspended = "suspended"
    withdrawn = "withdrawn"


# The statuses that make a state a member (`include_members`, the members of an organisation).
MEMBER_STATUSES = (MembershipStatus.founding_member.value, MembershipStatus.member.value)


class MembershipEnd(StrEnum):
    dated = "dated"
    open = "open"
    unknown = "unknown"


class OrganisationKind(StrEnum):
    military_alliance = "military_alliance"
    confederation = "confederation"
    economic_community = "economic_community"
    security_committee = "security_committee"
    international_organisation = "international_organisation"
    peacekeeping_mission = "peacekeeping_mission"
    military_operation = "military_operation"
    agreement_body = "agreement_body"


class LocationPrecision(StrEnum):
    point = "point"
    locality = "locality"
    region = "region"
    country = "country"


class Confidence(StrEnum):
    high = "high"
    medium = "medium"
    low = "low"


@dataclass(frozen=True, slots=True)
class Cameo:
    code: str
    name: str
    goldstein: float


@dataclass(frozen=True, slots=True)
class Category:
    slug: str
    kind: EventKind
    label: str
    description: str
    cameo: tuple[str, ...]


# Names and Goldstein scores from the ICEWS CAMEO table cited in the fact base (section 5.2).
CAMEO: dict[str, Cameo] = {
    c.code: c
    for c in (
        Cameo("010", "Make statement", 0.0),
        Cameo("016", "Deny responsibility", -5.0),
        Cameo("030", "Express intent to cooperate", 4.0),
        Cameo("036", "Express intent to meet or negotiate", 4.0),
        Cameo("038", "Express intent to accept mediation", 7.0),
        Cameo("039", "Express intent to mediate", 5.0),
        Cameo("040", "Consult", 1.0),
        Cameo("042", "Make a visit", 1.9),
        Cameo("043", "Host a visit", 2.8),
        Cameo("050", "Engage in diplomatic cooperation", 3.5),
        Cameo("057", "Sign formal agreement", 8.0),
        Cameo("0256", "Appeal for de-escalation of military engagement", -0.3),
        Cameo("0831", "Accede to demands for change in leadership", 5.0),
        Cameo("110", "Disapprove", -2.0),
        Cameo("111", "Criticize or denounce", -2.0),
        Cameo("112", "Accuse", -2.0),
        Cameo("1121", "Accuse of crime, corruption", -2.0),
        Cameo("1123", "Accuse of aggression", -2.0),
        Cameo("114", "Complain officially", -2.0),
        Cameo("115", "Bring lawsuit against", -2.0),
        Cameo("126", "Reject mediation", -5.0),
        Cameo("1212", "Reject military cooperation", -4.0),
        Cameo("138", "Threaten with military force", -7.0),
        Cameo("141", "Demonstrate or rally", -6.5),
        Cameo("150", "Demonstrate military or police power", -7.2),
        Cameo("154", "Mobilize or increase armed forces", -7.2),
        Cameo("160", "Reduce relations", -4.0),
        Cameo("161", "Reduce or break diplomatic relations", -4.0),
        Cameo("163", "Impose embargo, boycott, or sanctions", -8.0),
        Cameo("166", "Expel or withdraw", -7.0),
        Cameo("1661", "Expel or withdraw peacekeepers", -7.0),
        Cameo("1712", "Destroy property", -9.2),
        Cameo("173", "Arrest, detain, or charge with legal action", -5.0),
        Cameo("190", "Use conventional military force", -10.0),
        Cameo("192", "Occupy territory", -9.5),
        Cameo("193", "Fight with small arms and light weapons", -10.0),
        Cameo("195", "Employ aerial weapons", -10.0),
    )
}

_D = EventKind.diplomatic_action
_I = EventKind.incident

CATEGORIES: dict[str, Category] = {
    c.slug: c
    for c in (
        Category(
            "ambassador_recall",
            _D,
            "Ambassador recall",
            "A state recalls its ambassador, for consultation or for good.",
            ("161",),
        ),
        Category(
            "ambassador_summons",
            _D,
            "Ambassador summons",
            "A state summons another state's ambassador to protest.",
            ("110",),
        ),
        Category(
            "ambassador_expulsion",
            _D,
            "Ambassador expulsion",
            "A state expels another state's ambassador or diplomats.",
            ("161",),
        ),
        Category(
            "ambassador_return",
            _D,
            "Ambassador return",
            "An ambassador returns to post, or a new ambassador takes up the post.",
            ("050",),
        ),
        Category(
            "severance_of_relations",
            _D,
            "Severance of relations",
            "A state breaks off diplomatic relations.",
            ("161",),
        ),
        Category(
            "complaint_to_international_body",
            _D,
            "Complaint to an international body",
            "A formal complaint or letter to the UN or another international body.",
            ("114", "115"),
        ),
        Category(
            "withdrawal_from_organisation",
            _D,
            "Withdrawal from an organisation",
            "A state announces or completes its exit from an organisation.",
            ("160", "1212"),
        ),
        Category(
            "withdrawal_from_agreement",
            _D,
            "Withdrawal from an agreement",
            "A state ends or leaves a treaty or agreement.",
            ("160",),
        ),
        Category(
            "airspace_closure",
            _D,
            "Airspace closure",
            "A state closes its airspace to another state's aircraft.",
            ("160",),
        ),
        Category(
            "sanctions",
            _D,
            "Sanctions",
            "Sanctions, embargoes or border closures imposed as pressure.",
            ("163",),
        ),
        Category(
            "suspension_by_organisation",
            _D,
            "Suspension by an organisation",
            "An organisation suspends a member state.",
            ("160",),
        ),
        Category(
            "organisation_decision",
            _D,
            "Organisation decision",
            "Another decision of an international body, such as ending a mission.",
            ("1661", "160"),
        ),
        Category(
            "accusation",
            _D,
            "Accusation",
            "A public accusation against another party.",
            ("112", "1121", "1123"),
        ),
        Category(
            "criticism", _D, "Criticism", "Criticism or condemnation of another party.", ("111",)
        ),
        Category("denial", _D, "Denial", "A rejection of another party's accusations.", ("016",)),
        Category(
            "threat",
            _D,
            "Threat or warning",
            "A threat or warning of force or of consequences.",
            ("138",),
        ),
        Category(
            "appeal",
            _D,
            "Appeal",
            "An appeal to others, such as a call for de-escalation.",
            ("0256",),
        ),
        Category(
            "statement",
            _D,
            "Statement",
            "An official statement that is none of the above.",
            ("010",),
        ),
        Category(
            "mediation",
            _D,
            "Mediation",
            "An offer, acceptance or rejection of mediation.",
            ("039", "038", "126"),
        ),
        Category("visit", _D, "Visit", "An official visit made or hosted.", ("042", "043")),
        Category("meeting", _D, "Meeting", "A diplomatic meeting or consultation.", ("040", "036")),
        Category("agreement", _D, "Agreement", "A treaty, charter or agreement signed.", ("057",)),
        Category(
            "cooperation",
            _D,
            "Cooperation",
            "A declared intent to cooperate, or joining an initiative.",
            ("030",),
        ),
        Category(
            "coup",
            _I,
            "Coup",
            "A military seizure of power. CAMEO has no coup code; 173 covers detaining"
            " leaders and 0831 forced resignations.",
            ("173", "0831"),
        ),
        Category(
            "political_transition",
            _I,
            "Political transition",
            "A change of leaders or institutions that is not itself a coup.",
            (),
        ),
        Category("battle", _I, "Battle", "Armed clashes between forces.", ("190", "193")),
        Category(
            "air_strike", _I, "Air or drone strike", "An attack from aircraft or drones.", ("195",)
        ),
        Category(
            "shoot_down", _I, "Shoot-down", "An aircraft or drone is shot down.", ("190", "1712")
        ),
        Category(
            "airspace_violation_claim",
            _I,
            "Claimed airspace violation",
            "A party claims its airspace was violated.",
            (),
        ),
        Category(
            "capture_of_territory",
            _I,
            "Capture of territory",
            "A force takes control of a town or area.",
            ("192",),
        ),
        Category(
            "military_deployment",
            _I,
            "Military deployment",
            "A build-up or deployment of forces or weapons.",
            ("154", "150"),
        ),
        Category(
            "military_withdrawal",
            _I,
            "Military withdrawal",
            "Foreign troops or peacekeepers leave.",
            ("166", "1661"),
        ),
        Category("protest", _I, "Protest", "A demonstration or rally.", ("141",)),
    )
}
