"""parse_responses: OpenAI Responses events into the same Response fields as chat streams, numbered by
sequence_number, so that reorder, duplicate dropping and the partial on failure work as for chunks."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import orjson
import pytest
import reactivex
from reactivex import Observable
from reactivex import operators as ops

import rxstream
from rxstream import operators as rxo
from rxstream.protocol._sse import SSEEvent
from tests.responses_events import FunctionCall, Message, Reasoning, encode, response_events
from tests.support import run

USAGE = {
    "input_tokens": 12,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 30,
    "output_tokens_details": {"reasoning_tokens": 8},
    "total_tokens": 42,
}
ITEMS = (
    Reasoning((("Think", "ing ", "hard."), ("Then", " more."))),
    Message(("Hel", "lo, ", "world", "!")),
    FunctionCall("call_a", "get_weather", ('{"ci', 'ty": "Par', 'is"}')),
    FunctionCall("call_b", "get_time", ("{}",)),
)


def pipe(events: list[Any], window: int = 64) -> rxstream.Response:
    outcome = run(rxstream.from_frames(events).pipe(rxstream.responses_pipeline(window)))
    if outcome.error is not None:
        raise outcome.error
    (response,) = outcome.items
    assert isinstance(response, rxstream.Response)
    return response


def failure(events: list[Any], window: int = 64) -> Failed:
    outcome = run(rxstream.from_frames(events).pipe(rxstream.responses_pipeline(window)))
    assert isinstance(outcome.error, rxstream.StreamError) and outcome.error.partial is not None, outcome
    return cast(Failed, outcome.error)


class Failed(rxstream.StreamError):
    """What ``failure`` returns, as mypy is to see it: a StreamError whose partial is set."""

    partial: rxstream.Response


def test_every_field_lands_where_chat_streams_put_it() -> None:
    response = pipe(encode(response_events(ITEMS, usage=USAGE)))
    assert response.complete
    assert response.id == "resp_0123"
    assert response.text == "Hello, world!"
    assert response.reasoning == "Thinking hard.Then more."
    assert response.tool_calls == (
        rxstream.ToolCall(2, "call_a", "get_weather", '{"city": "Paris"}'),
        rxstream.ToolCall(3, "call_b", "get_time", "{}"),
    )
    assert response.tool_calls[0].parsed() == {"city": "Paris"}
    assert response.refusal is None
    assert response.finish_reason == "completed"
    assert response.stats.usage == USAGE
    assert [part.kind for part in response.parts] == ["reasoning", "text"]


def test_a_refusal_and_an_incomplete_response() -> None:
    events = response_events((Message(("I can", "'t help", " with that."), refusal=True),), status="incomplete")
    response = pipe(encode(events))
    assert response.complete and response.text == ""
    assert response.refusal == "I can't help with that."
    assert response.finish_reason == "max_output_tokens"


@pytest.mark.parametrize("start", [0, 1])
def test_numbered_from_0_or_from_1_without_a_gap(start: int) -> None:
    events = encode(response_events(ITEMS, start=start))
    response = pipe(events)
    assert response.complete and response.text == "Hello, world!"
    assert response.chunks == len(events) + start  # a stream numbered from 1 gets an empty chunk at 0


def test_sse_events_str_and_bytes_give_the_same_response() -> None:
    events = response_events(ITEMS, usage=USAGE)
    as_bytes = pipe(encode(events))
    as_text = pipe([raw.decode() for raw in encode(events)])
    as_sse = pipe([SSEEvent(raw.decode(), event["type"]) for raw, event in zip(encode(events), events, strict=True)])
    assert as_bytes.text == as_text.text == as_sse.text == "Hello, world!"
    assert as_bytes.tool_calls == as_text.tool_calls == as_sse.tool_calls
    assert as_bytes.stats.bytes == as_text.stats.bytes == as_sse.stats.bytes == sum(map(len, encode(events)))


def test_reordered_and_resent_events_give_the_same_response() -> None:
    events = encode(response_events(ITEMS, usage=USAGE))
    shuffled = [events[i ^ 1] for i in range(len(events) - len(events) % 2)] + events[len(events) - len(events) % 2 :]
    resent = [event for raw in events for event in (raw, raw)]
    expected = pipe(events)
    for variant in (shuffled, resent):
        response = pipe(variant)
        assert (response.text, response.reasoning, response.tool_calls, response.stats.usage) == (
            expected.text,
            expected.reasoning,
            expected.tool_calls,
            expected.stats.usage,
        )
    assert pipe(resent).stats.duplicates == len(events) - 1  # the last one came after the final chunk ended it


def test_unknown_event_types_add_nothing() -> None:
    events = response_events((Message(("a", "b")),))
    events.insert(3, {"type": "response.something_new", "sequence_number": 0, "delta": "not text"})
    for number, event in enumerate(events):
        event["sequence_number"] = number
    assert pipe(encode(events)).text == "ab"


@pytest.mark.parametrize("kind", ["response.failed", "error"])
def test_a_failure_the_server_reports_is_typed_and_keeps_the_partial(kind: str) -> None:
    events = response_events((Message(("Half ", "an ", "answer")),), status="failed")
    if kind == "error":
        events[-1] = {
            "type": "error",
            "sequence_number": len(events) - 1,
            "code": "rate_limit_exceeded",
            "message": "Slow down.",
        }
    error = failure(encode(events))
    cause = error
    assert isinstance(cause, rxstream.ResponseFailedError)
    assert isinstance(cause, rxstream.StreamError)
    assert (cause.code, cause.server_message) == (
        ("server_error", "The model failed to finish.")
        if kind == "response.failed"
        else ("rate_limit_exceeded", "Slow down.")
    )
    assert cause.sequence_number == len(events) - 1
    assert kind in str(cause) and "new (paid) response" in str(cause)
    assert error.partial.text == "Half an answer"
    assert error.partial.id == "resp_0123"
    assert not error.partial.complete


def test_a_failure_that_overtakes_earlier_events_waits_for_them() -> None:
    events = encode(response_events((Message(("Half ", "an ", "answer")),), status="failed"))
    early = [*events[:-5], events[-1], *events[-5:-1]]  # response.failed before the last delta and the dones
    error = failure(early)
    assert isinstance(error, rxstream.ResponseFailedError)
    assert error.partial.text == "Half an answer"


def test_a_failure_behind_a_gap_that_never_closes_still_reports_the_server() -> None:
    events = encode(response_events((Message(("Half ", "an ", "answer")),), status="failed"))
    del events[-3]  # output_text.done never comes
    error = failure(events)
    assert isinstance(error, rxstream.ResponseFailedError)
    assert error.partial.text == "Half an answer"


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"type": "response.output_text.delta", "delta": "x"}, "sequence_number"),
        ({"type": "response.output_text.delta", "sequence_number": -1, "delta": "x"}, "sequence_number"),
        ({"type": "response.output_text.delta", "sequence_number": 5, "delta": 7}, "delta"),
        (
            {"type": "response.function_call_arguments.delta", "sequence_number": 5, "output_index": "1", "delta": ""},
            "output_index",
        ),
        ({"type": "response.completed", "sequence_number": 5, "response": {"usage": 3}}, "usage"),
    ],
)
def test_a_malformed_event_is_a_frame_error_and_keeps_the_partial(event: dict[str, Any], field: str) -> None:
    events = encode(response_events((Message(("kept", " text")),)))[:6]
    error = failure([*events, orjson.dumps(event)])
    assert isinstance(error, rxstream.FrameError)
    assert field in str(error) and error.number == 7
    assert error.partial.text == "kept text"


def test_invalid_json_is_a_frame_error() -> None:
    error = failure([*encode(response_events((Message(("kept",)),)))[:5], b"{not json"])
    assert isinstance(error, rxstream.FrameError) and "invalid JSON" in str(error)
    assert error.partial.text == "kept"


def test_the_operators_one_by_one_give_the_fused_result() -> None:
    events = encode(response_events(ITEMS, usage=USAGE))
    source: Observable[Any] = rxstream.from_frames(events)
    piped = run(source.pipe(rxo.parse_responses(), rxo.reorder(), rxo.accumulate(), rxo.finalize(), ops.last())).items[
        0
    ]
    fused = pipe(events)
    assert (piped.text, piped.reasoning, piped.tool_calls, piped.finish_reason, piped.id) == (
        fused.text,
        fused.reasoning,
        fused.tool_calls,
        fused.finish_reason,
        fused.id,
    )


def test_an_error_event_without_a_number_fails_at_once_with_the_servers_word() -> None:
    events = encode(response_events((Message(("kept",)),)))[:5]
    error = failure([*events, orjson.dumps({"type": "error", "code": "invalid_prompt", "message": "No."})])
    cause = error
    assert isinstance(cause, rxstream.ResponseFailedError)
    assert (cause.code, cause.server_message, cause.sequence_number) == ("invalid_prompt", "No.", None)
    assert "sequence number" not in str(cause) and error.partial.text == "kept"


def test_a_failure_behind_a_gap_is_the_cause_when_the_source_then_fails() -> None:
    events = encode(response_events((Message(("Half ", "an ", "answer")),), status="failed"))
    del events[-3]
    source = rxstream.from_frames(events).pipe(ops.concat(reactivex.throw(rxstream.TransportError("dropped"))))
    outcome = run(source.pipe(rxstream.responses_pipeline()))
    assert isinstance(outcome.error, rxstream.ResponseFailedError) and outcome.error.partial is not None
    assert outcome.error.partial.text == "Half an answer"


async def test_the_store_keeps_the_response_id(tmp_path: Path) -> None:
    response = pipe(encode(response_events(ITEMS, usage=USAGE)))
    async with rxstream.SQLiteStore(tmp_path / "turns.db") as store:
        await store.save("s", response)
    async with rxstream.SQLiteStore(tmp_path / "turns.db") as reopened:
        (turn,) = await reopened.history("s")
    assert turn.response.id == "resp_0123" and turn.response.tool_calls == response.tool_calls
