"""parse_responses' few-step check of the common text delta changes nothing: ``common_delta`` answers
only where the full decoding gives a plain chunk of that text, counted for the same part, and
responses_pipeline, which hands such deltas to the fragment path without a Chunk, gives what the
five operators piped one by one give with the full decoding alone: interleaved items, sequence
numbers out of order, resends, refusal, reasoning and argument deltas, deltas near the common
shape or malformed, failures, non-ASCII text, and a consumer that pauses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import Observable
from reactivex.observer import Observer

import rxstream
from rxstream import operators as rxo
from rxstream.core._stage import Operator, Shared
from rxstream.core._values import Chunk, Stats
from rxstream.operators._finalize import Timer
from rxstream.operators._parse import Payload
from rxstream.operators._parse_responses import ParseResponsesStage
from rxstream.protocol._sse import SSEEvent

from .responses_events import FunctionCall, Message, Reasoning, response_events
from .support import assert_same_outcome, run
from .test_fragment_path import paced

TEXT = st.text(st.characters(codec="utf-8"), max_size=4)  # JSON text is UTF-8: no lone surrogates
MISSING = "missing"  # a field left out
NULL_INDICES = {"output_index": None, "content_index": None}


def off(number: int) -> list[tuple[str, st.SearchStrategy[Any]]]:
    """What can be off in an output_text.delta numbered ``number`` near the common one: a field, and what it becomes."""
    return [
        ("sequence_number", st.sampled_from([float(number), str(number), bool(number), None, -1, MISSING])),
        ("sequence_number", st.integers(0, number + 2)),
        ("delta", st.sampled_from([None, 5, ["x"], MISSING])),
        ("output_index", st.sampled_from([None, 1, "0", 0.0, False, [0], MISSING])),
        ("content_index", st.sampled_from([None, 1, "0", 0.0, True, [0], MISSING])),
        ("type", st.sampled_from(["response.refusal.delta", "response.output_text.done", None, MISSING])),
    ]


class FullDecoding(ParseResponsesStage):
    """parse_responses without its few-step check: every event decoded in full."""

    def common_delta(self, event: Any) -> str | None:
        return None


def full_decoding() -> Operator[Payload | SSEEvent, Chunk]:
    return Operator(FullDecoding)


def delta(number: int, text: str, output_index: Any = 0, content_index: Any = 0) -> dict[str, Any]:
    return {
        "type": "response.output_text.delta",
        "sequence_number": number,
        "item_id": "item_0",
        "output_index": output_index,
        "content_index": content_index,
        "delta": text,
        "logprobs": [],
    }


@st.composite
def near_delta(draw: st.DrawFn, number: int) -> dict[str, Any]:
    """A text delta numbered ``number`` with none, one or two things off."""
    event = delta(number, draw(TEXT))
    for field, values in draw(st.lists(st.sampled_from(off(number)), max_size=2)):
        value = draw(values)
        if value == MISSING:
            event.pop(field, None)
        else:
            event[field] = value
    return event


def stage_after(first: dict[str, Any]) -> ParseResponsesStage:
    """A parse_responses stage that has decoded ``first``, the event after those before it."""
    stage = ParseResponsesStage(Observer(), Shared(Stats(), None))
    stage.highest = first["sequence_number"] - 1
    stage.decode(first)
    return stage


@settings(max_examples=500, deadline=None)
@given(st.data(), st.sampled_from([0, 3]), st.sampled_from([(0, 0), (1, 0), (None, None), (0.0, False)]))
def test_the_common_delta_is_what_the_full_decoding_gives(
    data: st.DataObject, before: int, part: tuple[Any, Any]
) -> None:
    """After a delta of ``part`` numbered ``before``, the few-step check answers only for a delta the
    full decoding gives as a plain chunk, the next in order, of that text, counted for that part; and
    for the common one it does."""
    first = delta(before, "ab", *part)
    event = data.draw(near_delta(before + 1))
    fast, full = stage_after(first), stage_after(first)
    text = fast.common_delta(event)
    try:
        chunk: Chunk | None = full.decode(event)
    except (ValueError, TypeError, LookupError):
        chunk = None
    if text is not None:
        assert chunk == Chunk(before + 1, text) and chunk.plain
        assert full.delivered == {("text", *part): 2 + len(text)} and full.highest == before + 1
    elif type(event.get("delta")) is str and orjson.dumps(event) == orjson.dumps(
        delta(before + 1, event["delta"], *part)
    ):
        raise AssertionError(f"the common delta {event} was left to the full decoding")


def test_no_delta_is_common_while_a_failure_waits() -> None:
    stage = stage_after(delta(3, "ab"))
    assert stage.common_delta(delta(4, "cd")) == "cd"
    stage.decode({"type": "response.failed", "sequence_number": 9, "response": {"id": "resp_1", "error": None}})
    assert stage.failure is not None and stage.common_delta(delta(10, "cd")) is None


def interleaved(events: list[dict[str, Any]], order: list[int]) -> list[dict[str, Any]]:
    """``events`` with the output items' events merged in ``order`` (the output index of each next
    one; each item's own stay in order), renumbered."""
    first, *middle, last = events
    items: dict[int, list[dict[str, Any]]] = {}
    for event in middle:
        if "output_index" in event:
            items.setdefault(event["output_index"], []).append(event)
    merged = [first, *(event for event in middle if "output_index" not in event)]
    merged += [items[index].pop(0) for index in order]
    return [{**event, "sequence_number": number} for number, event in enumerate([*merged, last])]


def item_order(events: list[dict[str, Any]]) -> list[int]:
    return [event["output_index"] for event in events if "output_index" in event]


@st.composite
def responses_text_streams(draw: st.DrawFn) -> list[Any]:
    """Responses streams, mostly text deltas of one or two messages, with refusals, reasoning and a
    call now and then, items interleaved, a delta near the common shape or malformed now and then,
    completed, incomplete or failed; then shuffled within a few places, some events sent twice, and
    sometimes cut short. Each event as JSON bytes, as its text, or as an SSE event."""
    items: list[Any] = [Message(tuple(draw(st.lists(TEXT, min_size=1, max_size=25))))]
    if draw(st.booleans()):
        items.append(Message(tuple(draw(st.lists(TEXT, max_size=10))) or ("",), refusal=draw(st.booleans())))
    if draw(st.booleans()):
        items.insert(draw(st.integers(0, len(items))), Reasoning(((draw(TEXT), draw(TEXT)),)))
    if draw(st.booleans()):
        items.insert(draw(st.integers(0, len(items))), FunctionCall("call_a", "f", (draw(TEXT), draw(TEXT))))
    status = draw(st.sampled_from(["completed"] * 4 + ["incomplete", "failed"]))
    events = response_events(items, status=status, usage={"total_tokens": 3} if draw(st.booleans()) else None)
    if draw(st.booleans()):
        events = interleaved(events, draw(st.permutations(item_order(events))))
    for place, event in enumerate(events):
        if event["type"] == "response.output_text.delta" and draw(st.integers(0, 9)) == 0:
            events[place] = draw(near_delta(event["sequence_number"]))
    spread = draw(st.integers(0, 3))
    keys = [place + draw(st.floats(0, spread)) for place in range(len(events))]
    events = [event for _, event in sorted(zip(keys, events, strict=True), key=lambda pair: pair[0])]
    for place in sorted(draw(st.lists(st.integers(0, len(events) - 1), max_size=3)), reverse=True):
        events.insert(place, events[place])
    if draw(st.integers(0, 4)) == 0:
        events = events[: draw(st.integers(0, len(events)))]
    form = draw(st.sampled_from(["bytes", "str", "sse"]))
    encoded = [orjson.dumps(event) for event in events]
    return (
        encoded if form == "bytes" else [SSEEvent(raw.decode()) if form == "sse" else raw.decode() for raw in encoded]
    )


def five(timer: Timer, window: int, max_pending: int) -> Callable[[Observable[Any]], Observable[Any]]:
    """The five operators piped one by one, parse_responses decoding every event in full."""
    return lambda source: source.pipe(
        full_decoding(),
        rxo.reorder(window),
        rxo.backpressure_buffer(max_pending),
        rxo.accumulate(),
        rxo.finalize(timer),
    )


@settings(max_examples=300, deadline=None)
@given(responses_text_streams(), st.integers(1, 8), st.integers(1, 3), st.none() | st.integers(0, 40), st.booleans())
def test_responses_pipeline_equals_the_operators_decoding_in_full(
    events: list[Any], window: int, max_pending: int, pause_at: int | None, hot: bool
) -> None:
    """Same response, stats (bytes and chunks too), error and partial, whatever arrives and however
    fast the consumer takes it: the deltas the path takes without a Chunk leave no trace."""

    def fused(timer: Timer) -> Callable[[Observable[Any]], Observable[Any]]:
        return rxstream.responses_pipeline(window=window, max_pending=max_pending, timer=timer)

    assert_same_outcome(
        paced(fused, events, pause_at, hot),
        paced(lambda timer: five(timer, window, max_pending), events, pause_at, hot),
    )


@settings(max_examples=200, deadline=None)
@given(responses_text_streams())
def test_parse_responses_gives_the_chunks_of_the_full_decoding(events: list[Any]) -> None:
    """The operator alone: the same chunks, stats and error as the full decoding."""
    fast = run(rxstream.from_frames(events).pipe(rxo.parse_responses()))
    full = run(rxstream.from_frames(events).pipe(full_decoding()))
    assert fast.items == full.items
    assert repr(fast.error) == repr(full.error) and fast.completed == full.completed


def test_the_path_takes_the_deltas_of_each_part_after_its_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two messages' deltas interleaved: each switch of part goes the full way, the deltas after it the few steps."""
    events = response_events([Message(("Hé", "llo", ", ")), Message(("wör", "ld", "!"))])
    order = item_order(events)  # each message: added, part added, 3 deltas, text done, part done, done
    merged = interleaved(events, [*order[:4], *order[8:12], order[4], *order[12:], *order[5:8]])
    taken: list[int] = []
    take = ParseResponsesStage.take

    def counted(self: ParseResponsesStage, item: Any) -> bool:
        took: bool = take(self, item)
        if took:
            taken.append(orjson.loads(item)["sequence_number"])
        return took

    monkeypatch.setattr(ParseResponsesStage, "take", counted)
    outcome = run(rxstream.from_frames([orjson.dumps(event) for event in merged]).pipe(rxstream.responses_pipeline()))
    assert outcome.items[0].text == "Héllowörld, !"  # in the order they came
    # the first delta of a part, and each after a switch ("wör", ", ", "!"), the full way; "llo" and "ld" not
    assert [merged[number]["delta"] for number in taken] == ["llo", "ld"]


def test_a_resent_delta_of_another_part_leaves_the_part_a_common_one_is_counted_for() -> None:
    """Only a delta counted (new, not a resend) names the part: one numbered before the highest, of a
    part no delta was counted for (an index that cannot be a key), then the next in order of that
    part, are decoded in full: the FrameError of the full decoding."""
    events = response_events([Message(("a", "b"))])[:5]  # created, in progress, added, part added, "a"
    events += [delta(5, "b"), delta(1, "x", output_index=[5]), delta(6, "y", output_index=[5])]
    encoded = [orjson.dumps(event) for event in events]
    fast = run(rxstream.from_frames(encoded).pipe(rxo.parse_responses()))
    full = run(rxstream.from_frames(encoded).pipe(full_decoding()))
    assert fast.items == full.items and repr(fast.error) == repr(full.error)
    assert [chunk.data for chunk in fast.items] == ["", "", "", "", "a", "b", "x"]
    assert isinstance(fast.error, rxstream.FrameError) and fast.error.number == 8


def test_deltas_without_indices_are_common_from_the_first() -> None:
    """A delta whose indices are null is of the part the stage starts with: counted from the first
    one, so that the text's done event, null indices too, finds them all carried."""
    events = response_events([Message(("a", "b"))])[:2]  # created, in progress
    events += [delta(2, "a", None, None), delta(3, "b", None, None)]
    events.append({"type": "response.output_text.done", "sequence_number": 4, "text": "ab"} | NULL_INDICES)
    encoded = [orjson.dumps(event) for event in events]
    fast = run(rxstream.from_frames(encoded).pipe(rxo.parse_responses()))
    assert fast.items == run(rxstream.from_frames(encoded).pipe(full_decoding())).items
    assert [chunk.data for chunk in fast.items] == ["", "", "a", "b", ""] and fast.error is None
    response = run(rxstream.from_frames(encoded).pipe(rxstream.responses_pipeline())).error
    assert isinstance(response, rxstream.IncompleteStreamError) and response.partial is not None
    assert response.partial.text == "ab"  # the done event adds nothing: the deltas carried it all


def test_a_stream_that_stops_after_common_deltas_keeps_them_in_its_partial() -> None:
    """The deltas the path took are handed to the stages before the input's end reaches them."""
    events = response_events([Message(("Hé", "llo", " wörld"))])[:7]  # to the last delta, no done events
    assert [event.get("delta") for event in events][-3:] == ["Hé", "llo", " wörld"]
    error = run(
        rxstream.from_frames([orjson.dumps(event) for event in events]).pipe(rxstream.responses_pipeline())
    ).error
    assert isinstance(error, rxstream.IncompleteStreamError) and error.partial is not None
    assert error.partial.text == "Héllo wörld" and error.partial.stats.chunks == 7


def test_arguments_deltas_without_their_added_event_are_held_to_the_done_one() -> None:
    """A call's argument deltas with no output_item.added before them: its done event must give
    exactly what they carried, one character short is a FrameError."""
    events = response_events([Message(("a",))])[:2]
    arguments = {"type": "response.function_call_arguments.delta", "item_id": "fc_0", "output_index": 0}
    events += [
        {**arguments, "sequence_number": 2, "delta": '{"a":'},
        {**arguments, "sequence_number": 3, "delta": "1}"},
    ]
    done = {"type": "response.function_call_arguments.done", "item_id": "fc_0", "output_index": 0}
    outcome = run(
        rxstream.from_frames(
            [orjson.dumps(event) for event in [*events, {**done, "sequence_number": 4, "arguments": '{"a":1'}]]
        ).pipe(rxo.parse_responses())
    )
    assert isinstance(outcome.error, rxstream.FrameError) and "carried 7 characters" in str(outcome.error)
    outcome = run(
        rxstream.from_frames(
            [orjson.dumps(event) for event in [*events, {**done, "sequence_number": 4, "arguments": '{"a":1}'}]]
        ).pipe(rxo.parse_responses())
    )
    assert outcome.error is None and len(outcome.items) == 5
