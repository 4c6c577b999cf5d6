"""Hostile input the fuzzers found (issue 25 §6): each a regression test, in memory."""

from __future__ import annotations

import pytest

from rxstream.protocol._sse import SSEDecoder, SSEEvent

from .support import decode


# WHATWG, "Interpreting an event stream": retry is set only if "the field value consists of only
# ASCII digits" (https://html.spec.whatwg.org/multipage/server-sent-events.html#processField).
@pytest.mark.parametrize("value", ["\u00b2", "\u0969", "1" * 4301, "12345678901", "-1", "1.5", ""])
def test_a_retry_that_is_not_a_few_ascii_digits_is_ignored(value: str) -> None:
    raw = b"retry:" + value.encode() + b"\ndata: x\n\n"
    assert decode(raw) == [SSEEvent("x")]


def test_a_retry_of_ascii_digits_is_taken() -> None:
    assert decode(b"retry: 3000\ndata: x\n\n") == [SSEEvent("x", retry=3000)]


def test_a_cr_at_the_end_of_a_read_ends_its_line_and_its_lf_is_not_a_second_one() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n\r") == [SSEEvent("a")]  # the LF is the CR's; the next CR is the blank line
    assert decoder.feed(b"\ndata: b\r\r") == [SSEEvent("b")]
    assert decoder.end() == []


def test_a_long_line_in_one_byte_reads_is_held_as_it_came() -> None:
    decoder = SSEDecoder()
    line = b"data: " + b"x" * 5000
    assert [event for byte in line for event in decoder.feed(bytes([byte]))] == []
    assert decoder.pending == len(line)
    assert decoder.feed(b"\n") == [] and decoder.pending == 5000
    assert decoder.feed(b"\n") == [SSEEvent("x" * 5000)] and decoder.pending == 0
