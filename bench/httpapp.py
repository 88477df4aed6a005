"""A bare FastAPI application for the HTTP baseline (served by uvicorn in its own process)."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.get("/ping")
async def ping() -> dict[str, str]:
    return {"status": "ok"}
