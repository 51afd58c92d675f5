"""The physical limit: bare FastAPI returning a small constant JSON, served like the real app."""

from fastapi import FastAPI

app = FastAPI()
PAYLOAD = {"status": "ok", "service": "timeline", "version": 1}


@app.get("/ping")
async def ping() -> dict[str, object]:
    return PAYLOAD
