"""Reprs are bounded: a response of megabytes prints as a line (issue 20), as httpx prints ``<Response [200 OK]>``."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rxstream import Chunk, Response, Stats, ToolCall, ToolCallFragment, ToolResult, Transcript, Turn
from rxstream.operators._accumulate import Delta

LONG = "你好, world!! " * 150_000  # 1.8 M characters


def test_a_long_response_shows_its_start_its_length_and_its_key_fields() -> None:
    calls = (ToolCall(0, "call_1", "search", '{"q": "' + "x" * 10_000 + '"}'),)
    response = Response(
        LONG, False, 12, stats=Stats(response_id="resp_1"), finish_reason="length", tool_calls=calls, reasoning=LONG
    )
    shown = repr(response)
    assert shown == (
        f"<Response partial text={LONG[:60]!r}… (1,800,000 chars) chunks=12 reasoning={LONG[:60]!r}… (1,800,000 chars)"
        " tool_calls=1 finish_reason='length' id='resp_1'>"
    )
    assert len(repr(calls[0])) < 150 and "10,009 chars" in repr(calls[0])


def test_a_short_response_shows_all_its_text() -> None:
    assert repr(Response("hello", True, 2)) == "<Response complete text='hello' chunks=2>"
    assert repr(Response("", True, 1, refusal="no")) == "<Response complete text='' chunks=1 refusal='no'>"


def test_a_chunk_shows_its_index_and_the_fields_it_carries() -> None:
    assert repr(Chunk(3, "hi")) == "Chunk(index=3, data='hi')"
    big = Chunk(4, LONG, is_final=True, finish_reason="stop", tool_calls=(ToolCallFragment(0, arguments="{}"),))
    assert repr(big) == (
        f"Chunk(index=4, data={LONG[:60]!r}… (1,800,000 chars), is_final=True, finish_reason='stop', "
        "tool_calls=(ToolCallFragment(index=0, id=None, name=None, arguments='{}', server=False),))"
    )


def test_a_delta_shows_its_text_its_chunk_and_the_transcript_length() -> None:
    transcript = Transcript()
    transcript.add(Chunk(0, LONG), LONG)
    assert repr(Delta(LONG, Chunk(0, LONG), transcript)) == (
        f"Delta(text={LONG[:60]!r}… (1,800,000 chars), chunk=0, transcript=1,800,000 chars)"
    )


def test_a_turn_shows_its_response_bounded() -> None:
    turn = Turn("session", 2, Response(LONG, True, 9), 1.5)
    assert repr(turn) == f"Turn(session_id='session', number=2, response={Response(LONG, True, 9)!r}, saved_at=1.5)"
    assert len(repr(turn)) < 200


def test_a_tool_turn_shows_its_results_bounded() -> None:
    turn = Turn("session", 3, Response("", True, 0), 1.5, tool_results=(ToolResult("call_1", LONG, is_error=True),))
    assert repr(turn) == (
        "Turn(session_id='session', number=3, saved_at=1.5,"
        f" tool_results=(ToolResult(call_id='call_1', content={LONG[:60]!r}… (1,800,000 chars), is_error=True),))"
    )


@given(st.text(), st.integers(0, 10**9))
def test_any_text_gives_a_repr_of_bounded_length(text: str, chunks: int) -> None:
    shown = repr(Response(text, True, chunks))
    assert len(shown) <= 4 * 60 + 80  # a character's repr is at most \\U0010ffff
    assert repr(text[:60]) in shown
