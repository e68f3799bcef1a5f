"""Random identifiers stay unique across forked workers (uvicorn and gunicorn fork them)."""

import os
import re
from collections.abc import Callable

import pytest

from app.api.edge.request_context import new_request_id
from app.core.tokens import new_token_ids


def _drawn_in_forked_child(draw: Callable[[], list[str]]) -> list[str]:
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.write(writing, "\n".join(draw()).encode())
        finally:
            os._exit(0)
    os.close(writing)
    with os.fdopen(reading) as pipe:
        drawn = pipe.read().split("\n")
    os.waitpid(child, 0)
    return drawn


@pytest.mark.parametrize(
    "draw",
    [lambda: new_token_ids(8), lambda: [new_request_id() for _ in range(8)]],
    ids=["token ids", "request ids"],
)
def test_a_forked_child_draws_other_identifiers_than_its_parent(
    draw: Callable[[], list[str]],
) -> None:
    draw()
    in_child = _drawn_in_forked_child(draw)
    in_parent = draw()
    assert len(in_child) == len(in_parent) == 8
    assert not set(in_child) & set(in_parent)


def test_request_ids_are_distinct_128_bit_hex() -> None:
    drawn = [new_request_id() for _ in range(1000)]
    assert len(set(drawn)) == len(drawn)
    assert all(re.fullmatch(r"[0-9a-f]{32}", request_id) for request_id in drawn)
