"""Fuzz harnesses, kept: hypothesis properties over hostile input for every parser.

Each runs ``max_examples`` of the profile in force: 100 in the suite, far more with
``--hypothesis-profile=fuzz`` (registered in tests/conftest.py), the command in the
README's development section.
"""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

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
