"""The plan the reference servers play: the steps made as they are sent equal the full plan."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rxstream.server._faults import Faults, Send, plan


@given(
    count=st.integers(0, 60),
    start=st.integers(0, 10),
    seed=st.integers(0, 100),
    reorder=st.integers(0, 8),
    drop=st.integers(0, 3),
    connection=st.integers(0, 2),
)
def test_a_plan_without_per_chunk_faults_is_the_full_plan_made_lazily(
    count: int, start: int, seed: int, reorder: int, drop: int, connection: int
) -> None:
    lazy = Faults(seed=seed, reorder=reorder, drop=drop)
    # A duplicate probability too small to ever hit takes the path that builds the whole list.
    full = Faults(seed=seed, reorder=reorder, drop=drop, duplicate=1e-300)
    steps = plan(count, lazy, connection, start)
    assert not isinstance(steps, list)  # made as they are sent
    assert list(steps) == plan(count, full, connection, start)


def test_every_chunk_once_in_order_without_faults() -> None:
    assert list(plan(5, Faults(), 0, 2)) == [Send("chunk", 2), Send("chunk", 3), Send("chunk", 4)]
