"""The ceiling: a bare FastAPI endpoint served with the same server settings as the service.

Its OpenTelemetry is off as the service's is by default (`app.main.TELEMETRY_OFF`): left on,
FastAPI looks for configured providers on every request, a cost the ceiling would carry and
the service not. The configuration is written out rather than imported: importing the service
would load its code into this process, and with it imported this endpoint served about a
tenth fewer requests in one alternating run (six noisy 5 s rounds; a larger heap makes the
garbage collector's full passes longer).
"""

from fastapi import FastAPI

app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})


@app.get("/bare")
async def bare() -> dict[str, bool]:
    return {"ok": True}
