"""Hostile input the fuzzers found (issue 25 §6): each a regression test, in memory."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import orjson
import pytest
import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable
from websockets.exceptions import ProtocolError
from websockets.frames import CloseCode

import rxstream
from rxstream import operators as rxo
from rxstream.protocol._sse import SSEDecoder, SSEEvent

from .responses_events import FunctionCall, encode, response_events
from .support import Outcome, decode, run
from .test_framing import read as read_frames


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


def test_a_cr_inside_a_read_is_no_cr_at_its_end() -> None:
    # found by tests/test_fuzz.py: a read with a CR inside, ending elsewhere, made the next read's LF vanish
    assert decode(b":\rdata: 1\n\n", [9]) == [SSEEvent("1")]  # cut before the LFs


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


# --- the parsers: every bad value a FrameError, fused and piped alike ----------------------

Chain = Callable[[Observable[Any]], Observable[rxstream.Response]]
SSE_CHAINS: dict[str, Chain] = {
    "fused": rxstream.sse_pipeline(),
    "piped": lambda source: source.pipe(
        rxo.parse_sse(), rxo.reorder(), rxo.backpressure_buffer(), rxo.accumulate(), rxo.finalize()
    ),
}
RESPONSES_CHAINS: dict[str, Chain] = {
    "fused": rxstream.responses_pipeline(),
    "piped": lambda source: source.pipe(
        rxo.parse_responses(), rxo.reorder(), rxo.backpressure_buffer(), rxo.accumulate(), rxo.finalize()
    ),
}


def cause(outcome: Outcome) -> BaseException:
    """The typed error a stream failed with (the IncompleteStreamError's cause, before issue 19's design)."""
    assert outcome.error is not None and not outcome.items
    if isinstance(outcome.error, rxstream.IncompleteStreamError) and outcome.error.__cause__ is not None:
        return outcome.error.__cause__
    return outcome.error


DEEP = "[" * 1000 + "1" + "]" * 1000  # as deep as orjson reads (1,024), past what repr can show (RecursionError)


def with_deep(data: bytes) -> bytes:
    """``data`` with its ``"DEEP"`` string replaced by a list nested 1,000 deep (no encoder writes one)."""
    return data.replace(b'"DEEP"', DEEP.encode())


def call_event(arguments: Any) -> SSEEvent:
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    return SSEEvent(orjson.dumps({"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}).decode())


@pytest.mark.parametrize("chain", SSE_CHAINS)
@pytest.mark.parametrize("arguments", [0, False, 5, True, [], {}])
def test_tool_call_arguments_that_are_not_a_string_are_a_frame_error(chain: str, arguments: Any) -> None:
    error = cause(run(SSE_CHAINS[chain](rxstream.from_frames([call_event('{"a"'), call_event(arguments)]))))
    assert isinstance(error, rxstream.FrameError) and "function.arguments" in error.reason


@pytest.mark.parametrize("chain", SSE_CHAINS)
def test_null_tool_call_arguments_are_none(chain: str) -> None:
    done = SSEEvent(orjson.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}).decode())
    events = [call_event(None), call_event('{"a": 1}'), done, SSEEvent("[DONE]")]
    (response,) = run(SSE_CHAINS[chain](rxstream.from_frames(events))).items
    assert response.tool_calls == (rxstream.ToolCall(0, "call_1", "f", '{"a": 1}'),)


@pytest.mark.parametrize("chain", SSE_CHAINS)
def test_a_value_nested_1000_deep_where_a_string_belongs_is_a_frame_error(chain: str) -> None:
    event = SSEEvent(
        with_deep(orjson.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "DEEP"}]})).decode()
    )
    error = cause(run(SSE_CHAINS[chain](rxstream.from_frames([event]))))
    assert isinstance(error, rxstream.FrameError) and "[[[[" in str(error)


@pytest.mark.parametrize("chain", SSE_CHAINS)
@pytest.mark.parametrize("data", ["\ud800", '{"choices": [], "x": "\udfff"}'])
def test_a_lone_surrogate_in_an_sse_event_is_a_frame_error(chain: str, data: str) -> None:
    error = cause(run(SSE_CHAINS[chain](rxstream.from_frames([SSEEvent(data)]))))
    assert isinstance(error, rxstream.FrameError)


def responses_with(change: Callable[[list[dict[str, Any]]], None]) -> list[bytes]:
    events = response_events([FunctionCall("call_a", "f", ('{"a"', ": 1}"))])
    change(events)
    return encode(events)


def set_added_arguments(events: list[dict[str, Any]], value: Any) -> None:
    next(event for event in events if event["type"] == "response.output_item.added")["item"]["arguments"] = value


# The fuzzers' hang: `"arguments": 1` in output_item.added made the join fail in the transcript,
# then in finalize's partial, and no error reached the caller.
@pytest.mark.parametrize("chain", RESPONSES_CHAINS)
@pytest.mark.parametrize("value", [1, True, ["x"], "DEEP"])
def test_responses_item_arguments_that_are_not_a_string_are_a_frame_error(chain: str, value: Any) -> None:
    events = [with_deep(event) for event in responses_with(lambda events: set_added_arguments(events, value))]
    error = cause(run(RESPONSES_CHAINS[chain](rxstream.from_frames(events))))
    assert isinstance(error, rxstream.FrameError) and "item.arguments" in error.reason


@pytest.mark.parametrize("chain", RESPONSES_CHAINS)
async def test_responses_item_arguments_that_are_not_a_string_end_an_awaited_stream(chain: str) -> None:
    events = responses_with(lambda events: set_added_arguments(events, 1))
    with pytest.raises(rxstream.StreamError):
        await asyncio.wait_for(RESPONSES_CHAINS[chain](rxstream.from_frames(events)), 5)


@pytest.mark.parametrize("chain", RESPONSES_CHAINS)
@pytest.mark.parametrize(("field", "value"), [("status", 1), ("status", ["completed"]), ("incomplete_details", 1)])
def test_a_responses_status_that_is_not_a_string_is_a_frame_error(chain: str, field: str, value: Any) -> None:
    events = responses_with(lambda events: events[-1]["response"].__setitem__(field, value))
    if field == "incomplete_details":
        events[-1] = events[-1].replace(b"response.completed", b"response.incomplete")
    error = cause(run(RESPONSES_CHAINS[chain](rxstream.from_frames(events))))
    assert isinstance(error, rxstream.FrameError)


def rude(events: list[bytes]) -> Observable[bytes]:
    """A source that pushes every event, whatever its subscriber has said: then a resend of one."""

    def subscribe(observer: abc.ObserverBase[bytes], scheduler: abc.SchedulerBase | None = None) -> abc.DisposableBase:
        for event in [*events, events[3]]:
            observer.on_next(event)
        observer.on_completed()
        return Disposable()

    return reactivex.create(subscribe)


@pytest.mark.parametrize("chain", RESPONSES_CHAINS)
def test_a_resend_after_completion_changes_nothing_in_the_emitted_response(chain: str) -> None:
    events = encode(response_events([FunctionCall("call_a", "f", ('{"a"', ": 1}"))]))
    emitted: list[tuple[rxstream.Response, rxstream.Stats]] = []
    RESPONSES_CHAINS[chain](rude(events)).subscribe(
        lambda response: emitted.append((response, replace(response.stats)))
    )
    ((response, stats_when_emitted),) = emitted
    assert response.stats == stats_when_emitted and response.stats.duplicates == 0


# --- the WebSocket frame reader ---------------------------------------------------------------


# Found by tests/test_fuzz.py: a frame of an unknown opcode, which websockets refuses from its header
# (RFC 6455 §5.2), was held by the reader until its payload came: the connection failed late, or never.
@pytest.mark.parametrize("header", [b"\x03\x01", b"\x8b\x05", b"\x0f\x7e\x01\x00"])
def test_a_frame_of_an_unknown_opcode_fails_the_connection_at_once(header: bytes) -> None:
    seen, protocol, reader = read_frames([b"\x81\x02hi" + header])
    assert seen == [("message", b"hi")]
    assert isinstance(protocol.parser_exc, ProtocolError) and str(protocol.parser_exc) == "invalid opcode"
    assert protocol.close_sent is not None and protocol.close_sent.code == CloseCode.PROTOCOL_ERROR
    assert reader.passing
