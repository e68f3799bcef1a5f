"""Request and response bodies for sign-in, refresh and sign-out."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.tokens import MAX_TOKEN_LENGTH
from app.schemas.user import Password

TokenString = Annotated[str, Field(min_length=1, max_length=MAX_TOKEN_LENGTH)]
# Any text is accepted (a malformed email is just wrong credentials); the sign-in service
# normalises it as sign-up does.
SignInEmail = Annotated[str, Field(min_length=1, max_length=254)]


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: SignInEmail
    password: Password


class LoginForm(BaseModel):
    """The OAuth2 password grant form; `username` carries the email."""

    model_config = ConfigDict(extra="ignore")

    grant_type: Annotated[str | None, Field(pattern=r"^password$")] = None
    username: SignInEmail
    password: Password
    scope: Annotated[str, Field(max_length=1024)] = ""


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: TokenString


class LogoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: TokenString | None = None


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
