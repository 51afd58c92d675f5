"""The seed files read directly, as an independent oracle for what the API must return."""

import datetime as dt
from functools import cache
from pathlib import Path
from typing import Any

import yaml

SEED = Path(__file__).resolve().parent.parent / "seed"


@cache
def events() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted((SEED / "events").glob("*.yaml")):
        out.extend(yaml.safe_load(path.read_text(encoding="utf-8")))
    return out


@cache
def memberships() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = yaml.safe_load((SEED / "memberships.yaml").read_text("utf-8"))
    return data


def in_order(selected: list[dict[str, Any]], *, desc: bool = False) -> list[str]:
    return [e["id"] for e in sorted(selected, key=lambda e: (e["date"], e["id"]), reverse=desc)]


def codes(event: dict[str, Any], role: str | None = None) -> set[str]:
    out = set()
    for p in event["participants"]:
        if role is None or p["role"] == role:
            out.add(p.get("state") or p.get("organisation") or "")
    return out - {""}


def member_on(state: str, org: str, day: dt.date) -> bool:
    for m in memberships():
        if m["state"] != state or m["organisation"] != org:
            continue
        if m["status"] not in ("founding_member", "member") or m["start_on"] > day:
            continue
        if m["end"] == "open" or (m["end"] == "dated" and m["end_on"] > day):
            return True
    return False
