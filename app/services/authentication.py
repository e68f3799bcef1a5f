"""Who is calling: access-token verification plus session and account liveness."""

from app.core.clock import Clock
from app.core.errors import InvalidToken, SessionRevoked
from app.core.tokens import TokenCodec
from app.domain.principals import Principal
from app.services.liveness import Liveness


class Authenticator:
    def __init__(self, *, tokens: TokenCodec, liveness: Liveness, clock: Clock) -> None:
        self._tokens = tokens
        self._liveness = liveness
        self._clock = clock

    async def authenticate(self, access_token: str) -> Principal:
        """Verify an access token and that its session and user are still live and active.

        The signature is checked once per distinct token (TokenCodec remembers verified ones)
        and the type and lifetime on every call; the session and the account come from the
        liveness cache (see Liveness).
        """
        now = self._clock.now()
        claims = self._tokens.decode(access_token, expected_type="access", now=now)
        session = await self._liveness.session(claims.session_id, user_id=claims.user_id)
        if session is None:
            raise InvalidToken
        if not session.is_live(now):
            raise SessionRevoked
        account = await self._liveness.account(claims.user_id)
        if account is None or not account.is_active:
            raise SessionRevoked
        return Principal(account=account, session_id=session.id)
