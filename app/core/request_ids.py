"""Request ids: unique without a system call each.

`secrets.token_hex` reads the kernel's random source on every call, and on the virtual machines
this runs on a system call costs several microseconds, a tenth of an authenticated request. A
request id needs to be unique, not unguessable (clients may choose their own), so it is a
random prefix drawn once per process followed by a counter.
"""

import itertools
import os
import secrets


class _RequestIds:
    def __init__(self) -> None:
        self._start()
        # A forked worker must not repeat its parent's ids.
        os.register_at_fork(after_in_child=self._start)

    def _start(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._numbers = itertools.count()

    def next(self) -> str:
        """32 hexadecimal characters."""
        return f"{self._prefix}{next(self._numbers):016x}"


_IDS = _RequestIds()


def new_request_id() -> str:
    """An id no other request has had: the prefix is 64 random bits per process."""
    return _IDS.next()
