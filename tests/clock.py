"""A test clock: the system time shifted by an offset the test moves forward."""

from datetime import UTC, datetime, timedelta


class OffsetClock:
    """The system time shifted by an adjustable offset; tests move it forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)
