"""Fuzz harnesses, kept: hypothesis properties over hostile input for every parser.

Each runs ``max_examples`` of the profile in force: 100 in the suite, far more with
``--hypothesis-profile=fuzz`` (registered in tests/conftest.py), the command in the
README's development section.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from reactivex import Observable
from websockets.protocol import CLIENT, OPEN, Protocol

import rxstream
from rxstream import operators as rxo
from rxstream.protocol._sse import RETRY_DIGITS, SSEEvent

from .responses_events import FunctionCall, Item, Message, Reasoning
from .responses_events import response_events as events_of
from .support import assert_same_outcome, decode, run
from .test_framing import events_into, read, split

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


# Bodies without CR, mostly events of one ``data: …`` line, the run the decoder splits on blank lines at
# once: every other line, a lone LF, an event left open and a read cut anywhere must leave the rules as they are.
LF_PIECES = st.lists(
    st.sampled_from(
        [b"data: x\n\n", b'data: {"a": 1}\n\n', b"data: \n\n", b"data:x\n\n", b"data: data: \n\n", b"data: \xc3\n\n"]
    )
    | st.sampled_from([b"data: a\ndata: b\n\n", b"data: x\n", b"id: 7\n", b"event: e\n", b"retry: 5\n", b": ping\n\n"])
    | st.sampled_from([b"\n", b"data", b"id: \n", b"data: y"])
    | st.sampled_from([b"id: 7\ndata: x\n\n", b"id: 8\ndata: \xc3\n\n", b"id: \x00\ndata: x\n\n", b"id: \ndata: y\n\n"])
    | st.sampled_from([b"event: e\ndata: x\n\n", b"event: \ndata: x\n\n", b"event: f\ndata:x\n\n"])
    | st.just(b"id: 1\ndata: a\ndata: b\nid: 2\ndata: c\n\n"),
    max_size=24,
)


@given(
    LF_PIECES,
    st.lists(st.booleans(), min_size=24, max_size=24) | st.just([True] * 24),
    st.lists(st.integers(0, 400), max_size=6),
)
def test_sse_decoder_reads_bodies_without_cr_cut_anywhere_as_the_spec_does(
    pieces: list[bytes], between: list[bool], cuts: list[int]
) -> None:
    """Cut where ``between`` says, between pieces (so that reads start with each kind of line), and at ``cuts``."""
    raw = b"".join(pieces)
    ends = list(accumulate(map(len, pieces)))
    cuts = [end for end, cut in zip(ends, between, strict=False) if cut] + [cut for cut in cuts if cut <= len(raw)]
    assert decode(raw, cuts) == spec_events(raw)


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


# --- the WebSocket frame reader, against websockets' own on hostile bytes -------------------


@st.composite
def raw_frames(draw: st.DrawFn) -> bytes:
    """Frame headers of every kind, valid or not (reserved bits, unknown opcodes, a mask, lengths
    in each encoding, control frames too long, close codes), with payloads that may be cut short."""
    first = draw(
        st.sampled_from([0x81, 0x82, 0x01, 0x02, 0x00, 0x80, 0x88, 0x89, 0x8A, 0xC1, 0x83, 0x8B, 0x09])
        | st.integers(0, 255)
    )
    masked = draw(st.booleans()) and draw(st.booleans())  # one frame in four
    length = draw(st.integers(0, 130) | st.sampled_from([65535, 65536, 2**20 + 1]))
    if length < 126:
        header = bytes([first, masked << 7 | length])
    elif length < 65536:
        header = bytes([first, masked << 7 | 126]) + length.to_bytes(2, "big")
    else:
        header = bytes([first, masked << 7 | 127]) + length.to_bytes(8, "big")
    mask = draw(st.binary(min_size=4, max_size=4)) if masked else b""
    payload = draw(st.sampled_from([b"\x03\xe8", b"\x03\xe8bye", b"\xff\xff", b"\xc3"]) | st.binary(max_size=8))
    return (
        header + mask + (payload * (length // max(len(payload), 1) + 1))[: draw(st.sampled_from([length, length // 2]))]
    )


@given(st.lists(raw_frames(), max_size=6).map(b"".join), st.lists(st.integers(min_value=0), max_size=8))
def test_frame_reader_reads_hostile_bytes_as_websockets_does(data: bytes, cuts: list[int]) -> None:
    pieces = split(data, cuts)
    seen, protocol, _ = read(pieces, max_size=2**20)
    alone = Protocol(CLIENT, state=OPEN, max_size=2**20)
    alone_seen: list[tuple[str, bytes]] = []
    fragments: list[bytes] = []
    for piece in pieces:
        alone.receive_data(piece)
        events_into(alone, alone_seen, fragments)
    assert seen == alone_seen
    assert (protocol.state, protocol.close_code, type(protocol.parser_exc)) == (
        alone.state,
        alone.close_code,
        type(alone.parser_exc),
    )


# --- the three parsers, fused and piped, on hostile events ----------------------------------


def still(timer: float = 0.0) -> float:
    return timer  # a timer that never moves: the two ways' stats compare equal


def piped_sse(source: Observable[Any]) -> Observable[rxstream.Response]:
    return source.pipe(rxo.parse_sse(), rxo.reorder(), rxo.backpressure_buffer(), rxo.accumulate(), rxo.finalize(still))


def piped_responses(source: Observable[Any]) -> Observable[rxstream.Response]:
    return source.pipe(
        rxo.parse_responses(), rxo.reorder(), rxo.backpressure_buffer(), rxo.accumulate(), rxo.finalize(still)
    )


def piped_chunks(source: Observable[Any]) -> Observable[rxstream.Response]:
    return source.pipe(rxo.parse(), rxo.reorder(), rxo.backpressure_buffer(), rxo.accumulate(), rxo.finalize(still))


ODD = st.sampled_from([None, 0, 1, -1, True, "", "x", [], {}, [1], {"a": 1}, "DEEP", 2**70, 1.5])


def lists_or_odd(items: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(items, max_size=2) | ODD


TEXTS = st.sampled_from(["", "a", "é中", "\ud800", "stop", "error"]) | ODD


def json_event(value: Any) -> str:
    """``value`` as JSON text, any ``"DEEP"`` a list nested 1,000 deep (no encoder writes one)."""
    return json.dumps(value).replace('"DEEP"', "[" * 1000 + "1" + "]" * 1000)


@st.composite
def chat_events(draw: st.DrawFn) -> SSEEvent:
    """One event an OpenAI-compatible or Anthropic server might send, or something like it."""
    kind = draw(st.sampled_from(["chat", "chat", "chat", "anthropic", "done", "error", "raw"]))
    if kind == "done":
        return SSEEvent("[DONE]")
    if kind == "raw":
        return SSEEvent(
            draw(st.sampled_from(["", "{", "null", "[]", '{"choices": 1}', "\ud800"]) | st.text(max_size=8))
        )
    if kind == "error":
        return SSEEvent(
            json_event({"error": draw(st.fixed_dictionaries({}, optional={"message": TEXTS, "code": TEXTS}) | ODD)})
        )
    if kind == "anthropic":
        name = draw(
            st.sampled_from(
                [
                    "message_start",
                    "content_block_start",
                    "content_block_delta",
                    "message_delta",
                    "message_stop",
                    "error",
                    "ping",
                ]
            )
        )
        body = draw(
            st.fixed_dictionaries(
                {"type": st.just(name)},
                optional={
                    "index": st.integers(0, 2) | ODD,
                    "delta": st.fixed_dictionaries(
                        {},
                        optional={
                            "type": st.sampled_from(
                                ["text_delta", "input_json_delta", "thinking_delta", "signature_delta"]
                            ),
                            "text": TEXTS,
                            "partial_json": TEXTS,
                            "thinking": TEXTS,
                            "signature": TEXTS,
                            "stop_reason": TEXTS,
                        },
                    )
                    | ODD,
                    "content_block": st.fixed_dictionaries(
                        {
                            "type": st.sampled_from(
                                ["text", "tool_use", "server_tool_use", "thinking", "redacted_thinking"]
                            )
                        },
                        optional={"id": TEXTS, "name": TEXTS, "text": TEXTS},
                    )
                    | ODD,
                    "message": st.fixed_dictionaries(
                        {},
                        optional={
                            "id": TEXTS,
                            "usage": st.fixed_dictionaries({}, optional={"input_tokens": ODD, "output_tokens": ODD})
                            | ODD,
                        },
                    )
                    | ODD,
                    "usage": st.fixed_dictionaries({}, optional={"output_tokens": ODD}) | ODD,
                },
            )
        )
        return SSEEvent(json_event(body), name)
    tool_call = st.fixed_dictionaries(
        {"index": st.integers(0, 2) | ODD},
        optional={
            "id": TEXTS,
            "function": st.fixed_dictionaries({}, optional={"name": TEXTS, "arguments": TEXTS}) | ODD,
        },
    )
    delta = st.fixed_dictionaries(
        {},
        optional={
            "content": TEXTS,
            "reasoning_content": TEXTS,
            "refusal": TEXTS,
            "tool_calls": st.lists(tool_call, max_size=2) | ODD,
        },
    )
    choice = st.fixed_dictionaries(
        {"index": st.sampled_from([0, 0, 1]) | ODD}, optional={"delta": delta | ODD, "finish_reason": TEXTS}
    )
    body = draw(
        st.fixed_dictionaries(
            {"choices": lists_or_odd(choice)},
            optional={
                "id": TEXTS,
                "usage": st.fixed_dictionaries({}, optional={"total_tokens": ODD}) | ODD,
                "error": ODD,
            },
        )
    )
    return SSEEvent(json_event(body))


@given(st.lists(chat_events(), max_size=12))
def test_parse_sse_fused_and_piped_agree_on_any_events(events: list[SSEEvent]) -> None:
    fused = run(rxstream.from_frames(events).pipe(rxstream.sse_pipeline(timer=still)))
    assert_same_outcome(fused, run(piped_sse(rxstream.from_frames(events))))
    assert fused.items or isinstance(fused.error, rxstream.StreamError)  # a typed error, never another


ITEMS: list[Item] = [Message(("He", "llo")), FunctionCall("call_a", "f", ('{"a"', ": 1}")), Reasoning((("hm",),))]


@st.composite
def responses_events(draw: st.DrawFn) -> list[bytes]:
    """A valid response's events, some changed to odd values, moved, dropped or sent twice."""
    items = draw(
        st.lists(
            st.sampled_from(ITEMS),
            max_size=3,
        )
    )
    events = events_of(items, status=draw(st.sampled_from(["completed", "incomplete", "failed"])))
    for _ in range(draw(st.integers(0, 3))):
        event = draw(st.sampled_from(events))
        field = draw(st.sampled_from(sorted(event)))
        event[field] = draw(ODD | TEXTS)
    order = draw(st.permutations(range(len(events)))) if draw(st.booleans()) else list(range(len(events)))
    chosen = [events[at] for at in order if draw(st.integers(0, 9))]  # one in ten dropped
    return [
        json_event(event).encode()
        for event in chosen + draw(st.lists(st.sampled_from(chosen), max_size=2) if chosen else st.just([]))
    ]


@given(responses_events())
def test_parse_responses_fused_and_piped_agree_on_any_events(events: list[bytes]) -> None:
    fused = run(rxstream.from_frames(events).pipe(rxstream.responses_pipeline(timer=still)))
    assert_same_outcome(fused, run(piped_responses(rxstream.from_frames(events))))
    assert fused.items or isinstance(fused.error, rxstream.StreamError)


@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "chunk": st.fixed_dictionaries(
                    {"index": st.integers(0, 4) | ODD}, optional={"data": TEXTS, "is_final": ODD, "text": TEXTS}
                )
            },
            optional={"timestamp": ODD},
        ).map(json_event),
        max_size=8,
    )
)
def test_parse_fused_and_piped_agree_on_any_frames(frames: list[str]) -> None:
    fused = run(rxstream.from_frames(frames).pipe(rxstream.pipeline(timer=still)))
    assert_same_outcome(fused, run(piped_chunks(rxstream.from_frames(frames))))
    assert fused.items or isinstance(fused.error, rxstream.StreamError)
