"""Synthetic timeline data for the benchmark: `python -m bench.synth --events N`.

Fills a migrated database (SQLite or PostgreSQL; it runs `alembic upgrade head` itself) with N
realistic events and everything they refer to: about 150 states with a skewed (Zipf-like)
distribution, organisations with memberships, places with aliases, sources, participants,
claims, tags and links, every event kind and category, ~300-character summaries and dates spread
over eight decades. Every column the API reads is filled, including the denormalised `date` on
`event_participant` and `event_tag` and the folded `search_text` that `q=` searches.

The same seed always gives the same rows. Loading is bulk: secondary indexes are dropped, rows go
in with `executemany` (SQLite) or `COPY` (PostgreSQL) in batches, then the indexes are rebuilt
exactly as the migration defined them and the planner statistics are refreshed.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import itertools
import random
import re
import sqlite3
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.config import PROJECT_ROOT, get_settings, normalise_database_url
from app.schemas import fold
from app.search import search_text as stored_search_text
from app.vocabulary import CAMEO, CATEGORIES, OrganisationKind

STATES_TABLE = (
    "USA US 840 United States|RUS RU 643 Russia|CHN CN 156 China|FRA FR 250 France|"
    "GBR GB 826 United Kingdom|DEU DE 276 Germany|IND IN 356 India|JPN JP 392 Japan|"
    "TUR TR 792 Türkiye|IRN IR 364 Iran|ISR IL 376 Israel|UKR UA 804 Ukraine|"
    "PAK PK 586 Pakistan|SAU SA 682 Saudi Arabia|EGY EG 818 Egypt|BRA BR 076 Brazil|"
    "MLI ML 466 Mali|NGA NG 566 Nigeria|ZAF ZA 710 South Africa|KOR KR 410 South Korea|"
    "PRK KP 408 North Korea|ITA IT 380 Italy|ESP ES 724 Spain|POL PL 616 Poland|"
    "SYR SY 760 Syria|IRQ IQ 368 Iraq|AFG AF 004 Afghanistan|ETH ET 231 Ethiopia|"
    "SDN SD 729 Sudan|DZA DZ 012 Algeria|MAR MA 504 Morocco|LBY LY 434 Libya|"
    "VEN VE 862 Venezuela|COL CO 170 Colombia|MEX MX 484 Mexico|ARG AR 032 Argentina|"
    "CHL CL 152 Chile|PER PE 604 Peru|CUB CU 192 Cuba|CAN CA 124 Canada|AUS AU 036 Australia|"
    "IDN ID 360 Indonesia|VNM VN 704 Vietnam|THA TH 764 Thailand|PHL PH 608 Philippines|"
    "MYS MY 458 Malaysia|MMR MM 104 Myanmar|BGD BD 050 Bangladesh|LKA LK 144 Sri Lanka|"
    "NPL NP 524 Nepal|KAZ KZ 398 Kazakhstan|UZB UZ 860 Uzbekistan|AZE AZ 031 Azerbaijan|"
    "ARM AM 051 Armenia|GEO GE 268 Georgia|BLR BY 112 Belarus|SRB RS 688 Serbia|"
    "HRV HR 191 Croatia|BIH BA 070 Bosnia and Herzegovina|ALB AL 008 Albania|"
    "GRC GR 300 Greece|CYP CY 196 Cyprus|ROU RO 642 Romania|BGR BG 100 Bulgaria|"
    "HUN HU 348 Hungary|CZE CZ 203 Czechia|SVK SK 703 Slovakia|AUT AT 040 Austria|"
    "CHE CH 756 Switzerland|NLD NL 528 Netherlands|BEL BE 056 Belgium|SWE SE 752 Sweden|"
    "NOR NO 578 Norway|FIN FI 246 Finland|DNK DK 208 Denmark|IRL IE 372 Ireland|"
    "PRT PT 620 Portugal|LTU LT 440 Lithuania|LVA LV 428 Latvia|EST EE 233 Estonia|"
    "MDA MD 498 Moldova|QAT QA 634 Qatar|ARE AE 784 United Arab Emirates|KWT KW 414 Kuwait|"
    "OMN OM 512 Oman|YEM YE 887 Yemen|JOR JO 400 Jordan|LBN LB 422 Lebanon|"
    "TUN TN 788 Tunisia|SEN SN 686 Senegal|NER NE 562 Niger|BFA BF 854 Burkina Faso|"
    "TCD TD 148 Chad|CMR CM 120 Cameroon|COD CD 180 DR Congo|COG CG 178 Congo|"
    "AGO AO 024 Angola|KEN KE 404 Kenya|UGA UG 800 Uganda|TZA TZ 834 Tanzania|"
    "RWA RW 646 Rwanda|SOM SO 706 Somalia|ERI ER 232 Eritrea|DJI DJ 262 Djibouti|"
    "MOZ MZ 508 Mozambique|ZWE ZW 716 Zimbabwe|ZMB ZM 894 Zambia|GHA GH 288 Ghana|"
    "CIV CI 384 Côte d'Ivoire|LBR LR 430 Liberia|SLE SL 694 Sierra Leone|GIN GN 324 Guinea|"
    "MRT MR 478 Mauritania|GAB GA 266 Gabon|BEN BJ 204 Benin|TGO TG 768 Togo|"
    "NZL NZ 554 New Zealand|PNG PG 598 Papua New Guinea|FJI FJ 242 Fiji|BOL BO 068 Bolivia|"
    "PRY PY 600 Paraguay|URY UY 858 Uruguay|ECU EC 218 Ecuador|HTI HT 332 Haiti|"
    "DOM DO 214 Dominican Republic|JAM JM 388 Jamaica|PAN PA 591 Panama|"
    "CRI CR 188 Costa Rica|NIC NI 558 Nicaragua|HND HN 340 Honduras|GTM GT 320 Guatemala|"
    "SLV SV 222 El Salvador|MNG MN 496 Mongolia|KHM KH 116 Cambodia|LAO LA 418 Laos|"
    "TWN TW 158 Taiwan|SGP SG 702 Singapore|BRN BN 096 Brunei|TLS TL 626 Timor-Leste|"
    "KGZ KG 417 Kyrgyzstan|TJK TJ 762 Tajikistan|TKM TM 795 Turkmenistan|ISL IS 352 Iceland|"
    "LUX LU 442 Luxembourg|MLT MT 470 Malta|SVN SI 705 Slovenia|MNE ME 499 Montenegro|"
    "MKD MK 807 North Macedonia|SSD SS 728 South Sudan|BHR BH 048 Bahrain|"
)

ORGANISATIONS = (
    # code, name, kind, founded (year), share of states that are members (UN: all)
    ("UN", "United Nations", "international_organisation", 1945, 1.0),
    ("AU", "African Union", "international_organisation", 2002, 0.35),
    ("ECOWAS", "Economic Community of West African States", "economic_community", 1975, 0.1),
    ("AES", "Confederation of Sahel States", "confederation", 2023, 0.02),
    ("EU", "European Union", "economic_community", 1993, 0.18),
    ("NATO", "North Atlantic Treaty Organization", "military_alliance", 1949, 0.2),
    ("ASEAN", "Association of Southeast Asian Nations", "economic_community", 1967, 0.07),
    ("OAS", "Organization of American States", "international_organisation", 1948, 0.2),
    ("ARAB-LEAGUE", "League of Arab States", "international_organisation", 1945, 0.14),
    ("OPEC", "Organization of the Petroleum Exporting Countries", "agreement_body", 1960, 0.08),
    ("G20", "Group of Twenty", "agreement_body", 1999, 0.13),
    ("G7", "Group of Seven", "agreement_body", 1975, 0.05),
    ("SCO", "Shanghai Cooperation Organisation", "security_committee", 2001, 0.06),
    ("BRICS", "BRICS", "agreement_body", 2009, 0.06),
    ("CSTO", "Collective Security Treaty Organization", "military_alliance", 1992, 0.04),
    ("GCC", "Gulf Cooperation Council", "economic_community", 1981, 0.04),
    ("SADC", "Southern African Development Community", "economic_community", 1992, 0.1),
    ("EAC", "East African Community", "economic_community", 2000, 0.05),
    ("IGAD", "Intergovernmental Authority on Development", "economic_community", 1996, 0.05),
    ("MERCOSUR", "Southern Common Market", "economic_community", 1991, 0.04),
    ("CARICOM", "Caribbean Community", "economic_community", 1973, 0.03),
    ("OIC", "Organisation of Islamic Cooperation", "international_organisation", 1969, 0.3),
    ("COMMONWEALTH", "Commonwealth of Nations", "international_organisation", 1949, 0.25),
    (
        "OIF",
        "Organisation internationale de la Francophonie",
        "international_organisation",
        1970,
        0.2,
    ),
    ("UEMOA", "West African Economic and Monetary Union", "economic_community", 1994, 0.05),
    (
        "CEMAC",
        "Economic and Monetary Community of Central Africa",
        "economic_community",
        1994,
        0.04,
    ),
    ("ECCAS", "Economic Community of Central African States", "economic_community", 1983, 0.07),
    ("AMU", "Arab Maghreb Union", "economic_community", 1989, 0.03),
    ("G5-SAHEL", "G5 Sahel", "security_committee", 2014, 0.03),
    (
        "MINUSMA",
        "UN Multidimensional Integrated Stabilization Mission in Mali",
        "peacekeeping_mission",
        2013,
        0.1,
    ),
    ("BARKHANE", "Operation Barkhane", "military_operation", 2014, 0.03),
    ("CIS", "Commonwealth of Independent States", "international_organisation", 1991, 0.06),
    ("EAEU", "Eurasian Economic Union", "economic_community", 2015, 0.03),
    ("APEC", "Asia-Pacific Economic Cooperation", "economic_community", 1989, 0.12),
    ("PIF", "Pacific Islands Forum", "international_organisation", 1971, 0.03),
    ("SAARC", "South Asian Association for Regional Cooperation", "economic_community", 1985, 0.05),
    (
        "OSCE",
        "Organization for Security and Co-operation in Europe",
        "security_committee",
        1975,
        0.35,
    ),
    ("IAEA", "International Atomic Energy Agency", "international_organisation", 1957, 0.8),
    ("WTO", "World Trade Organization", "agreement_body", 1995, 0.8),
    ("ICC-ASP", "Assembly of States Parties to the Rome Statute", "agreement_body", 2002, 0.6),
)
PUBLISHERS = (
    "Reuters",
    "Associated Press",
    "Agence France-Presse",
    "BBC News",
    "Al Jazeera",
    "DW",
    "Le Monde",
    "The Guardian",
    "The New York Times",
    "Jeune Afrique",
    "RFI",
    "Xinhua",
    "TASS",
    "Anadolu Agency",
    "El País",
    "Der Spiegel",
    "Asahi Shimbun",
    "The Hindu",
    "Dawn",
    "Mail & Guardian",
    "Premium Times",
    "APS",
    "MAP",
    "Sahara Medias",
    "Le Faso",
    "ActuNiger",
    "Maliweb",
    "France 24",
    "Euronews",
    "NHK",
    "Yonhap",
    "Kyiv Independent",
    "Meduza",
    "Haaretz",
    "Arab News",
    "Daily Nation",
    "The East African",
    "Folha de S.Paulo",
    "Clarín",
    "La Jornada",
)
LANGUAGES = ("en", "en", "en", "fr", "fr", "ar", "es", "ru", "de", "pt", "zh")
GROUPS = (
    "armed separatists",
    "jihadist insurgents",
    "Wagner Group",
    "student protesters",
    "opposition coalition",
    "militia forces",
    "presidential guard",
    "trade unions",
    "border guards",
    "rebel alliance",
)
# Real words of the domain first (most frequent), then pronounceable filler words.
_DOMAIN_WORDS_TEXT = (
    "the of and to in a on for with by government minister foreign ministry president "
    "talks border security military ambassador envoy relations statement meeting "
    "agreement treaty summit delegation official officials spokesman council crisis "
    "conflict region regional sovereignty territory airspace drone troops forces army "
    "navy air strike attack protest sanctions trade economic cooperation development aid "
    "humanitarian refugees migration election coup junta transition constitution "
    "parliament opposition ally allies alliance dispute accusation denial condemnation "
    "mediation negotiation dialogue peace reconciliation withdrawal recall summons "
    "expulsion embassy consulate visa citizens hostages prisoners exchange pipeline oil "
    "gas energy mining gold uranium port corridor railway road infrastructure investment "
    "loan debt currency inflation market exports imports tariffs fisheries water river "
    "dam drought climate famine epidemic vaccine health schools journalists media "
    "broadcast internet shutdown curfew emergency martial law court tribunal "
    "investigation report commission inquiry evidence casualties civilians wounded "
    "killed displaced villages city capital province district northern southern eastern "
    "western central coastal desert mountain frontier checkpoint patrol convoy mission "
    "peacekeepers observers monitors deployment exercise manoeuvres missile nuclear "
    "enrichment inspectors weapons arms deal purchase delivery helicopter aircraft "
    "vessel maritime waters island fishing rights boundary demarcation commission joint "
    "communique declaration resolution vote veto session assembly chairman secretary "
    "general spokeswoman memorandum understanding partnership strategic bilateral "
    "multilateral diplomatic protest note verbale"
)
DOMAIN_WORDS = tuple(_DOMAIN_WORDS_TEXT.split())
COMMON_WORD = "ceasefire"  # planted in about 5 % of summaries
RARE_WORD = "extradition"  # planted in about 0.1 % of summaries
COMMON_SHARE = 0.05
RARE_SHARE = 0.001

START = dt.date(1946, 1, 1)
END = dt.date(2025, 6, 30)
CREATED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
ROLES_EXTRA = ("affected", "mediator", "participant", "observer")


def say(message: str, *, end: str = "\n") -> None:
    print(message, end=end, file=sys.stderr, flush=True)


def zipf_cum(n: int, s: float) -> list[float]:
    return list(itertools.accumulate(1.0 / (r + 1) ** s for r in range(n)))


def pick(rng: random.Random, items: Sequence[Any], cum: list[float]) -> Any:
    return items[bisect.bisect(cum, rng.random() * cum[-1])]


_WS = re.compile(r"\s+")


def fast_fold(text: str) -> str:
    """`app.schemas.fold`, with a shortcut for pure ASCII (NFKD changes nothing there)."""
    if text.isascii():
        return _WS.sub(" ", text.casefold()).strip()
    return fold(text)


def stamp(seconds: int) -> str:
    """A naive UTC timestamp in the format SQLAlchemy stores on SQLite (PostgreSQL reads it in
    a UTC session)."""
    return (CREATED + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S.%f")


def syllable_words(rng: random.Random, n: int, taken: set[str]) -> list[str]:
    cons, vows = "bcdfghjklmnprstvz", "aeiou"
    out: list[str] = []
    while len(out) < n:
        w = "".join(rng.choice(cons) + rng.choice(vows) for _ in range(rng.randint(2, 4)))
        if w not in taken:
            taken.add(w)
            out.append(w)
    return out


@dataclass
class World:
    """Everything events refer to, generated once per seed."""

    states: list[tuple[Any, ...]] = field(default_factory=list)
    state_cum: list[float] = field(default_factory=list)
    orgs: list[tuple[Any, ...]] = field(default_factory=list)
    org_cum: list[float] = field(default_factory=list)
    places: list[tuple[Any, ...]] = field(default_factory=list)
    places_by_state: dict[int, list[int]] = field(default_factory=dict)
    place_aliases: dict[int, list[str]] = field(default_factory=dict)
    n_sources: int = 0
    phrases: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    tag_cum: list[float] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    category_cum: list[float] = field(default_factory=list)
    words: list[str] = field(default_factory=list)


def parse_states() -> list[tuple[str, str, str, str]]:
    out = []
    for item in "".join(STATES_TABLE).strip("|").split("|"):
        code, alpha2, numeric, name = item.split(" ", 3)
        out.append((code, alpha2, numeric, name))
    return out


def build_world(
    rng: random.Random, n_events: int
) -> tuple[World, dict[str, list[tuple[Any, ...]]]]:
    """Reference rows (states, organisations, places, sources ...) and the generators' pools."""
    w = World()
    rows: dict[str, list[tuple[Any, ...]]] = {}
    now = stamp(0)
    states = parse_states()
    rows["state"] = [
        (
            i + 1,
            code,
            alpha2,
            numeric,
            name,
            None,
            f"{name} capital",
            round(rng.uniform(-60, 70), 4),
            round(rng.uniform(-180, 180), 4),
            f"Q{90000 + i}",
            now,
            now,
        )
        for i, (code, alpha2, numeric, name) in enumerate(states)
    ]
    w.states = [(i + 1, code, name) for i, (code, _, _, name) in enumerate(states)]
    w.state_cum = zipf_cum(len(states), 0.8)
    rows["state_alias"] = [
        (i + 1, i + 1, f"Republic of {name}", fast_fold(f"Republic of {name}"))
        for i, (_, _, _, name) in enumerate(states)
    ]

    kinds = {k.value for k in OrganisationKind}
    rows["organisation"], rows["organisation_name"], rows["organisation_alias"] = [], [], []
    rows["membership"] = []
    for i, (code, name, kind, year, share) in enumerate(ORGANISATIONS):
        if kind not in kinds:
            raise ValueError(f"unknown organisation kind {kind!r}")
        oid = i + 1
        founded = dt.date(year, 1 + (oid % 12), 1 + (oid % 27))
        rows["organisation"].append(
            (
                oid,
                code,
                name,
                kind,
                None,
                None,
                f"{name}, synthetic benchmark copy.",
                founded.isoformat(),
                "day",
                None,
                None,
                now,
                now,
            )
        )
        rows["organisation_name"].append(
            (oid, oid, 0, name, founded.isoformat(), "day", None, None)
        )
        rows["organisation_alias"].append((oid, oid, code.lower(), fast_fold(code)))
        w.orgs.append((oid, code, name))
        k = max(3, round(share * len(states)))
        members: list[int] = []
        seen: set[int] = set()
        while len(members) < min(k, len(states)):
            sid = pick(rng, w.states, w.state_cum)[0] if share < 1 else len(members) + 1
            if sid not in seen:
                seen.add(sid)
                members.append(sid)
        for sid in members:
            start = (
                founded
                if rng.random() < 0.5
                else founded + dt.timedelta(days=rng.randrange(max(1, (END - founded).days)))
            )
            status = "founding_member" if start == founded else "member"
            r = rng.random()
            if r < 0.7:
                end_on, end_precision, end_kind = None, None, "open"
            elif r < 0.95:
                end = start + dt.timedelta(days=rng.randrange(30, 20000))
                end_on, end_precision, end_kind = end.isoformat(), "day", "dated"
            else:
                end_on, end_precision, end_kind = None, None, "unknown"
            rows["membership"].append(
                (
                    len(rows["membership"]) + 1,
                    oid,
                    sid,
                    status,
                    start.isoformat(),
                    "day",
                    end_on,
                    end_precision,
                    end_kind,
                    None,
                    now,
                    now,
                )
            )
    w.org_cum = zipf_cum(len(w.orgs), 1.0)

    taken = set(DOMAIN_WORDS) | {COMMON_WORD, RARE_WORD}
    filler = syllable_words(rng, 4000, taken)
    w.words = list(DOMAIN_WORDS) + filler
    word_cum = zipf_cum(len(w.words), 1.0)

    rows["place"], rows["place_alias"] = [], []
    n_places = 800
    for pid in range(1, n_places + 1):
        sid = pick(rng, w.states, w.state_cum)[0]
        name = rng.choice(filler).capitalize() + rng.choice(("", "", " City", "ville", "abad"))
        if rng.random() < 0.15:
            name = name[:-1] + "é"  # accented spellings, found by `q` without the accent
        lat, lon = round(rng.uniform(-55, 70), 5), round(rng.uniform(-180, 180), 5)
        rows["place"].append((pid, f"place-{pid}", name, sid, lat, lon, now, now))
        w.places.append((pid, name, sid, lat, lon))
        w.places_by_state.setdefault(sid, []).append(pid)
        if rng.random() < 0.3:
            alias = name + "e"
            rows["place_alias"].append((len(rows["place_alias"]) + 1, pid, alias, fast_fold(alias)))
            w.place_aliases[pid] = [alias]

    w.n_sources = max(1000, n_events // 4)
    rows["source"] = []
    for sid in range(1, w.n_sources + 1):
        pub = rng.choice(PUBLISHERS)
        day = START + dt.timedelta(days=rng.randrange((END - START).days))
        slug = "-".join(pick(rng, w.words, word_cum) for _ in range(4))
        domain = re.sub(r"[^a-z]", "", pub.lower())[:20]
        title = " ".join(pick(rng, w.words, word_cum) for _ in range(8)).capitalize()
        rows["source"].append(
            (
                sid,
                f"https://{domain}.example.org/{day.year}/{sid}-{slug}",
                pub,
                title,
                day.isoformat(),
                rng.choice(LANGUAGES),
                now,
                now,
            )
        )
    rows["organisation_source"] = [(oid, oid) for oid, _, _ in w.orgs]
    rows["membership_source"] = [(m[0], 1 + m[0] % w.n_sources) for m in rows["membership"]]

    # Summaries are made of pre-built phrases so that a million of them stay cheap to make,
    # while word frequencies keep a Zipf shape.
    w.phrases = [
        " ".join(pick(rng, w.words, word_cum) for _ in range(rng.randint(4, 9)))
        for _ in range(50_000)
    ]
    w.tags = sorted({f"{a}-{b}" for a, b in zip(filler[:300], filler[300:600], strict=True)})
    rng.shuffle(w.tags)
    w.tag_cum = zipf_cum(len(w.tags), 1.0)
    w.categories = sorted(CATEGORIES)
    rng.shuffle(w.categories)
    w.category_cum = zipf_cum(len(w.categories), 0.7)
    return w, rows


def base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


@dataclass
class Counters:
    participant: int = 0
    claim: int = 0
    link: int = 0


_EVENT_COLS_TEXT = (
    "id public_id kind category date date_precision end_date title summary place_id "
    "place_name lat lon location_precision location_state_id cameo_code goldstein "
    "confidence fact_ref casualties_killed casualties_wounded casualties_note "
    "search_text deleted_at created_at updated_at"
)
EVENT_COLS = tuple(_EVENT_COLS_TEXT.split())
COLUMNS = {
    "state": "id code alpha2 numeric name official_name capital capital_lat capital_lon "
    "wikidata_qid created_at updated_at",
    "state_alias": "id state_id alias folded",
    "organisation": "id code name kind headquarters wikidata_qid description founded_on "
    "founded_precision dissolved_on dissolved_precision created_at updated_at",
    "organisation_name": "id organisation_id position name valid_from valid_from_precision "
    "valid_to valid_to_precision",
    "organisation_alias": "id organisation_id alias folded",
    "membership": "id organisation_id state_id status start_on start_precision end_on "
    "end_precision end_kind note created_at updated_at",
    "place": "id code name state_id lat lon created_at updated_at",
    "place_alias": "id place_id alias folded",
    "source": "id url publisher title published_on language created_at updated_at",
    "organisation_source": "organisation_id source_id",
    "membership_source": "membership_id source_id",
    "event": " ".join(EVENT_COLS),
    "event_participant": (
        "id event_id position state_id organisation_id group_name role date public_id"
    ),
    "event_tag": "event_id tag date public_id",
    "event_source": "event_id source_id position",
    "claim": "id event_id position topic claimant_state_id claimant_organisation_id "
    "claimant_group statement value unit made_on",
    "claim_source": "claim_id source_id",
    "event_link": "id from_event_id to_event_id link_type",
}
EVENT_TABLES = (
    "event",
    "event_participant",
    "event_tag",
    "event_source",
    "claim",
    "claim_source",
    "event_link",
)
INCIDENT_WITH_CASUALTIES = {"battle", "air_strike", "shoot_down", "capture_of_territory"}


def events(
    rng: random.Random, w: World, first: int, last: int, c: Counters
) -> dict[str, list[tuple[Any, ...]]]:
    """Rows of every event table for event ids first..last (inclusive)."""
    out: dict[str, list[tuple[Any, ...]]] = {t: [] for t in EVENT_TABLES}
    ev, parts, tags_out = out["event"], out["event_participant"], out["event_tag"]
    srcs, claims, claim_srcs, links = (
        out["event_source"],
        out["claim"],
        out["claim_source"],
        out["event_link"],
    )
    span = (END - START).days
    start_ord = START.toordinal()
    n_phr = len(w.phrases)
    for eid in range(first, last + 1):
        slug = w.categories[bisect.bisect(w.category_cum, rng.random() * w.category_cum[-1])]
        cat = CATEGORIES[slug]
        # Density grows towards the present: more is reported about recent decades.
        day = dt.date.fromordinal(start_ord + int(span * rng.random() ** 0.6))
        r = rng.random()
        if r < 0.85:
            precision = "day"
        elif r < 0.95:
            precision, day = "month", day.replace(day=1)
        else:
            precision, day = "year", day.replace(month=1, day=1)
        date = day.isoformat()
        end_date = (
            (day + dt.timedelta(days=rng.randint(1, 60))).isoformat()
            if (rng.random() < 0.05)
            else None
        )

        initiator = pick(rng, w.states, w.state_cum)
        target = pick(rng, w.states, w.state_cum)
        public_id = (
            f"{date}-{slug.replace('_', '-')}-{initiator[1].lower()}-{target[1].lower()}"
            f"-{base36(eid)}"
        )
        while target[0] == initiator[0]:
            target = pick(rng, w.states, w.state_cum)
        plist: list[tuple[int | None, int | None, str | None, str]] = [
            (initiator[0], None, None, "initiator"),
            (target[0], None, None, "target"),
        ]
        if rng.random() < 0.3:
            extra = pick(rng, w.states, w.state_cum)
            if extra[0] not in (initiator[0], target[0]):
                plist.append((extra[0], None, None, rng.choice(ROLES_EXTRA)))
        if rng.random() < 0.2:
            org = pick(rng, w.orgs, w.org_cum)
            plist.append((None, org[0], None, rng.choice(("participant", "mediator", "initiator"))))
        groups: list[str] = []
        if rng.random() < 0.05:
            group = rng.choice(GROUPS)
            groups.append(group)
            plist.append((None, None, group, "affected"))
        for pos, (sid, oid, grp, role) in enumerate(plist):
            c.participant += 1
            parts.append((c.participant, eid, pos, sid, oid, grp, role, date, public_id))

        summary = " ".join(w.phrases[int(rng.random() * n_phr)] for _ in range(9))
        words = summary[:310].rsplit(" ", 1)[0].split(" ")
        # Planted words replace a word, so their share is exact whatever the cut above.
        if rng.random() < COMMON_SHARE:
            words[int(rng.random() * len(words))] = COMMON_WORD
        if rng.random() < RARE_SHARE:
            words[int(rng.random() * len(words))] = RARE_WORD
        summary = " ".join(words).capitalize() + "."
        title = f"{cat.label}: {initiator[2]} and {target[2]}"

        place_id = place_name = lat = lon = loc_precision = loc_state = None
        place_names: list[str] = []
        r = rng.random()
        if r < 0.6:
            candidates = w.places_by_state.get(initiator[0]) or w.places_by_state.get(target[0])
            pid = rng.choice(candidates) if candidates else 1 + int(rng.random() * len(w.places))
            _, pname, psid, plat, plon = w.places[pid - 1]
            place_id, place_name, loc_state = pid, pname, psid
            lat, lon = (
                round(min(89.9, max(-89.9, plat + rng.uniform(-0.2, 0.2))), 5),
                round(min(179.9, max(-179.9, plon + rng.uniform(-0.2, 0.2))), 5),
            )
            loc_precision = rng.choice(("point", "locality", "locality", "region"))
            place_names = [pname, *w.place_aliases.get(pid, [])]
        elif r < 0.7:
            place_name, loc_state, loc_precision = initiator[2], initiator[0], "country"

        cameo = rng.choice(cat.cameo) if cat.cameo else None
        goldstein = CAMEO[cameo].goldstein if cameo in CAMEO else None
        confidence = rng.choice((None, "high", "high", "medium", "medium", "low"))
        killed = wounded = note = None
        if slug in INCIDENT_WITH_CASUALTIES and rng.random() < 0.5:
            killed, wounded = int(rng.expovariate(1 / 12)), int(rng.expovariate(1 / 25))
            if rng.random() < 0.2:
                note = "Figures from one side only; not independently verified."

        ntags = rng.choice((0, 1, 1, 2, 2, 3))
        tags = sorted(
            {w.tags[bisect.bisect(w.tag_cum, rng.random() * w.tag_cum[-1])] for _ in range(ntags)}
        )
        for tag in tags:
            tags_out.append((eid, tag, date, public_id))
        chosen = sorted({1 + int(rng.random() * w.n_sources) for _ in range(rng.randint(1, 3))})
        for pos, sid in enumerate(chosen):
            srcs.append((eid, sid, pos))

        statements: list[str] = []
        if rng.random() < 0.04:
            topic = w.tags[int(rng.random() * len(w.tags))]
            for pos, claimant in enumerate((initiator, target)):
                c.claim += 1
                statement = (
                    f"{claimant[2]} says "
                    + " ".join(w.phrases[int(rng.random() * n_phr)] for _ in range(2))
                    + "."
                )
                statements.append(statement)
                value, unit = (
                    (float(rng.randint(1, 80)), "killed") if pos and killed else (None, None)
                )
                claims.append(
                    (
                        c.claim,
                        eid,
                        pos,
                        topic,
                        claimant[0],
                        None,
                        None,
                        statement,
                        value,
                        unit,
                        date,
                    )
                )
                claim_srcs.append((c.claim, 1 + int(rng.random() * w.n_sources)))
        if eid > 100 and rng.random() < 0.03:
            c.link += 1
            other = eid - 1 - int(rng.random() * min(5000, eid - 1))
            links.append(
                (
                    c.link,
                    eid,
                    other,
                    rng.choice(("in_response_to", "follows_up", "related_to", "escalates")),
                )
            )

        # The parts app.search.searched takes, in its order, stored as it stores them.
        text = [title, summary]
        if place_name is not None:
            text.append(place_name)
        text.extend(place_names)
        text.extend(statements)
        text.extend(groups)
        text.extend(tags)
        search_text = stored_search_text(text)

        created = stamp(eid)
        deleted = stamp(eid + 10_000_000) if rng.random() < 0.002 else None
        ev.append(
            (
                eid,
                public_id,
                cat.kind.value,
                slug,
                date,
                precision,
                end_date,
                title,
                summary,
                place_id,
                place_name,
                lat,
                lon,
                loc_precision,
                loc_state,
                cameo,
                goldstein,
                confidence,
                None,
                killed,
                wounded,
                note,
                search_text,
                deleted,
                created,
                created,
            )
        )
    return out


# ---------------------------------------------------------------- database writers


# Mirrors app.events.service._state_pairs: every pair of different states of an event, lower
# id first, with the event's date and public id.
STATE_PAIRS = (
    "INSERT INTO event_state_pair (event_id, state_a, state_b, date, public_id) "
    "SELECT DISTINCT a.event_id, a.state_id, b.state_id, a.date, a.public_id "
    "FROM event_participant a JOIN event_participant b "
    "ON b.event_id = a.event_id AND a.state_id < b.state_id"
)


class Writer:
    url: str
    conn: Any

    def derive_state_pairs(self) -> int:
        """Fill event_state_pair from the participants loaded; the number of pairs."""
        return int(self.conn.execute(STATE_PAIRS).rowcount)

    def count_events(self) -> int:
        raise NotImplementedError

    def reset(self, tables: list[str]) -> None:
        raise NotImplementedError

    def drop_indexes(self, tables: Iterable[str]) -> list[str]:
        raise NotImplementedError

    def drop_search_triggers(self) -> list[str]:
        """SQLite: drop the triggers that keep the full-text index in timeline order, returning
        their definitions (`store_search_index` rebuilds it and puts them back)."""
        return []

    def insert(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    def insert_events(self, chunk: dict[str, list[tuple[Any, ...]]]) -> None:
        """Rows of every event table (`events`)."""
        for table in EVENT_TABLES:
            self.insert(table, chunk[table])

    def commit(self) -> None:
        raise NotImplementedError

    def finish(self, index_sql: list[str]) -> None:
        raise NotImplementedError


class SqliteWriter(Writer):
    def __init__(self, url: str, path: str) -> None:
        self.url = url
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=OFF")
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.execute("PRAGMA cache_size=-400000")
        self.conn.execute("PRAGMA foreign_keys=OFF")
        self.conn.execute("BEGIN")

    def count_events(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM event").fetchone()[0])

    def reset(self, tables: list[str]) -> None:
        for table in reversed(tables):
            self.conn.execute(f'DELETE FROM "{table}"')  # noqa: S608 - our own table names
        self.conn.execute("COMMIT")
        self.conn.execute("VACUUM")
        self.conn.execute("BEGIN")

    def drop_indexes(self, tables: Iterable[str]) -> list[str]:
        marks = ",".join("?" for _ in tables)
        found = self.conn.execute(
            f"SELECT name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL "  # noqa: S608
            f"AND tbl_name IN ({marks}) ORDER BY name",
            list(tables),
        ).fetchall()
        for name, _ in found:
            self.conn.execute(f'DROP INDEX "{name}"')
        return [sql for _, sql in found]

    def drop_search_triggers(self) -> list[str]:
        # Each participant's trigger re-indexes its event, looking its participants up by an
        # index dropped for the load: rebuilt once at the end instead.
        found = self.conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
            " AND name LIKE 'event_fts_timeline%' ORDER BY name"
        ).fetchall()
        for name, _ in found:
            self.conn.execute(f'DROP TRIGGER "{name}"')
        return [sql for _, sql in found]

    def insert(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        cols = COLUMNS[table].split()
        sql = (
            f'INSERT INTO "{table}" ({", ".join(cols)}) '  # noqa: S608 - our own table names
            f"VALUES ({', '.join('?' for _ in cols)})"
        )
        self.conn.executemany(sql, rows)

    def commit(self) -> None:
        self.conn.execute("COMMIT")
        self.conn.execute("BEGIN")

    def finish(self, index_sql: list[str]) -> None:
        for sql in index_sql:
            self.conn.execute(sql)
        self.conn.execute("COMMIT")
        self.conn.execute("ANALYZE")
        # The service opens the file in WAL mode, as it does in production.
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.close()


class PostgresWriter(Writer):
    def __init__(self, url: str) -> None:
        import psycopg

        self.url = url
        self.dsn = url.replace("postgresql+psycopg://", "postgresql://")
        self.conn = psycopg.connect(self.dsn)
        self.conn.execute("SET TIME ZONE 'UTC'")
        # Skip per-row foreign-key triggers while loading: the generator keeps every reference
        # valid, and CHECK constraints are still enforced.
        self.conn.execute("SET session_replication_role = replica")
        self.conn.execute("SET maintenance_work_mem = '512MB'")

    def count_events(self) -> int:
        row = self.conn.execute("SELECT count(*) FROM event").fetchone()
        return int(row[0]) if row else 0

    def reset(self, tables: list[str]) -> None:
        names = ", ".join(f'"{t}"' for t in tables)
        self.conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        self.conn.commit()

    def drop_indexes(self, tables: Iterable[str]) -> list[str]:
        found = self.conn.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = 'public' "
            "AND i.tablename = ANY(%s) AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
            "WHERE c.conname = i.indexname) ORDER BY i.indexname",
            (list(tables),),
        ).fetchall()
        for name, _ in found:
            self.conn.execute(f'DROP INDEX "{name}"')
        return [sql for _, sql in found]

    def insert(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        cols = ", ".join(COLUMNS[table].split())
        with (
            self.conn.cursor() as cur,
            cur.copy(f'COPY "{table}" ({cols}) FROM STDIN') as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def insert_events(self, chunk: dict[str, list[tuple[Any, ...]]]) -> None:
        # `event.search_actors` is kept by triggers on the participants, off for the load (the
        # replica role): each event is written with its actors instead, as the triggers would
        # set them, so that no event row is written twice.
        participants = COLUMNS["event_participant"].split()
        event_id, state_id, organisation_id = (
            participants.index(c) for c in ("event_id", "state_id", "organisation_id")
        )
        actors: dict[int, set[str]] = {}
        for row in chunk["event_participant"]:
            if row[state_id] is not None:
                actors.setdefault(row[event_id], set()).add(f"s{row[state_id]}")
            elif row[organisation_id] is not None:
                actors.setdefault(row[event_id], set()).add(f"o{row[organisation_id]}")
        ids = EVENT_COLS.index("id")
        cols = ", ".join((*EVENT_COLS, "search_actors"))
        with (
            self.conn.cursor() as cur,
            cur.copy(f'COPY "event" ({cols}) FROM STDIN') as copy,
        ):
            for row in chunk["event"]:
                copy.write_row((*row, " ".join(sorted(actors.get(row[ids], ())))))
        for table in EVENT_TABLES:
            if table != "event":
                self.insert(table, chunk[table])

    def commit(self) -> None:
        self.conn.commit()

    def finish(self, index_sql: list[str]) -> None:
        for sql in index_sql:
            self.conn.execute(sql)
        for table in COLUMNS:
            if "id" in COLUMNS[table].split():
                top = f'SELECT coalesce(max(id), 0) + 1 FROM "{table}"'  # noqa: S608
                self.conn.execute(
                    f"SELECT setval(pg_get_serial_sequence(%s, 'id'), ({top}), false)", (table,)
                )
        self.conn.commit()
        self.conn.autocommit = True
        self.conn.execute("VACUUM ANALYZE")
        self.conn.close()


def ensure_postgres_database(url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    admin = u.set(database="postgres").render_as_string(hide_password=False)
    admin = admin.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (u.database,)
        ).fetchone():
            conn.execute(f'CREATE DATABASE "{u.database}"')


def migrate(url: str) -> bool:
    """Upgrade to head; True when a revision was applied."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    from app.db import create_db_engine

    def revision() -> str | None:
        engine = create_db_engine(url)
        try:
            with engine.connect() as conn:
                return MigrationContext.configure(conn).get_current_revision()
        finally:
            engine.dispose()

    before = revision()
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    command.upgrade(config, "head")
    return revision() != before


def open_writer(url: str) -> Writer:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if not u.database or u.database == ":memory:":
            raise SystemExit("synth: give a SQLite file, not an in-memory database")
        return SqliteWriter(url, u.database)
    if u.get_backend_name() == "postgresql":
        return PostgresWriter(url)
    raise SystemExit(f"synth: unsupported database {u.get_backend_name()!r}")


def table_order() -> list[str]:
    from app.models import Base

    return [t.name for t in Base.metadata.sorted_tables]


def run(url: str, n: int, seed: int, *, reset: bool, batch: int, quiet: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    if url.startswith("postgresql"):
        ensure_postgres_database(url)
    migrate(url)
    writer = open_writer(url)
    tables = table_order()
    if writer.count_events() and not reset:
        raise SystemExit("synth: the database already holds events; pass --reset to empty it first")
    if reset:
        writer.reset(tables)
    index_sql = writer.drop_indexes(tables)
    search_triggers = writer.drop_search_triggers()

    rng = random.Random(seed)
    world, ref_rows = build_world(rng, n)
    for table in tables:
        if table in ref_rows:
            writer.insert(table, ref_rows[table])
    writer.commit()

    totals = {t: len(r) for t, r in ref_rows.items()}
    counters = Counters()
    done = 0
    t_gen = time.perf_counter()
    while done < n:
        last = min(n, done + batch)
        chunk = events(rng, world, done + 1, last, counters)
        writer.insert_events(chunk)
        for table in EVENT_TABLES:
            totals[table] = totals.get(table, 0) + len(chunk[table])
        writer.commit()
        done = last
        if not quiet:
            rate = done / max(time.perf_counter() - t_gen, 1e-9)
            say(f"\rsynth: {done:,}/{n:,} events ({100 * done / n:.0f} %), {rate:,.0f}/s ", end="")
    totals["event_state_pair"] = writer.derive_state_pairs()
    writer.commit()
    if not quiet:
        say(f"\nsynth: rebuilding {len(index_sql)} indexes and statistics")
    writer.finish(index_sql)
    if search_triggers:
        store_search_index(url, search_triggers, quiet=quiet)
    totals["event_document"] = store_documents(url, quiet=quiet)
    totals.update(store_counts(url, quiet=quiet))
    totals["seconds"] = round(time.perf_counter() - t0, 1)
    return totals


def store_search_index(url: str, triggers: list[str], *, quiet: bool) -> None:
    """SQLite: the full-text index in timeline order, rebuilt with the API's own code, and its
    triggers put back."""
    from sqlalchemy import text

    from app.db import create_db_engine, create_session_factory
    from app.timeline import search_index

    engine = create_db_engine(url)
    t0 = time.perf_counter()
    try:
        with create_session_factory(engine)() as session:
            search_index.rebuild(session)
            for sql in triggers:
                session.execute(text(sql))
            session.commit()
    finally:
        engine.dispose()
    if not quiet:
        say(f"synth: search index rebuilt in {time.perf_counter() - t0:.1f} s")


def store_documents(url: str, *, quiet: bool) -> int:
    """The served JSON of every event, as the API stores it at write time (the rows above were
    written with Core, past the listeners that keep it): with the API's own code."""
    from app.db import create_db_engine, create_session_factory
    from app.events import documents

    engine = create_db_engine(url)
    done = 0
    t0 = time.perf_counter()
    try:
        with create_session_factory(engine)() as session:
            for done, total in documents.fill(session):
                if done % 20_000 < documents.BATCH or done == total:
                    session.commit()
                    if not quiet:
                        rate = done / max(time.perf_counter() - t0, 1e-9)
                        say(f"\rsynth: {done:,}/{total:,} event documents, {rate:,.0f}/s ", end="")
            session.commit()
        if done:
            # The documents come after the statistics were gathered, and autovacuum may be off
            # (it is on this benchmark's PostgreSQL): without fresh statistics the planner
            # takes the table for empty and a page's join to it scans all of it.
            if engine.dialect.name == "postgresql":
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.exec_driver_sql("VACUUM ANALYZE event_document")
            else:
                with engine.begin() as conn:
                    conn.exec_driver_sql("ANALYZE event_document")
    finally:
        engine.dispose()
    if not quiet and done:
        say("")
    return done


def store_counts(url: str, *, quiet: bool) -> dict[str, int]:
    """The facet counts (app/timeline/counts.py), which the write step keeps but the rows above
    bypassed: rebuilt in one pass with the API's own code, then their statistics."""
    from app.db import create_db_engine, create_session_factory
    from app.timeline import counts

    engine = create_db_engine(url)
    t0 = time.perf_counter()
    try:
        with create_session_factory(engine)() as session:
            written = counts.rebuild(
                session,
                None if quiet else lambda what, n: say(f"synth: {n:,} {what} rows"),
            )
            session.commit()
        tables = ("facet_event", "facet_count", "facet_actor_count")
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for table in tables:
                    conn.exec_driver_sql(f"VACUUM ANALYZE {table}")
        else:
            with engine.begin() as conn:
                for table in tables:
                    conn.exec_driver_sql(f"ANALYZE {table}")
    finally:
        engine.dispose()
    if not quiet:
        say(f"synth: facet counts rebuilt in {time.perf_counter() - t0:.1f} s")
    return written


def default_url() -> str:
    return get_settings().database_url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.synth",
        description="Fill a database with N synthetic, realistic timeline events for the "
        "benchmark. The database is migrated first (alembic upgrade head); a missing "
        "PostgreSQL database is created.",
    )
    parser.add_argument(
        "--upgrade-only",
        action="store_true",
        help="generate nothing: migrate an existing benchmark database and store the event"
        " documents it lacks (data made by an older version)",
    )
    parser.add_argument(
        "--rebuild-counts",
        action="store_true",
        help="with --upgrade-only: rebuild the facet counts even if no migration was applied"
        " (they are rebuilt when one was, since a revision may add a kept level)",
    )
    parser.add_argument(
        "--events",
        type=int,
        metavar="N",
        help="number of events to generate (e.g. 10000 or 1000000); required unless --upgrade-only",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=42,
        help="random seed; the same seed always gives the same rows (default 42)",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        metavar="URL",
        help="SQLAlchemy or plain postgresql:// URL; default: DATABASE_URL, "
        "else the service's default SQLite file var/timeline.db",
    )
    parser.add_argument(
        "--reset",
        action="store_true",
        help="empty every table first (otherwise a database that already holds events is refused)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=20_000,
        metavar="K",
        help="events generated and written per transaction (default 20000)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress, summary line only")
    args = parser.parse_args(argv)
    url = normalise_database_url(args.database_url or default_url())
    if args.upgrade_only:
        # The counts are the slow part (minutes at 1M): rebuilt only when they may be stale.
        rebuild = migrate(url) or args.rebuild_counts
        stored = store_documents(url, quiet=args.quiet)
        if rebuild:
            store_counts(url, quiet=args.quiet)
        print(
            f"synth: migrated {make_safe(url)}; {stored:,} event documents stored, facet counts"
            f" {'rebuilt' if rebuild else 'kept (no migration applied)'}"
        )
        return 0
    if args.events is None or args.events < 1:
        parser.error("--events N (at least 1) is required, unless --upgrade-only")
    totals = run(url, args.events, args.seed, reset=args.reset, batch=args.batch, quiet=args.quiet)
    shown = make_safe(url)
    print(
        f"synth: {totals['event']:,} events, {totals['event_participant']:,} participants "
        f"({totals['event_state_pair']:,} state pairs), "
        f"{totals['event_tag']:,} tags, {totals['event_source']:,} event sources, "
        f"{totals['claim']:,} claims, {totals['state']} states, {totals['organisation']} "
        f"organisations, {totals['membership']:,} memberships into {shown} "
        f"(seed {args.seed}) in {totals['seconds']} s"
    )
    return 0


def make_safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def sqlite_path(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return Path(u.database) if u.get_backend_name() == "sqlite" and u.database else None


def iter_chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


if __name__ == "__main__":
    raise SystemExit(main())
