"""The login storm's reference: a bare FastAPI sign-in that only checks the password.

It uses the service's hasher with the service's settings (its threads, their priority, the
argon2id costs) against one stored hash, and does nothing else: no account read, no lockout,
no session, no tokens, no logs. What the storm reaches here is what this machine allows a
FastAPI login with the load generator and the probe on the same cores.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException

from app.core.config import Settings
from app.core.passwords import PasswordHasher
from app.main import TELEMETRY_OFF
from app.schemas.auth import LoginRequest

hasher = PasswordHasher.from_settings(Settings())
stored_hash: dict[str, str] = {}


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    try:
        stored_hash["hash"] = await hasher.hash(os.environ["LOGIN_PASSWORD"])
        yield
    finally:
        hasher.close()


app = FastAPI(lifespan=lifespan, telemetry=TELEMETRY_OFF)


@app.post("/api/v1/auth/login")
async def login(body: LoginRequest) -> dict[str, str]:
    valid, _ = await hasher.verify(body.password, stored_hash["hash"])
    if not valid:
        raise HTTPException(401)
    return {"status": "signed in"}


@app.get("/bare")
async def bare() -> dict[str, bool]:
    return {"ok": True}
