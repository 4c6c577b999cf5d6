"""The lone argument fragment's shortcuts change nothing: parse_sse's few-step check of the common
fragment gives what the full validation gives (and leaves every other shape, malformed ones with
their FrameError, to it), and sse_pipeline's fragment path, which takes plain text deltas too, gives
what the five operators piped one by one give, however the stream goes and however fast the
consumer takes it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import Observable
from reactivex.observer import Observer

import rxstream
from rxstream import from_frames
from rxstream import operators as rxo
from rxstream.core._stage import Shared
from rxstream.core._values import Stats, ToolCallFragment
from rxstream.operators._finalize import Timer
from rxstream.operators._fragment_path import FragmentPath
from rxstream.operators._parse_sse import ParseSSEStage, common_fragment, common_text
from rxstream.protocol._sse import SSEEvent

from .responses_events import FunctionCall, Message, Reasoning, encode, response_events
from .support import Outcome, assert_same_outcome, run
from .test_pipeline import run_paced

TEXT = st.text(st.characters(codec="utf-8"), max_size=4)  # JSON text is UTF-8: no lone surrogates
NOT_AN_INDEX = st.sampled_from([-1, True, False, "0", 1.5, None, [0]])
NOT_A_STRING = st.sampled_from([None, 5, True, ["x"], {"a": "b"}])
COMMON = st.fixed_dictionaries({"index": st.integers(0, 2), "function": st.fixed_dictionaries({"arguments": TEXT})})
FIRST = st.builds(
    lambda index, arguments: {
        "index": index,
        "id": f"call_{index}",
        "type": "function",
        "function": {"name": f"tool_{index}", "arguments": arguments},
    },
    st.integers(0, 2),
    TEXT,
)
# near the common shape, one thing off: a field of the wrong type, one more or one less
ODD = st.one_of(
    st.fixed_dictionaries({"index": NOT_AN_INDEX, "function": st.fixed_dictionaries({"arguments": TEXT})}),
    st.fixed_dictionaries({"index": st.integers(0, 2), "function": st.fixed_dictionaries({"arguments": NOT_A_STRING})}),
    st.fixed_dictionaries({"index": st.integers(0, 2), "function": NOT_A_STRING | st.just({})}),
    st.fixed_dictionaries({"index": st.integers(0, 2)}),
    st.fixed_dictionaries({"function": st.fixed_dictionaries({"arguments": TEXT})}),
    st.fixed_dictionaries(
        {"index": st.integers(0, 2), "function": st.fixed_dictionaries({"arguments": TEXT})},
        optional={"id": st.none() | st.just("call_x") | NOT_A_STRING, "type": st.just("function")},
    ),
    st.fixed_dictionaries(
        {"index": st.integers(0, 2), "function": st.fixed_dictionaries({"arguments": TEXT, "name": st.none() | TEXT})}
    ),
    NOT_AN_INDEX,
)
ENTRY = st.one_of(COMMON, FIRST, ODD, ODD)
TOOL_CALLS = st.one_of(
    st.lists(ENTRY, min_size=1, max_size=1),
    st.lists(ENTRY, max_size=3),
    ENTRY,  # not a list at all
)


MALFORMED_OR_NEAR = [
    [{"index": True, "function": {"arguments": "x"}}],
    [{"index": -1, "function": {"arguments": "x"}}],
    [{"index": "0", "function": {"arguments": "x"}}],
    [{"index": 0, "function": {"arguments": None}}],
    [{"index": 0, "function": {"arguments": 5}}],
    [{"index": 0, "function": "x"}],
    [{"index": 0, "function": None}],
    [{"index": 0, "id": "call_x", "function": {"arguments": "x"}}],
    [{"index": 0, "id": 7, "function": {"arguments": "x"}}],
    [{"index": 0, "function": {"arguments": "x", "name": "f"}}],
    [{"index": 0, "function": {"name": 5, "arguments": "x"}}],
    [{"index": 0, "type": "function"}],
    [{"function": {"arguments": "x"}}],
    [{"index": 0, "function": {"arguments": "x"}}, {"index": 1, "function": {"arguments": "y"}}],
    [],
    [0],
    {"index": 0, "function": {"arguments": "x"}},
]


def event(delta: dict[str, Any], finish_reason: str | None = None, **fields: Any) -> SSEEvent:
    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
    return SSEEvent(orjson.dumps({"id": "chatcmpl-1", "created": 1727346178, "choices": [choice], **fields}).decode())


def test_the_common_fragment_is_recognised_and_nothing_near_it() -> None:
    assert common_fragment([{"index": 2, "function": {"arguments": '{"a'}}]) == (
        ToolCallFragment(2, None, None, '{"a'),
    )
    assert common_fragment([{"index": 0, "function": {"arguments": ""}}]) == (ToolCallFragment(0),)
    for odd in MALFORMED_OR_NEAR:
        assert common_fragment(odd) is None, odd


# What can be off in a chat completion chunk near the common text delta: where, which field, and to what
OFF: list[tuple[str, str, st.SearchStrategy[Any]]] = [
    ("delta", "content", st.just("") | NOT_A_STRING),
    ("delta", "role", st.just("assistant")),
    ("delta", "reasoning_content", st.none() | TEXT),
    ("delta", "refusal", st.none() | TEXT),
    ("delta", "tool_calls", st.none() | st.just([]) | st.just([{"index": 0, "function": {"arguments": "x"}}])),
    ("choice", "index", st.sampled_from([1, 0.0, True, None, "0"])),
    ("choice", "delta", NOT_A_STRING),
    ("choice", "finish_reason", st.none() | st.sampled_from(["", "stop", 5])),
    ("choice", "logprobs", st.none()),
    ("message", "usage", st.none() | st.just({}) | st.just({"total_tokens": 3}) | st.just(5)),
    ("message", "error", st.none() | st.just("") | st.just({"message": "no"})),
    ("message", "type", st.just("message_start")),
    ("message", "created", NOT_A_STRING),
    ("message", "choices", NOT_A_STRING | st.just([])),
]


@st.composite
def near_text(draw: st.DrawFn) -> Any:
    """A chat completion chunk of the common text delta with none, one or two things off, or two choices."""
    delta: dict[str, Any] = {"content": draw(TEXT.filter(bool))}
    choice: dict[str, Any] = {"index": 0, "delta": delta}
    message: dict[str, Any] = {"id": "chatcmpl-1", "created": 1727346178, "choices": [choice]}
    for where, field, values in draw(st.lists(st.sampled_from(OFF), max_size=2)):
        {"delta": delta, "choice": choice, "message": message}[where][field] = draw(values)
    if draw(st.integers(0, 9)) == 0:
        message["choices"] = [{**choice, "index": 1}, choice][:: draw(st.sampled_from([1, -1]))]
    return message


@settings(max_examples=400, deadline=None)
@given(near_text(), st.sampled_from([0, 0, 1]))
def test_the_common_text_is_what_the_full_decoding_gives(message: Any, choice: int) -> None:
    """parse_sse's few-step check of a plain text delta answers only where the full decoding gives a plain chunk of that text."""
    text = common_text(message, choice)
    stage = ParseSSEStage(Observer(), Shared(Stats(), None), choice)
    try:
        full = stage.decode(0, message)
    except (ValueError, TypeError, LookupError, rxstream.ResponseFailedError):
        full = None
    if text is not None:
        assert full == rxstream.Chunk(0, text, False, message.get("created")) and full.plain


def test_the_common_text_is_recognised_as_openai_sends_it() -> None:
    choice = {"index": 0, "delta": {"content": "Hi"}, "logprobs": None, "finish_reason": None}
    chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1727346178, "choices": [choice]}
    assert common_text(chunk, 0) == "Hi"
    assert common_text({**chunk, "usage": None}, 0) == "Hi"  # stream_options.include_usage: null until the last
    assert common_text(chunk, 1) is None
    assert common_text({**chunk, "choices": [{**choice, "delta": {"content": ""}}]}, 0) is None  # carries nothing


def parsed(events: list[SSEEvent]) -> Outcome:
    return run(rxstream.from_frames(events).pipe(rxo.parse_sse()))


def same_as_in_full(entries: list[Any]) -> None:
    """A delta with ``tool_calls`` alone takes the few-step check; with ``"content": null`` beside it
    (the same delta) the full one. Same chunks, and the same FrameError for a malformed entry."""
    alone = parsed([event({"tool_calls": tool_calls}) for tool_calls in entries])
    in_full = parsed([event({"tool_calls": tool_calls, "content": None}) for tool_calls in entries])
    assert alone.items == in_full.items
    assert type(alone.error) is type(in_full.error)
    if isinstance(alone.error, rxstream.FrameError) and isinstance(in_full.error, rxstream.FrameError):
        assert (alone.error.reason, alone.error.number) == (in_full.error.reason, in_full.error.number)


@pytest.mark.parametrize("tool_calls", MALFORMED_OR_NEAR)
def test_a_fragment_near_the_common_shape_is_checked_in_full(tool_calls: Any) -> None:
    same_as_in_full([[{"index": 0, "function": {"arguments": "x"}}], tool_calls])


@settings(max_examples=400, deadline=None)
@given(st.lists(TOOL_CALLS, min_size=1, max_size=4))
def test_parse_sse_checks_lone_fragments_as_the_full_validation_does(entries: list[Any]) -> None:
    same_as_in_full(entries)


@st.composite
def chat_streams(draw: st.DrawFn) -> list[SSEEvent]:
    """Chat-completion streams where most events are lone fragments, some of calls not started yet,
    among text, calls' first fragments, odd or malformed entries, finish reasons and usage, with
    or without the final [DONE], and now and then more after it."""
    events = [event({"role": "assistant", "content": None})] if draw(st.booleans()) else []
    for _ in range(draw(st.integers(0, 30))):
        kind = draw(st.sampled_from(["common"] * 8 + ["first"] * 2 + ["text", "odd", "several", "usage", "finish"]))
        if kind == "common":
            events.append(event({"tool_calls": [draw(COMMON)]}))
        elif kind == "first":
            events.append(event({"tool_calls": [draw(FIRST)]}))
        elif kind == "text":
            events.append(event({"content": draw(TEXT)}))
        elif kind == "odd":
            events.append(event({"tool_calls": draw(TOOL_CALLS)}))
        elif kind == "several":
            events.append(event({"tool_calls": draw(st.lists(COMMON | FIRST, min_size=2, max_size=3))}))
        elif kind == "usage":  # on a fragment, which is then not a lone one
            events.append(event({"tool_calls": [draw(COMMON)]}, usage={"total_tokens": draw(st.integers(0, 9))}))
        else:
            events.append(event({"tool_calls": [draw(COMMON)]}, draw(st.sampled_from(["tool_calls", "length"]))))
    if draw(st.booleans()):
        events.append(event({}, "tool_calls"))
    if draw(st.integers(0, 3)):
        events.append(SSEEvent("[DONE]"))
        if not draw(st.integers(0, 4)):
            events.append(event({"tool_calls": [draw(COMMON)]}))
    return events


@st.composite
def text_streams(draw: st.DrawFn) -> list[SSEEvent]:
    """Chat-completion streams where most events are plain text deltas, the text path's, among empty
    ones, reasoning, refusals, a fragment, finish reasons, usage, chunks near the common text delta and malformed events, with or without
    the final [DONE], and now and then more after it."""
    events = [event({"role": "assistant", "content": None})] if draw(st.booleans()) else []
    for _ in range(draw(st.integers(0, 40))):
        kind = draw(
            st.sampled_from(["text"] * 10 + ["empty", "reasoning", "refusal", "call", "finish", "usage", "bad", "near"])
        )
        if kind == "text":
            events.append(event({"content": draw(TEXT)}))
        elif kind == "near":
            events.append(SSEEvent(orjson.dumps(draw(near_text())).decode()))
        elif kind == "empty":
            events.append(event({"content": draw(st.sampled_from(["", None]))}))
        elif kind == "reasoning":
            events.append(event({"reasoning_content": draw(TEXT)}))
        elif kind == "refusal":
            events.append(event({"content": draw(TEXT), "refusal": draw(TEXT)}))
        elif kind == "call":
            events.append(event({"tool_calls": [draw(COMMON | FIRST)]}))
        elif kind == "finish":
            events.append(event({"content": draw(TEXT)}, draw(st.sampled_from(["stop", "length"]))))
        elif kind == "usage":
            events.append(event({"content": draw(TEXT)}, usage={"total_tokens": draw(st.integers(0, 9))}))
        else:
            events.append(event({"content": draw(NOT_A_STRING)}))
    if draw(st.integers(0, 3)):
        events.append(SSEEvent("[DONE]"))
        if not draw(st.integers(0, 4)):
            events.append(event({"content": draw(TEXT)}))
    return events


@st.composite
def responses_streams(draw: st.DrawFn) -> list[bytes]:
    """OpenAI Responses streams, mostly text deltas, with reasoning and a call now and then, shuffled
    within a few places, some events sent twice, and sometimes cut short: the path must leave every
    held, early, late or duplicate delta to reorder."""
    items: list[Any] = [Message(tuple(draw(st.lists(TEXT, max_size=30))) or ("",))]
    if draw(st.booleans()):
        items.insert(0, Reasoning(((draw(TEXT), draw(TEXT)),)))
    if draw(st.booleans()):
        items.append(FunctionCall("call_a", "f", (draw(TEXT), draw(TEXT))))
    events = encode(response_events(items, usage={"total_tokens": 3} if draw(st.booleans()) else None))
    spread = draw(st.integers(0, 4))
    keys = [place + draw(st.floats(0, spread)) for place in range(len(events))]
    events = [event for _, event in sorted(zip(keys, events, strict=True), key=lambda pair: pair[0])]
    for place in sorted(draw(st.lists(st.integers(0, len(events) - 1), max_size=3)), reverse=True):
        events.insert(place, events[place])
    return events[: draw(st.integers(0, len(events)))] if draw(st.integers(0, 4)) == 0 else events


def paced(
    pipeline: Callable[[Timer], Callable[[Observable[Any]], Observable[Any]]],
    events: list[SSEEvent] | list[bytes],
    pause_at: int | None,
    hot: bool = False,
) -> Outcome:
    """``run_paced``, with a timer that reads how many events the source has given: the stats'
    times then say when the first chunk and the last reached finalize. A ``hot`` source pushes
    on while the consumer pauses (reactivex.from_iterable knows no demand): the buffer queues."""
    read = 0

    def source() -> Iterator[SSEEvent | bytes]:
        nonlocal read
        for item in events:
            read += 1
            yield item

    return run_paced(pipeline(lambda: float(read)), pause_at, source(), reactivex.from_iterable if hot else from_frames)


@settings(max_examples=300, deadline=None)
@given(
    chat_streams() | text_streams(), st.integers(1, 8), st.integers(1, 3), st.none() | st.integers(0, 40), st.booleans()
)
def test_sse_pipeline_equals_the_operators_piped_one_by_one(
    events: list[SSEEvent], window: int, max_pending: int, pause_at: int | None, hot: bool
) -> None:
    """Same response, same stats, same error, whatever arrives and however fast the consumer takes it:
    a consumer that pauses fills the buffer, which the fragment path must leave to the stages."""

    def fused(timer: Timer) -> Callable[[Observable[Any]], Observable[Any]]:
        return rxstream.sse_pipeline(window=window, max_pending=max_pending, timer=timer)

    def piped(timer: Timer) -> Callable[[Observable[Any]], Observable[Any]]:
        return lambda source: source.pipe(
            rxo.parse_sse(),
            rxo.reorder(window),
            rxo.backpressure_buffer(max_pending),
            rxo.accumulate(),
            rxo.finalize(timer),
        )

    assert_same_outcome(paced(fused, events, pause_at, hot), paced(piped, events, pause_at, hot))


@settings(max_examples=200, deadline=None)
@given(responses_streams(), st.integers(1, 8), st.integers(1, 3), st.none() | st.integers(0, 40), st.booleans())
def test_responses_pipeline_equals_the_operators_piped_one_by_one(
    events: list[bytes], window: int, max_pending: int, pause_at: int | None, hot: bool
) -> None:
    """The text path in responses_pipeline, where deltas come numbered by the sender and may be
    reordered or resent: the same response, stats, error and partial as the operators piped."""

    def fused(timer: Timer) -> Callable[[Observable[Any]], Observable[Any]]:
        return rxstream.responses_pipeline(window=window, max_pending=max_pending, timer=timer)

    def piped(timer: Timer) -> Callable[[Observable[Any]], Observable[Any]]:
        return lambda source: source.pipe(
            rxo.parse_responses(),
            rxo.reorder(window),
            rxo.backpressure_buffer(max_pending),
            rxo.accumulate(),
            rxo.finalize(timer),
        )

    assert_same_outcome(paced(fused, events, pause_at, hot), paced(piped, events, pause_at, hot))


def indices_taken(monkeypatch: pytest.MonkeyPatch, method: str) -> list[int]:
    """The indices of the chunks FragmentPath's ``method`` (take, take_text or take_plain) takes, as they are taken."""
    taken: list[int] = []
    take = getattr(FragmentPath, method)

    def counted(self: FragmentPath, chunk: rxstream.Chunk | int, *text: str) -> bool:
        took: bool = take(self, chunk, *text)
        if took:
            taken.append(chunk if isinstance(chunk, int) else chunk.index)
        return took

    monkeypatch.setattr(FragmentPath, method, counted)
    return taken


def test_the_fragment_path_takes_every_lone_fragment_of_a_started_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not only equal, but taken: the property above would hold as well if the path took nothing."""
    taken = indices_taken(monkeypatch, "take")
    events = [
        event({"content": "Let me look. "}),  # 0: the first chunk, which starts finalize's timer
        event({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),  # 1: call 1 has not started
        event({"tool_calls": [{"index": 0, "id": "call_0", "function": {"name": "f", "arguments": '{"a": '}}]}),
        event({"tool_calls": [{"index": 0, "function": {"arguments": "1"}}]}),  # 3
        event({"tool_calls": [{"index": 0, "function": {"arguments": ""}}]}),  # 4
        event(
            {"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}, "tool_calls"
        ),  # 5: with its finish reason
        SSEEvent("[DONE]"),
    ]
    response = run(rxstream.from_frames(events).pipe(rxstream.sse_pipeline())).items[0]
    assert taken == [3, 4]
    assert [(call.index, call.id, call.name, call.arguments) for call in response.tool_calls] == [
        (0, "call_0", "f", '{"a": 1}'),
        (1, "", "", "{}"),
    ]
    assert response.text == "Let me look. " and response.finish_reason == "tool_calls"
    assert response.chunks == 7 and response.stats.chunks == 7


def test_the_path_takes_every_plain_text_delta_in_order_after_the_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain text deltas arriving in order go to the rope, from the second on; anything more goes the ordinary way."""
    taken = indices_taken(monkeypatch, "take_plain")
    events = [
        event({"role": "assistant", "content": ""}),  # carries nothing: no chunk
        event({"content": "Hello"}),  # 0: the first chunk, which starts finalize's timer
        event({"content": ", "}),  # 1
        event({"reasoning_content": "hm"}),  # 2: reasoning
        event({"content": "world"}),  # 3
        event({"content": "!"}, usage={"total_tokens": 3}),  # 4: with usage
        event({"content": ""}, "stop"),  # 5: with its finish reason
        SSEEvent("[DONE]"),  # 6: final
    ]
    response = run(rxstream.from_frames(events).pipe(rxstream.sse_pipeline())).items[0]
    assert taken == [1, 3]
    assert response.text == "Hello, world!" and response.reasoning == "hm" and response.finish_reason == "stop"
    assert response.chunks == 7 and response.stats.chunks == 7 and response.stats.usage == {"total_tokens": 3}


def test_responses_pipeline_takes_the_text_deltas_in_order_and_leaves_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = indices_taken(monkeypatch, "take_text")
    plain = indices_taken(monkeypatch, "take_plain")
    events = encode(response_events([Message(("Hel", "lo", ", ", "world", "!"))]))
    deltas = [n for n, event in enumerate(events) if b'"response.output_text.delta"' in event]
    late = events.pop(deltas[2])  # ", " comes after "world": reorder holds "world", then delivers both
    events.insert(deltas[3], late)
    response = run(rxstream.from_frames(events).pipe(rxstream.responses_pipeline())).items[0]
    assert response.text == "Hello, world!" and response.stats.out_of_order == 1
    # Every plain chunk in order after the first (a lifecycle event's, empty), the deltas among them;
    # not the early one reorder held, nor the late one that released it, nor the last, final one.
    # The first delta of the part goes as a Chunk; the next ones in order without one (common_delta).
    assert deltas[0] in taken and deltas[1] in plain and deltas[4] in plain and 0 not in taken + plain
    assert deltas[2] not in taken + plain and deltas[3] not in taken + plain and len(events) - 1 not in taken
    assert plain == [deltas[1], deltas[4]]
    assert response.stats.chunks == len(events)


def test_a_fragment_beside_anything_else_in_its_delta_goes_the_full_way() -> None:
    """Only a delta of tool calls alone is a lone fragment: text, reasoning or a refusal beside one is kept."""
    common = [{"index": 0, "function": {"arguments": "1"}}]
    events = [
        event({"tool_calls": [{"index": 0, "id": "call_0", "function": {"name": "f", "arguments": '{"a": '}}]}),
        event({"tool_calls": common, "content": "Checking. "}),
        event({"tool_calls": common, "reasoning_content": "maybe "}),
        event({"tool_calls": common, "refusal": "not that"}),
        event({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}),
        event({}, "tool_calls"),
        SSEEvent("[DONE]"),
    ]
    response = run(rxstream.from_frames(events).pipe(rxstream.sse_pipeline())).items[0]
    assert (response.text, response.reasoning, response.refusal) == ("Checking. ", "maybe ", "not that")
    assert [(call.id, call.arguments) for call in response.tool_calls] == [("call_0", '{"a": 111}')]
