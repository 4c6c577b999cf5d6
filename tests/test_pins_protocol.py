"""The sans-I/O protocol code, pinned where the in-memory suite left it loose (issue 23, items 6-8):
the SSE decoder's WHATWG rules (through the public ``SSEDecoder`` and ``sse_events``), the frame
reader's length boundaries and reads cut anywhere, and the recovery decision's schedule."""

from __future__ import annotations

import pytest
from websockets.frames import Close, Frame, Opcode

import rxstream
from rxstream.protocol._decision import DONE, Ending, Fail, Retry, decide
from rxstream.protocol._framing import FrameReader

# --- The SSE decoder. The WHATWG event-stream rules, which the README says it follows:
# https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation


def events(body: bytes, *, bytewise: bool = False) -> list[rxstream.SSEEvent]:
    return list(rxstream.sse_events([body[i : i + 1] for i in range(len(body))] if bytewise else [body]))


@pytest.mark.parametrize("bytewise", [False, True])
def test_a_field_value_loses_one_leading_space_and_no_more(bytewise: bool) -> None:
    # "If value starts with a U+0020 SPACE character, remove it from value."
    body = b"data:x\n\ndata: y\n\ndata:  z\n\n"
    assert [event.data for event in events(body, bytewise=bytewise)] == ["x", "y", " z"]


@pytest.mark.parametrize("bytewise", [False, True])
def test_a_bom_at_the_start_is_dropped_and_only_there(bytewise: bool) -> None:
    body = b"\xef\xbb\xbfdata: first\n\n\xef\xbb\xbfdata: second\n\n"
    received = events(body, bytewise=bytewise)
    assert received[0] == rxstream.SSEEvent("first")
    # A later BOM starts a field named "\ufeffdata", which is ignored: no second event.
    assert len(received) == 1


def test_a_bom_alone_then_an_event() -> None:
    decoder = rxstream.SSEDecoder()
    assert decoder.feed(b"\xef\xbb") == [] and decoder.feed(b"\xbf") == []
    assert decoder.feed(b"data: a\n\n") == [rxstream.SSEEvent("a")]


def test_retry_takes_only_ascii_digits() -> None:
    # "If the field value consists of only ASCII digits, then interpret [it] ... Otherwise, ignore the field."
    body = b"retry: 1500\ndata: a\n\nretry: soon\ndata: b\n\nretry: -1\ndata: c\n\n"
    assert [event.retry for event in events(body)] == [1500, None, None]


def test_event_type_id_and_comments() -> None:
    body = b": keep-alive\nevent: delta\nid: 7\ndata: a\ndata: b\n\ndata: c\n\nid: bad\0id\ndata: d\n\n"
    assert events(body) == [
        rxstream.SSEEvent("a\nb", "delta", "7"),
        rxstream.SSEEvent("c", "message", "7"),  # the last event id stays in force; the type does not
        rxstream.SSEEvent("d", "message", "7"),  # an id with NUL is ignored
    ]


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending_cut_anywhere(ending: bytes) -> None:
    body = b"data: one" + ending + ending + b"data: two" + ending + ending
    assert [event.data for event in events(body, bytewise=True)] == ["one", "two"]


def test_an_event_not_ended_by_a_blank_line_is_discarded() -> None:
    assert events(b"data: a\n\ndata: b\n") == [rxstream.SSEEvent("a")]
    assert events(b"data: a\r\r") == [rxstream.SSEEvent("a")]  # a trailing CR still ends its line


# A read of whole events of one shape (``data: …`` each, as OpenAI sends them) must read as any other:
# the fields a previous read left in force, an event a read leaves under way, bytes that are not UTF-8.


def test_a_retry_from_the_previous_read_goes_to_the_next_event_only() -> None:
    # WHATWG: the event's retry is the field seen before its blank line, wherever the reads were cut.
    decoder = rxstream.SSEDecoder()
    assert decoder.feed(b"retry: 5\n") == []
    assert decoder.feed(b"data: a\n\ndata: b\n\n") == [rxstream.SSEEvent("a", retry=5), rxstream.SSEEvent("b")]


def test_an_event_a_read_leaves_under_way_is_finished_by_the_next() -> None:
    decoder = rxstream.SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: b\n") == [rxstream.SSEEvent("a")]
    assert decoder.feed(b"\n") == [rxstream.SSEEvent("b")]


def test_an_id_alone_in_its_read_is_the_next_events_id() -> None:
    # WHATWG: an id field sets the last event ID even when its event has no data (nothing is dispatched).
    decoder = rxstream.SSEDecoder()
    assert decoder.feed(b"id: 3\n\n") == []
    assert decoder.feed(b"data: x\n\n") == [rxstream.SSEEvent("x", id="3")]


def test_a_read_of_one_line_events_not_utf8_gets_replacement_characters() -> None:
    # As test_bytes_that_are_not_utf8_become_replacement_characters, for events of one data line each.
    assert events(b"data: a\xfeb\n\ndata: \xc3\n\n") == [rxstream.SSEEvent("a\ufffdb"), rxstream.SSEEvent("\ufffd")]


# --- The frame reader: whole messages out, every other frame whole and in order to ``other``.


def wire(*frames: Frame) -> bytes:
    return b"".join(frame.serialize(mask=False) for frame in frames)


def read(pieces: list[bytes], max_size: int | None = 2**20) -> tuple[list[bytes], list[bytes]]:
    """What a FrameReader hands on for ``pieces``: the messages, and the bytes ``other`` took."""
    messages: list[bytes] = []
    other: list[bytes] = []

    def take_other(data: bytes) -> bool:
        other.append(data)
        return True

    reader = FrameReader(messages.extend, take_other, max_size)
    for piece in pieces:
        reader.feed(piece)
    return messages, other


LENGTHS = [0, 1, 124, 125, 126, 127, 128, 65535, 65536, 70000]


@pytest.mark.parametrize("length", LENGTHS)
def test_a_whole_message_of_each_length_boundary(length: int) -> None:
    # RFC 6455 5.2: a payload of up to 125 bytes has a 7-bit length, up to 65535 a 16-bit one, above a 64-bit one.
    payload = bytes(index % 251 for index in range(length))
    for opcode in (Opcode.TEXT, Opcode.BINARY):  # the reader leaves UTF-8 to whoever takes the text
        assert read([wire(Frame(opcode, payload))]) == ([payload], [])


def test_frames_cut_at_every_offset_give_the_same_messages_and_frames() -> None:
    ping = Frame(Opcode.PING, b"hi")
    frames = [Frame(Opcode.TEXT, b"a" * 125), Frame(Opcode.BINARY, b"b" * 126), ping, Frame(Opcode.TEXT, b"")]
    stream = wire(*frames)
    expected = [b"a" * 125, b"b" * 126, b""]
    for cut in range(len(stream) + 1):
        messages, other = read([stream[:cut], stream[cut:]])
        assert messages == expected and b"".join(other) == wire(ping), f"cut at {cut}"
    messages, other = read([stream[i : i + 1] for i in range(len(stream))])
    assert messages == expected and other == [wire(ping)]


def test_a_two_byte_frame_whose_first_byte_ends_a_read() -> None:
    assert read([b"\x81", b"\x00", b"\x82\x01", b"z"]) == ([b"", b"z"], [])


def test_a_fragmented_message_goes_to_websockets_whole_frames_in_order() -> None:
    start = Frame(Opcode.TEXT, b"ab", fin=False)
    rest = Frame(Opcode.CONT, b"cd", fin=True)
    after = Frame(Opcode.TEXT, b"whole")
    messages, other = read([wire(start, Frame(Opcode.PING, b""), rest, after)])
    assert messages == [b"whole"] and other == [wire(start), wire(Frame(Opcode.PING, b"")), wire(rest)]


def test_a_frame_over_max_size_hands_the_rest_to_websockets() -> None:
    big, small = Frame(Opcode.TEXT, b"x" * 200), Frame(Opcode.TEXT, b"y")
    messages, other = read([wire(Frame(Opcode.TEXT, b"ok"), big, small), wire(small)], max_size=100)
    assert messages == [b"ok"] and b"".join(other) == wire(big, small, small)


def test_a_masked_frame_hands_the_rest_to_websockets() -> None:
    masked = Frame(Opcode.TEXT, b"x" * 130).serialize(mask=True)
    messages, other = read([wire(Frame(Opcode.TEXT, b"ok")) + masked])
    assert messages == [b"ok"] and b"".join(other) == masked


def test_once_other_says_closed_every_byte_goes_to_it() -> None:
    close = Frame(Opcode.CLOSE, Close(1000, "bye").serialize())
    messages: list[bytes] = []
    other: list[bytes] = []

    def closing(data: bytes) -> bool:
        other.append(data)
        return False

    reader = FrameReader(messages.extend, closing, None)
    reader.feed(wire(Frame(Opcode.TEXT, b"a"), close, Frame(Opcode.TEXT, b"late")))
    reader.feed(b"more")
    assert messages == [b"a"] and other == [wire(close), wire(Frame(Opcode.TEXT, b"late")), b"more"]


def test_stop_hands_what_is_pending_to_websockets() -> None:
    messages: list[bytes] = []
    other: list[bytes] = []

    def take_other(data: bytes) -> bool:
        other.append(data)
        return True

    reader = FrameReader(messages.extend, take_other, None)
    reader.feed(wire(Frame(Opcode.TEXT, b"abc"))[:3])
    reader.stop()
    reader.feed(b"rest")
    assert messages == [] and other == [wire(Frame(Opcode.TEXT, b"abc"))[:3], b"rest"]


# --- The recovery decision (README: "Recovers, exactly once: a 408, 429 or 5xx at the handshake ...
# on the RetryPolicy schedule (1, 2, 4 s by default; at least a 429's Retry-After, never past the cap)").

E = "ws://host/stream"


@pytest.mark.parametrize("status", [500, 502, 503, 504, 599])
def test_every_5xx_is_retried(status: int) -> None:
    decision = decide(Ending(status=status), endpoint=E, policy=rxstream.RetryPolicy(), failures=0)
    assert isinstance(decision, Retry) and decision.delay == 1.0 and f"HTTP {status}" in decision.reason


def test_without_retry_after_the_delay_is_the_policys_even_under_a_second() -> None:
    policy = rxstream.RetryPolicy(initial=0.25, factor=3.0, cap=5.0)
    delays = [decide(Ending(status=503), endpoint=E, policy=policy, failures=n) for n in range(3)]
    assert [decision.delay for decision in delays if isinstance(decision, Retry)] == [0.25, 0.75, 2.25]


def test_the_default_schedule_and_its_cap() -> None:
    policy = rxstream.RetryPolicy(max_retries=6)
    assert [policy.delay(n) for n in range(6)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert rxstream.RetryPolicy(max_retries=2000).delay(1999) == 10.0  # far past the cap, still the cap


@pytest.mark.parametrize(
    "options",
    [{"max_retries": -1}, {"initial": -0.001}, {"factor": 0.999}, {"cap": -0.001}],
    ids=["max_retries", "initial", "factor", "cap"],
)
def test_a_policy_out_of_bounds_is_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="RetryPolicy needs"):
        rxstream.RetryPolicy(**options)  # type: ignore[arg-type]


def test_a_policy_on_its_bounds_is_taken() -> None:
    constant = rxstream.RetryPolicy(max_retries=0, initial=0.0, factor=1.0, cap=0.0)
    assert constant.delay(0) == 0.0 and constant.delay(5) == 0.0
    same = rxstream.RetryPolicy(initial=2.0, factor=1.0)
    assert [same.delay(n) for n in range(3)] == [2.0, 2.0, 2.0]


def test_no_retries_fails_on_the_first_failure() -> None:
    decision = decide(Ending(status=503), endpoint=E, policy=rxstream.RetryPolicy(max_retries=0), failures=0)
    assert isinstance(decision, Fail) and isinstance(decision.error, rxstream.TransportError)
    assert "503" in str(decision.error)


def test_a_policy_is_a_value_that_cannot_change() -> None:
    # A RetryPolicy() default argument is shared by every call (pyproject's extend-immutable-calls says so):
    # it must not change, and equal policies are interchangeable.
    policy = rxstream.RetryPolicy()
    with pytest.raises(AttributeError):
        policy.cap = 60.0  # type: ignore[misc]
    assert policy == rxstream.RetryPolicy() and hash(policy) == hash(rxstream.RetryPolicy(3, 1.0, 2.0, 10.0))


def test_a_finished_stream_is_done_whatever_else_happened() -> None:
    # decide: Done, "the stream ended as it should", before any failure is looked at.
    for ending in (Ending(finished=True), Ending(finished=True, status=500), Ending(finished=True, close_code=1008)):
        assert decide(ending, endpoint=E, policy=rxstream.RetryPolicy(), failures=3) is DONE


# Mixed line ends, an event over several data lines, a CR-ended line before an LF-led one.
CUT_BODY = b"data: a\r\ndata: b\n\nid: 1\revent: e\rdata: c\r\r: ping\n\ndata: d\r\n\r\n"


def test_a_body_cut_anywhere_into_two_or_three_reads_gives_the_same_events() -> None:
    # The README: "bytes in, however the network cut them, events out". Every cut, exhaustively
    # (the split property in tests/test_sse.py draws only some).
    whole = events(CUT_BODY)
    assert whole == [
        rxstream.SSEEvent("a\nb"),
        rxstream.SSEEvent("c", "e", "1"),
        rxstream.SSEEvent("d", "message", "1"),
    ]
    size = len(CUT_BODY)
    for first in range(size + 1):
        for second in range(first, size + 1):
            pieces = [CUT_BODY[:first], CUT_BODY[first:second], CUT_BODY[second:]]
            assert list(rxstream.sse_events(pieces)) == whole, (first, second)


def test_a_bom_after_the_first_byte_is_not_dropped() -> None:
    # WHATWG: only "one leading U+FEFF BYTE ORDER MARK character must be ignored": after a blank
    # line, "\ufeffdata" is a field of another name, ignored.
    assert events(b"\n\xef\xbb\xbfdata: x\n\n") == []
    assert events(b"\n\xef\xbb\xbfdata: x\n\n", bytewise=True) == []


def test_retry_takes_at_most_ten_digits() -> None:
    # README: "`retry:` takes ASCII digits only (at most 10)".
    body = b"retry: 9999999999\ndata: a\n\nretry: 10000000000\ndata: b\n\n"
    assert [event.retry for event in events(body)] == [9_999_999_999, None]


def test_bytes_that_are_not_utf8_become_replacement_characters() -> None:
    # WHATWG: the stream is decoded with "UTF-8 decode", which replaces each invalid sequence with U+FFFD.
    assert events(b"event: \xff\ndata: a\xfeb\n\n") == [rxstream.SSEEvent("a\ufffdb", "\ufffd")]


def test_end_discards_what_is_held_and_keeps_the_last_event_id() -> None:
    # end(): "whatever is held is discarded, never dispatched"; pending is what is held. The last
    # event id stays, as an EventSource keeps it across a reconnection (WHATWG).
    decoder = rxstream.SSEDecoder()
    assert decoder.feed(b"id: 7\ndata: a\n\nevent: x\nretry: 5\ndata: held\ndata: op") == [
        rxstream.SSEEvent("a", id="7")
    ]
    assert decoder.pending > 0
    assert decoder.end() == [] and decoder.pending == 0
    assert decoder.feed(b"en\ndata: b\n\n") == [rxstream.SSEEvent("b", "message", "7")]


def test_the_encoder_omits_the_default_type_and_takes_a_zero_retry() -> None:
    # SSEEncoder.encode: "its event type (omitted for message)"; WHATWG: a retry of "0" is a valid
    # reconnection time; comment() with no text is an empty comment.
    encoder = rxstream.SSEEncoder()
    assert encoder.encode("a", event="message") == encoder.encode("a") == b"data: a\n\n"
    assert encoder.retry(0) == b"retry: 0\n\n"
    assert encoder.comment() == b": \n\n"
    assert events(encoder.retry(0) + encoder.comment() + encoder.encode("a")) == [rxstream.SSEEvent("a", retry=None)]
