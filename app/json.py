from typing import Any

import orjson
from fastapi.responses import Response


class JSONBytes(Response):
    """JSON serialised once by orjson, skipping response_model validation on hot read paths.

    Routes still declare `response_model` for OpenAPI; the tests check real responses against it.
    """

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
