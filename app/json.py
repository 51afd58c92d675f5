from typing import Any

import orjson
from fastapi.responses import JSONResponse


class JSONBytes(JSONResponse):
    """JSON serialised once by orjson, skipping response_model validation on hot read paths.

    Routes still declare `response_model` for OpenAPI; the tests check real responses against it.
    A JSONResponse subclass because FastAPI documents the response_model only for those: any
    other response class is documented as a bare string.
    """

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)

    @classmethod
    def from_bytes(cls, body: bytes, headers: dict[str, str] | None = None) -> "JSONBytes":
        """A response whose body is already serialised (from a cache or a stored replay)."""
        response = cls(None, headers=headers)
        response.body = body
        response.headers["content-length"] = str(len(body))
        return response
