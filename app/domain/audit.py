"""The audit trail's entries: what happened to an account, and when."""

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """A security event of one account, as kept: its name, time and the details that name no
    person (session ids, counts, who acted by id), never an address, a token or a password."""

    user_id: int
    event: str
    at: datetime
    details: dict[str, object] = field(default_factory=dict)
