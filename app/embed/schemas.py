from typing import Literal

from pydantic import Field

from app.schemas import ReadModel


class OEmbed(ReadModel):
    """An oEmbed 1.0 `rich` response (https://oembed.com/, section 2.3.4)."""

    type: Literal["rich"] = "rich"
    version: Literal["1.0"] = "1.0"
    title: str = Field(description="The view's name, from its filters.")
    provider_name: str
    provider_url: str
    html: str = Field(
        description="An `<iframe>` showing the view (the embed page), then a `<blockquote>` that"
        " links to it: what WordPress keeps of an oEmbed answer from a provider it does not list."
    )
    width: int
    height: int
    cache_age: int = Field(description="Seconds a consumer may keep this answer.")
