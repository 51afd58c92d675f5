import datetime as dt
import ipaddress
import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, StringConstraints

from app.addresses import address_allowed
from app.schemas import InputModel, Name, ReadModel, Shape

# Names that are never a public web site's (RFC 6761, 6762, 7686, 8375; ICANN's .internal).
SPECIAL_USE = ("localhost", "local", "test", "invalid", "example", "onion", "internal", "arpa")
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOST_NAME = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
_TOP_LEVEL = re.compile(r"^([a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f]")
_DOTTED = re.compile(r"^[0-9.]+$")


def citation_problem(url: str) -> str | None:
    """Why `url` cannot be cited, or None: it must be an absolute http(s) URL that any client
    parses, naming a public host (a registrable DNS name or a public IP address), with no user
    name or password. Nothing is resolved: a citation is checked as text."""
    if _UNSAFE.search(url):
        return "it contains spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"it cannot be parsed ({exc})"
    if not url.startswith(("http://", "https://")):
        return "it must start with http:// or https://"
    if "@" in parts.netloc:
        return "it must not contain a user name or password"
    if port == 0:
        return "its port is 0"
    host = parts.hostname or ""
    if not host:
        return "it has no host"
    if "[" in parts.netloc:
        if "%" in host:
            return "its IPv6 address carries a zone id, which means nothing outside one machine"
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError:
            return f"its host [{host}] is not an IPv6 address"
        return None if address_allowed(address, []) else "its host is not a public address"
    if not _DOTTED.match(host):
        return _name_problem(host)
    try:
        address4 = ipaddress.IPv4Address(host)
    except ValueError:
        return f"its host {host!r} is not an IPv4 address"
    return None if address_allowed(address4, []) else "its host is not a public address"


def _name_problem(host: str) -> str | None:
    ascii_host = host.removesuffix(".")
    if not ascii_host.isascii():
        try:
            ascii_host = ascii_host.encode("idna").decode("ascii")
        except UnicodeError:
            return f"its host {host!r} is not a valid domain name"
    if len(ascii_host) > 253 or not _HOST_NAME.match(ascii_host):
        return f"its host {host!r} is not a valid domain name"
    labels = ascii_host.split(".")
    if len(labels) < 2 or not _TOP_LEVEL.match(labels[-1]):
        return f"its host {host!r} is not a public domain name (such as example.org)"
    if labels[-1] in SPECIAL_USE or ascii_host.endswith(".home.arpa"):
        return f"its host {host!r} is a special-use name, not a public web site"
    return None


def _citable(url: str) -> str:
    problem = citation_problem(url)
    if problem is not None:
        raise ValueError(
            f"not a citable URL: {problem}; give the absolute http:// or https:// address of"
            " a public page, such as https://www.example.org/news/report"
        )
    return url


Url = Annotated[
    str,
    StringConstraints(max_length=2000),
    AfterValidator(_citable),
    Field(
        description="The absolute http:// or https:// URL of a public page: a public domain"
        " name or address, no user name or password.",
        json_schema_extra={"format": "uri", "pattern": r"^https?://\S+$"},
        examples=[
            "https://www.devdiscourse.com/article/law-order/3330554-algerian-army-downs-intruding-surveillance-drone"
        ],
    ),
]


class SourceIn(InputModel):
    """A published text that supports an event, a membership or a claim. The URL is its key."""

    url: Url
    publisher: Name = Field(examples=["Reuters via Devdiscourse"])
    title: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    published_on: dt.date | None = None
    language: (
        Annotated[
            str,
            Shape(
                r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$",
                "{value} is not a language code: use an ISO 639-1 code such as en or fr,"
                " optionally with a region or script such as pt-BR",
            ),
        ]
        | None
    ) = Field(default=None, description="ISO 639-1 code.", examples=["en"])


class SourceRead(ReadModel):
    url: str
    publisher: str
    title: str | None
    published_on: dt.date | None
    language: str | None


class SourceDetail(SourceRead):
    id: int


class SourceList(ReadModel):
    items: list[SourceDetail]
    total: int
