"""Counted attempts at guessing a secret (a password, later a code or an emailed token)."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class AttemptCount:
    """How many attempts the current window holds, this one included, and when it ends."""

    count: int
    window_ends_at: datetime
