from typing import Annotated

from pydantic import Field, StringConstraints

from app.timeline.schemas import TimelineFilters


class StreamQuery(TimelineFilters):
    """The timeline's filters, and where to start."""

    since: Annotated[str, StringConstraints(max_length=100)] | None = Field(
        default=None,
        description="Start after this change-feed position (`position` or `next_since` from"
        " `GET /v1/changes`, or an event's `id` from an earlier stream); a `Last-Event-ID`"
        " header wins over it. Omit both to receive only changes made from now on.",
    )


# What a client sees on the wire: one comment when the stream opens, one event per change
# (`id` the change's feed position, `data` the change as `GET /v1/changes` serves it), and
# heartbeat comments.
EXAMPLE = (
    ": stream open\n"
    "retry: 2000\n"
    "\n"
    "id: cmV2OjQ1Mg\n"
    'data: {"revision":452,"resource":"event","id":"AD-086","version":1,"operation":"create",'
    '"actor":"newsroom-editor","at":"2026-12-07T02:40:11.120301+00:00","position":"cmV2OjQ1Mg",'
    '"data":{"id":"AD-086","title":"…"}}\n'
    "\n"
    ": heartbeat\n"
    "\n"
)
