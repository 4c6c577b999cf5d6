"""Marble tests in rxstream's vocabulary: the diagrams of rxstream's docstrings come out of the
operators as drawn, on the TestScheduler's virtual time, and any diagram reads back as itself."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reactivex import Observable
from reactivex import operators as ops

import rxstream
from rxstream import operators as rxo
from rxstream.testing import marbles


def test_reorder_draws_as_its_docstring_does() -> None:
    assert marbles(rxo.reorder(), "-1--0--0--3--2--|") == "----(01)-----(23|)"
    assert marbles(rxo.reorder(), "-0--2--|") == "-0-----#"


def test_a_fused_pipeline_gives_its_response_on_the_final_chunk() -> None:
    pipeline = rxstream.fuse(rxo.reorder(), rxo.accumulate(), rxo.finalize())
    assert marbles(pipeline, "-1-0-|") == "---(R|)"
    assert marbles(rxo.accumulate(), "-0-1-|") == "-0-1-|"  # a Delta drawn by its chunk


def test_time_is_virtual() -> None:
    """A timeout of a thousand ticks fires at once, and at its tick."""
    assert marbles(ops.timeout(1000.0), "-0" + "-" * 2000 + "1|") == "-0" + "-" * 999 + "#"


def test_letters_take_their_values_both_ways() -> None:
    def twice(value: int) -> int:
        return value * 2

    def double(source: Observable[Any]) -> Observable[Any]:
        return source.pipe(ops.map(twice))

    assert marbles(double, "-a-b-|", values={"a": 1, "b": 2, "c": 4}) == "-b-c-|"
    with pytest.raises(ValueError, match="values="):
        marbles(double, "-a-x-|", values={"a": 1, "b": 2})


SEGMENTS = st.sampled_from(["-", "--", "0", "1", "7", "(12)", "(3|)"])


@given(st.lists(SEGMENTS, max_size=12), st.sampled_from(["", "|", "#"]))
def test_any_diagram_reads_back_as_itself(segments: list[str], ending: str) -> None:
    diagram = "".join(segments)
    if "|" in diagram:  # nothing after a completion
        diagram, ending = diagram[: diagram.index("|") + 2], ""
    diagram = (diagram + ending).rstrip("-")
    assert marbles(lambda source: source, diagram) == diagram
