"""The ceiling: a bare FastAPI endpoint served with the same server settings as the service."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/bare")
async def bare() -> dict[str, bool]:
    return {"ok": True}
