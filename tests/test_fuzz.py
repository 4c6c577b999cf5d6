"""Fuzz harnesses, kept: hypothesis properties over hostile input for every parser.

Each runs ``max_examples`` of the profile in force: 100 in the suite, far more with
``--hypothesis-profile=fuzz`` (registered in tests/conftest.py), the command in the
README's development section.
"""

from __future__ import annotations

import json
import re

from hypothesis import given
from hypothesis import strategies as st

import rxstream
from rxstream.protocol._sse import RETRY_DIGITS, SSEEvent

from .support import decode

# --- the SSE decoder, against the WHATWG rules written out plainly -------------------------

SSE_LINES = st.tuples(
    st.sampled_from([b"data", b"event", b"id", b"retry", b"", b"dat", b"\xef\xbb\xbfdata"]),
    st.sampled_from([b":", b": ", b"", b":  "]),
    st.lists(
        st.sampled_from(
            [b"x", b"{}", b" ", b":", b"7", b"\x00", b"\xc3", b"\xa9", b"\xff", b"\xc2\xb2", b"\xe0\xa5\xa9"]
        )
        | st.just(b"1" * 11),
        max_size=4,
    ).map(b"".join),
    st.sampled_from([b"\n", b"\r", b"\r\n", b"\n\n", b"\r\r", b"\r\n\r\n"]),
).map(b"".join)
SSE_BODIES = st.tuples(
    st.sampled_from([b"", b"\xef\xbb\xbf", b"\xef"]), st.lists(SSE_LINES, max_size=20).map(b"".join)
).map(b"".join) | st.binary(max_size=200)


def spec_events(raw: bytes) -> list[SSEEvent]:
    """The events of a whole body, by the WHATWG event-stream interpretation, line by line."""
    text = raw.decode("utf-8", "replace").removeprefix("\ufeff")
    *lines, _unterminated = re.split("\r\n|\r|\n", text)
    events, data, event, retry, last_id = [], "", "", None, None
    for line in lines:
        if not line:
            if data:
                events.append(SSEEvent(data.removesuffix("\n"), event or "message", last_id, retry))
            data, event, retry = "", "", None
            continue
        if line.startswith(":"):
            continue
        name, colon, value = line.partition(":")
        value = value.removeprefix(" ") if colon else value
        if name == "data":
            data += value + "\n"
        elif name == "event":
            event = value
        elif name == "id" and "\0" not in value:
            last_id = value
        elif name == "retry" and value and all("0" <= c <= "9" for c in value) and len(value) <= RETRY_DIGITS:
            retry = int(value)
    return events


@given(SSE_BODIES, st.lists(st.integers(0, 400), max_size=12))
def test_sse_decoder_reads_any_bytes_cut_anywhere_as_the_spec_does(raw: bytes, cuts: list[int]) -> None:
    assert decode(raw, [cut for cut in cuts if cut <= len(raw)]) == spec_events(raw)


# --- partial JSON and ToolCall.parsed(): one reader, one set of rules ----------------------

JSON_TEXT = st.lists(
    st.sampled_from(
        [
            "{",
            "}",
            "[",
            "]",
            '"a"',
            '"é中"',
            ":",
            ",",
            " ",
            "1",
            "-",
            "0",
            ".5",
            "e9",
            "1e999",
            "NaN",
            "Infinity",
            "true",
            "fals",
            "null",
            "123456789012345678901234567890",
            '"\\ud800"',
            "\ud800",
            '"\\u00',
            "\\",
            '"',
        ]
    ),
    max_size=24,
).map("".join)
JSON_OBJECTS = st.dictionaries(
    st.text(max_size=5),
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
        max_leaves=10,
    ),
    max_size=4,
)


@given(JSON_TEXT)
def test_parsed_and_partial_agree_on_any_text(text: str) -> None:
    call = rxstream.ToolCall(0, "call_1", "f", text)
    try:
        whole = call.parsed()
    except rxstream.InvalidJSONError:
        whole = None
    try:
        partial = call.partial()
    except rxstream.InvalidJSONError:
        assert whole is None  # what parsed() reads, partial() reads too
        return
    assert whole is None or whole == partial


@given(JSON_OBJECTS.map(lambda value: json.dumps(value, ensure_ascii=False)), st.data())
def test_every_prefix_of_a_json_object_parses_partially_and_the_whole_exactly(text: str, data: st.DataObject) -> None:
    call = rxstream.ToolCall(0, "call_1", "f", text)
    assert call.parsed() == call.partial() == json.loads(text)
    cut = data.draw(st.integers(0, len(text)))
    assert type(rxstream.ToolCall(0, "call_1", "f", text[:cut]).partial()) is dict
