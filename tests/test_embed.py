"""The embed page (`/embed`), its oEmbed answer (`/oembed`) and the headers that let only the
embed be framed.

The oEmbed answer is checked against a model of the specification written here from
https://oembed.com/ (sections 2.3.4 and 2.3.5), not against the app's own schema, and its HTML
against what WordPress keeps of an answer from a provider it does not list."""

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Literal, Self
from urllib.parse import parse_qs, parse_qsl, urlsplit
from xml.etree import ElementTree

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from app.config import Settings
from app.main import create_app

BASE = "http://testserver"
CRISIS = "between=MLI,DZA&from=2025-04&to=2025-04"


class OEmbedSpec(BaseModel):
    """An oEmbed 1.0 response of type `rich`, as the specification defines it."""

    # Providers may add fields of their own (2.3.4): allowed, not required.
    model_config = ConfigDict(extra="allow", strict=True)

    type: Literal["rich"]
    version: Literal["1.0"]
    title: str | None = None
    author_name: str | None = None
    author_url: str | None = None
    provider_name: str | None = None
    provider_url: str | None = None
    cache_age: int | None = None
    thumbnail_url: str | None = None
    thumbnail_width: int | None = None
    thumbnail_height: int | None = None
    # Required for `rich` (2.3.4.4).
    html: str
    width: int
    height: int

    @model_validator(mode="after")
    def _thumbnail_all_or_none(self) -> Self:
        given = [self.thumbnail_url, self.thumbnail_width, self.thumbnail_height]
        if any(v is not None for v in given) and not all(v is not None for v in given):
            raise ValueError("thumbnail_url, thumbnail_width and thumbnail_height go together")
        return self


class Elements(HTMLParser):
    """The elements of an HTML fragment, with their attributes, and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def elements(html: str) -> Elements:
    parser = Elements()
    parser.feed(html)
    return parser


def oembed(client: TestClient, url: str, **params: str | int) -> dict[str, object]:
    response = client.get("/oembed", params={"url": url, "format": "json", **params})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, object] = response.json()
    return body


def directives(policy: str) -> dict[str, list[str]]:
    parts = (part.split() for part in policy.split(";") if part.strip())
    return {name: sources for name, *sources in parts}


class TestOEmbed:
    def test_a_page_address_embeds_its_view(self, client: TestClient) -> None:
        body = oembed(client, f"{BASE}/?{CRISIS}&lanes=pair")
        answer = OEmbedSpec.model_validate(body)
        assert answer.title == "Diplomatic Timeline: MLI and DZA · 2025-04"
        assert answer.provider_url == f"{BASE}/"
        found = elements(answer.html)
        # What WordPress keeps from a provider it does not list: a, blockquote and iframe only,
        # and an iframe must be there (wp_filter_oembed_result).
        assert {tag for tag, _ in found.found} == {"iframe", "blockquote", "a"}
        iframe = next(attrs for tag, attrs in found.found if tag == "iframe")
        src = urlsplit(iframe["src"] or "")
        assert (src.scheme, src.netloc, src.path) == ("http", "testserver", "/embed")
        assert parse_qsl(src.query) == parse_qsl(f"{CRISIS}&lanes=pair")
        assert (iframe["width"], iframe["height"]) == (str(answer.width), str(answer.height))
        assert iframe["title"] == answer.title
        link = next(attrs for tag, attrs in found.found if tag == "a")
        assert link["href"] == f"{BASE}/?{CRISIS}&lanes=pair"
        assert "CC BY 4.0" in "".join(found.text)

    def test_an_embed_address_embeds_itself(self, client: TestClient) -> None:
        answer = OEmbedSpec.model_validate(oembed(client, f"{BASE}/embed?state=NER&view=story"))
        iframe = next(a for t, a in elements(answer.html).found if t == "iframe")
        assert iframe["src"] == f"{BASE}/embed?state=NER&amp;view=story".replace("&amp;", "&")
        # The full page has no story view: its link drops `view`.
        link = next(a for t, a in elements(answer.html).found if t == "a")
        assert link["href"] == f"{BASE}/?state=NER"

    @pytest.mark.parametrize(("maxwidth", "maxheight"), [(400, 300), (1, 1), (5000, 5000)])
    def test_maxwidth_and_maxheight_are_honoured(
        self, client: TestClient, maxwidth: int, maxheight: int
    ) -> None:
        answer = OEmbedSpec.model_validate(
            oembed(client, f"{BASE}/?{CRISIS}", maxwidth=maxwidth, maxheight=maxheight)
        )
        assert 0 < answer.width <= maxwidth and 0 < answer.height <= maxheight
        iframe = next(a for t, a in elements(answer.html).found if t == "iframe")
        assert iframe["width"] == str(answer.width) and iframe["height"] == str(answer.height)

    def test_the_html_escapes_what_the_address_holds(self, client: TestClient) -> None:
        answer = OEmbedSpec.model_validate(oembed(client, f'{BASE}/?q="><script>x</script>'))
        assert "<script>" not in answer.html
        assert [t for t, _ in elements(answer.html).found] == ["iframe", "blockquote", "a"]

    @pytest.mark.parametrize(
        "url",
        [
            "https://elsewhere.example/?state=NER",
            f"{BASE}/v1/timeline?state=NER",
            f"{BASE}/docs",
            "ftp://testserver/",
            "not a url",
        ],
    )
    def test_an_address_that_is_not_ours_is_404(self, client: TestClient, url: str) -> None:
        response = client.get("/oembed", params={"url": url, "format": "json"})
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"

    def test_xml_holds_the_same_answer(self, client: TestClient) -> None:
        """The specification's XML form, read with the standard library's parser."""
        params = {"url": f"{BASE}/?between=MLI,DZA", "maxwidth": "500"}
        json_answer = client.get("/oembed", params={**params, "format": "json"}).json()
        response = client.get("/oembed", params={**params, "format": "xml"})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/xml")
        root = ElementTree.fromstring(response.content)  # noqa: S314 - our own answer
        assert root.tag == "oembed"
        assert {child.tag: child.text for child in root} == {
            k: str(v) for k, v in json_answer.items()
        }

    def test_another_format_is_a_422_naming_it(self, client: TestClient) -> None:
        response = client.get("/oembed", params={"url": f"{BASE}/", "format": "yaml"})
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["query", "format"]

    @pytest.mark.parametrize(
        ("query", "parameter"),
        [({}, "url"), ({"url": f"{BASE}/", "maxwidth": "0"}, "maxwidth")],
    )
    def test_bad_parameters_are_named(
        self, client: TestClient, query: dict[str, str], parameter: str
    ) -> None:
        response = client.get("/oembed", params=query)
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert ["query", parameter] in [e["loc"][:2] for e in response.json()["errors"]]


class TestDiscovery:
    @pytest.mark.parametrize("path", [f"/?{CRISIS}&event=x", "/", f"/embed?{CRISIS}"])
    def test_the_page_names_its_oembed_answer(self, client: TestClient, path: str) -> None:
        page = client.get(path)
        links = [
            attrs
            for tag, attrs in elements(page.text).found
            if tag == "link" and attrs.get("type") == "application/json+oembed"
        ]
        assert len(links) == 1 and links[0]["rel"] == "alternate"
        href = links[0]["href"] or ""
        assert href.startswith(f"{BASE}/oembed?")  # the full endpoint URL (spec 4)
        query = parse_qs(urlsplit(href).query)
        assert query["url"] == [f"{BASE}{path}"] and query["format"] == ["json"]
        answer = OEmbedSpec.model_validate(client.get(href).json())
        assert answer.html


class TestEmbedPage:
    def test_the_embed_names_its_view_and_links_back(self, client: TestClient) -> None:
        response = client.get(f"/embed?{CRISIS}&zoom=2025-04-01..2025-04-10")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        title = "Diplomatic Timeline: MLI and DZA · 2025-04"
        assert f"<title>{title}</title>" in response.text
        assert re.search(rf"<h1><a [^>]*>{re.escape(title)}</a></h1>", response.text)
        backs = {a["href"] for t, a in elements(response.text).found if t == "a"}
        assert backs == {f"{BASE}/?{CRISIS}&amp;zoom=2025-04-01..2025-04-10".replace("&amp;", "&")}
        assert "CC BY 4.0" in response.text

    def test_a_value_is_escaped_in_the_page(self, client: TestClient) -> None:
        response = client.get("/embed", params={"q": "</title><script>alert(1)</script>"})
        assert "<script>alert(1)" not in response.text

    @pytest.mark.parametrize("view", ["", "&view=story"])
    def test_every_file_the_embed_loads_is_served_here(self, client: TestClient, view: str) -> None:
        html = client.get(f"/embed?{CRISIS}{view}").text
        assets = [
            a.get("src") or a.get("href")
            for t, a in elements(html).found
            if (t == "script" and a.get("src")) or (t == "link" and a.get("rel") == "stylesheet")
        ]
        assert assets and all(asset and asset.startswith("/static/") for asset in assets)
        for asset in assets:
            assert client.get(str(asset)).status_code == 200, asset
        if view:
            assert "/static/vendor/timelinejs/js/timeline.js" in assets
            css = client.get("/static/vendor/timelinejs/css/timeline.css").text
            # The stylesheet's icon font, in the first format it lists that browsers read.
            assert client.get("/static/vendor/timelinejs/css/icons/tl-icons.ttf").status_code == 200
            assert "fonts.googleapis" not in css and "cdn.knightlab" not in css

    def test_only_listed_vendor_files_are_served(self, client: TestClient) -> None:
        for path in ("embed/index.html", "css/fonts/font.default.css", "js/timeline.js.map"):
            response = client.get(f"/static/vendor/timelinejs/{path}")
            assert response.status_code == 404, path


class TestFraming:
    def test_the_embed_may_be_framed_by_any_site_by_default(self, client: TestClient) -> None:
        response = client.get(f"/embed?{CRISIS}")
        policy = directives(response.headers["content-security-policy"])
        assert policy["frame-ancestors"] == ["*"]
        assert "x-frame-options" not in response.headers
        assert policy["script-src"] == ["'self'"]
        assert policy["connect-src"] == ["'self'"]
        assert policy["default-src"] == ["'none'"]

    def test_the_story_view_allows_timelinejs_handler_only(self, client: TestClient) -> None:
        policy = directives(
            client.get(f"/embed?{CRISIS}&view=story").headers["content-security-policy"]
        )
        # The hash of TimelineJS's `onclick='void(0)'` and nothing else inline.
        assert policy["script-src"] == [
            "'self'",
            "'unsafe-hashes'",
            "'sha256-97l24HYIWEdSIQ8PoMHzpxiGCZuyBDXtN19RPKFsOgk='",
        ]
        assert "'unsafe-inline'" not in policy["script-src"]

    @pytest.mark.parametrize("path", ["/", "/docs", "/oembed?url=http://testserver/"])
    def test_every_other_page_keeps_deny(self, client: TestClient, path: str) -> None:
        response = client.get(path)
        assert response.headers["x-frame-options"] == "DENY"
        assert directives(response.headers["content-security-policy"])["frame-ancestors"] == [
            "'none'"
        ]


@pytest.fixture(scope="module")
def newsroom_only(database_url: str) -> Iterator[TestClient]:
    settings = Settings(
        database_url=database_url,
        webhook_worker="off",
        embed_frame_ancestors="https://news.example, https://*.news.example",  # type: ignore[arg-type]
    )
    with TestClient(create_app(settings)) as client:
        yield client


class TestFrameAncestorsSetting:
    def test_the_setting_names_who_may_frame(self, newsroom_only: TestClient) -> None:
        response = newsroom_only.get(f"/embed?{CRISIS}")
        assert directives(response.headers["content-security-policy"])["frame-ancestors"] == [
            "https://news.example",
            "https://*.news.example",
        ]
        assert newsroom_only.get("/").headers["x-frame-options"] == "DENY"

    @pytest.mark.parametrize("value", ["https://a.example; script-src *", "'self' x", '"x"'])
    def test_a_value_that_is_not_one_source_is_refused(self, value: str) -> None:
        with pytest.raises(ValidationError, match="EMBED_FRAME_ANCESTORS"):
            Settings(embed_frame_ancestors=[value])
