"""Sign-ins and failed sign-ins over the last hour, for the admin console's overview."""

from collections import deque

from app.core.clock import Clock
from app.core.events import SecurityEvent

_WINDOW_MINUTES = 60


class RecentSignIns:
    """Counts per minute of this process's sign-ins, kept for an hour: a security-event sink
    beside the metrics, whose counters only ever grow and cannot tell the last hour apart."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        # (minute, succeeded, failed), oldest first.
        self._minutes: deque[list[int]] = deque()

    def _minute(self) -> int:
        return int(self._clock.now().timestamp() // 60)

    def _drop_old(self, now: int) -> None:
        while self._minutes and self._minutes[0][0] <= now - _WINDOW_MINUTES:
            self._minutes.popleft()

    def emit(self, event: SecurityEvent, **fields: object) -> None:
        if event is SecurityEvent.LOGIN_SUCCEEDED:
            column = 1
        elif event is SecurityEvent.LOGIN_FAILED:
            column = 2
        else:
            return
        now = self._minute()
        self._drop_old(now)
        if not self._minutes or self._minutes[-1][0] != now:
            self._minutes.append([now, 0, 0])
        self._minutes[-1][column] += 1

    def last_hour(self) -> tuple[int, int]:
        """Sign-ins and failed sign-ins in the last 60 minutes."""
        self._drop_old(self._minute())
        return sum(m[1] for m in self._minutes), sum(m[2] for m in self._minutes)
