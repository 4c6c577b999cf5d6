"""A published stream's entries (protocol/_stream_entries.py), in memory: each delta's chunk as
string fields and back, whatever it carries (README, "publish": "Each delta is one entry (its
text, and its reasoning, refusal, tool-call fragments, finish reason and usage where it has
them, and `n`)"), and an entry publish did not write refused as a FrameError."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxstream import Chunk, FrameError, ThinkingBlock, ToolCallFragment
from rxstream.protocol._stream_entries import RecordedFailure, delta_fields, done_fields, failure_fields, read_entry

TEXT = st.none() | st.text(max_size=4)
FRAGMENT = st.builds(ToolCallFragment, st.integers(0, 2), TEXT, TEXT, st.text(max_size=5))
CHUNK = st.builds(
    Chunk,
    index=st.integers(0, 9),
    data=st.text(max_size=8),
    text=TEXT,
    image_url=TEXT,
    reasoning=TEXT,
    finish_reason=TEXT,
    usage=st.none() | st.fixed_dictionaries({"total_tokens": st.integers(0, 99)}),
    refusal=TEXT,
    tool_calls=st.none() | st.lists(FRAGMENT, min_size=1, max_size=2).map(tuple),
    signature=TEXT,
    thinking_block=st.none()
    | st.builds(ThinkingBlock, st.text(max_size=4), TEXT, TEXT, st.none() | st.integers(0, 9), TEXT),
)


@given(number=st.integers(0, 10**6), text=st.text(max_size=8), chunk=CHUNK, final=st.booleans())
def test_an_entry_gives_back_its_delta_with_everything_it_carries(
    number: int, text: str, chunk: Chunk, final: bool
) -> None:
    fields = delta_fields(number, text, chunk)
    if final:
        fields = done_fields(fields, 42)
        assert (fields["end"], fields["characters"]) == ("done", "42")
    assert all(type(value) is str for value in fields.values())  # a Redis stream's fields are strings
    # The delta's text is the chunk's data; what else the chunk carries comes back as it was.
    assert read_entry(fields) == Chunk(number, text, final, None, None, *chunk[5:])


def test_a_plain_delta_is_its_number_and_text_alone() -> None:
    assert delta_fields(3, "Hel", Chunk(7, "Hel", text="ignored: the delta's text is given")) == {
        "n": "3",
        "text": "Hel",
    }


def test_a_failure_entry_reads_back_as_what_it_recorded() -> None:
    fields = failure_fields(5, "ConnectionLostError", "lost", 12)
    assert fields == {
        "n": "5",
        "end": "error",
        "error_type": "ConnectionLostError",
        "detail": "lost",
        "characters": "12",
    }
    assert read_entry(fields) == RecordedFailure(5, "ConnectionLostError", "lost", 12)


@pytest.mark.parametrize(
    "fields",
    [
        {"text": "a"},  # no n
        {"n": "x", "text": "a"},
        {"n": "0"},  # no text
        {"n": "0", "text": "a", "usage": "[1]"},  # usage must be a JSON object
        {"n": "0", "text": "a", "usage": "{"},
        {"n": "0", "text": "a", "tool_calls": "[1]"},  # each fragment a list
        {"n": "0", "end": "error", "error_type": "E", "detail": "d"},  # no characters
    ],
)
def test_an_entry_publish_did_not_write_is_a_frame_error(fields: dict[str, str]) -> None:
    with pytest.raises(FrameError, match="not an entry rxstream.publish writes"):
        read_entry(fields)
