"""The ceiling: a bare FastAPI endpoint served with the same server settings as the service.

Its OpenTelemetry is off as the service's is by default: left on, FastAPI looks for configured
providers on every request, a cost the ceiling would carry and the service not.
"""

from fastapi import FastAPI

app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})


@app.get("/bare")
async def bare() -> dict[str, bool]:
    return {"ok": True}
