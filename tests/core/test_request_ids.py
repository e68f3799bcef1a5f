"""Generated request ids stay unique within a process and across forked workers."""

import os
import re

from app.core.request_ids import new_request_id

_HEX_32 = re.compile(r"[0-9a-f]{32}")


def test_ids_are_32_hex_characters_and_never_repeat() -> None:
    ids = [new_request_id() for _ in range(1000)]
    assert all(_HEX_32.fullmatch(request_id) for request_id in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_worker_draws_a_prefix_of_its_own() -> None:
    parent_id = new_request_id()
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:
        os.write(writer, new_request_id().encode())
        os._exit(0)
    os.close(writer)
    os.waitpid(child, 0)
    child_id = os.read(reader, 64).decode()
    os.close(reader)
    assert _HEX_32.fullmatch(child_id)
    assert child_id[:16] != parent_id[:16]
