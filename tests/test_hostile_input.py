"""Hostile input the fuzzers found (issue 25 §6): each a regression test, in memory."""

from __future__ import annotations

import json
import math

import pytest

import rxstream
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


# --- one JSON reader for ToolCall.parsed() and partial() --------------------------------


@pytest.mark.parametrize("number", [123456789012345678901234567890, 10**20, -(2**70)])
def test_big_integers_in_arguments_are_exact(number: int) -> None:
    call = rxstream.ToolCall(0, "call_1", "f", f'{{"account": {number}}}')
    assert call.parsed() == call.partial() == json.loads(call.arguments) == {"account": number}
    assert type(call.parsed()["account"]) is int


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused_by_parsed_and_partial_alike(value: str) -> None:
    call = rxstream.ToolCall(0, "call_1", "f", f'{{"a": {value}}}')
    for read in (call.parsed, call.partial):
        with pytest.raises(rxstream.InvalidJSONError) as caught:
            read()
        assert caught.value.position == call.arguments.index(value.lstrip("-"))  # where the word starts


def test_a_number_beyond_a_double_reads_as_infinite_in_parsed_and_partial_alike() -> None:
    call = rxstream.ToolCall(0, "call_1", "f", '{"a": 1e999, "b": -1e999}')
    assert call.parsed() == call.partial() == json.loads(call.arguments) == {"a": math.inf, "b": -math.inf}


@pytest.mark.parametrize("text", ["\ud800", '{"a": "\udfff"}', '{"a": 1, "\ud83d'])
def test_a_lone_surrogate_is_invalid_json_not_a_unicode_error(text: str) -> None:
    call = rxstream.ToolCall(0, "call_1", "f", text)
    for read in (call.parsed, call.partial, lambda: rxstream.partial_json(text)):
        with pytest.raises(rxstream.InvalidJSONError) as caught:
            read()
        surrogate = next(at for at, character in enumerate(text) if 0xD800 <= ord(character) <= 0xDFFF)
        assert "lone surrogate" in caught.value.reason and caught.value.position == surrogate


def test_invalid_json_says_where_in_characters() -> None:
    with pytest.raises(rxstream.InvalidJSONError) as caught:
        rxstream.ToolCall(0, "call_1", "f", '{"é中":\n 1 x}').parsed()
    assert caught.value.position == 10 and caught.value.reason == "expected `,` or `}`"
