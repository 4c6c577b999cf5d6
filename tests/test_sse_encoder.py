"""SSEEncoder: what it writes, SSEDecoder reads back, however the bytes are cut."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxstream import SSEDecoder, SSEEncoder, SSEEvent

from .support import decode

# No surrogates: an event stream is UTF-8, and a lone surrogate has no UTF-8 form.
TEXT = st.characters(exclude_categories=["Cs"])
LINE = st.text(TEXT.filter(lambda c: c not in "\r\n"), max_size=12)
DATA = st.lists(
    st.one_of(st.text(TEXT, max_size=6), st.sampled_from(["\r\n", "\r", "\n", ":", " ", "\ufeff"])), max_size=8
).map("".join)
EVENT = st.one_of(st.none(), st.sampled_from(["message", "done", " failed", "a:b"]), LINE)
ID = st.one_of(st.none(), LINE.filter(lambda value: "\0" not in value))


@given(
    events=st.lists(st.tuples(DATA, EVENT, ID), max_size=8),
    comments=st.lists(LINE, max_size=3),
    cut_fractions=st.lists(st.floats(0, 1), max_size=6),
)
def test_the_decoder_reads_back_each_event_with_line_breaks_as_lf(
    events: list[tuple[str, str | None, str | None]], comments: list[str], cut_fractions: list[float]
) -> None:
    encoder = SSEEncoder()
    body = encoder.retry(2500) + b"".join(encoder.comment(text) for text in comments)
    expected = []
    last_id: str | None = None
    for data, event, id in events:
        body += encoder.encode(data, event=event, id=id)
        last_id = id if id is not None else last_id
        expected.append(SSEEvent(data.replace("\r\n", "\n").replace("\r", "\n"), event or "message", last_id))
    cuts = sorted({int(fraction * len(body)) for fraction in cut_fractions})
    assert decode(body, cuts) == expected


def test_the_reconnection_time_is_read_as_the_field_says() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(SSEEncoder().retry(1500) + SSEEncoder().encode("x"))
    assert events == [SSEEvent("x")]
    assert SSEEncoder().retry(1500) == b"retry: 1500\n\n"


@pytest.mark.parametrize(
    ("field", "value"),
    [("event", "a\nb"), ("event", "a\rb"), ("id", "1\n2"), ("id", "1\r"), ("id", "a\0b")],
)
def test_a_field_the_reader_would_not_read_back_is_refused(field: str, value: str) -> None:
    with pytest.raises(ValueError, match="cannot hold"):
        SSEEncoder().encode("data", **{field: value})


def test_a_comment_with_a_line_break_is_refused_and_a_negative_retry_too() -> None:
    with pytest.raises(ValueError, match="line break"):
        SSEEncoder().comment("a\nb")
    with pytest.raises(ValueError, match="negative"):
        SSEEncoder().retry(-1)
