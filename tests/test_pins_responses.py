"""parse_responses, pinned where the in-memory suite left it loose (issue 23, items 10 and 12),
through the fused pipeline and through the operators piped one by one (the ``responses``
fixture of tests/test_pins_streams.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from reactivex.subject import Subject

import rxstream
from rxstream import operators as rxo
from rxstream.operators._parse_responses import MAX_GAP

from .responses_events import FunctionCall, Message, Reasoning, response_events
from .support import run
from .test_pins_stage import Recorder
from .test_pins_streams import Pipeline, error_of, replay, responses

__all__ = ["responses"]  # the fixture, used by name


def lifecycle(kind: str, number: int, status: str) -> dict[str, Any]:
    return {
        "type": kind,
        "sequence_number": number,
        "response": {"id": "resp_1", "object": "response", "status": status},
    }


def text_delta(number: int, delta: str) -> dict[str, Any]:
    return {
        "type": "response.output_text.delta",
        "sequence_number": number,
        "item_id": "msg_1",
        "output_index": 0,
        "content_index": 0,
        "delta": delta,
    }


def test_each_lifecycle_event_gives_the_response_its_id(responses: Pipeline) -> None:
    # A background response begins response.queued, then response.in_progress
    # (https://platform.openai.com/docs/guides/background); a stream resumed after response.created
    # (starting_after) may begin with either. parse_responses: "The response id goes to
    # stats.response_id (Response.id)", which a cut stream's partial needs to be resumed.
    for kind, status in (("response.queued", "queued"), ("response.in_progress", "in_progress")):
        error = replay(responses, [lifecycle(kind, 0, status), text_delta(1, "Hel")])
        assert isinstance(error, rxstream.IncompleteStreamError)
        assert error.partial.text == "Hel" and error.partial.id == "resp_1"


def test_bytes_counts_non_ascii_bytes_events(responses: Pipeline) -> None:
    # An event given as bytes (a WebSocket message) counts its length, as a str one its UTF-8.
    events = [lifecycle("response.created", 0, "in_progress"), text_delta(1, "héllo ☃")]
    completed = lifecycle("response.completed", 2, "completed")
    raw = [orjson.dumps(event) for event in [*events, completed]]
    response = run(rxstream.from_frames(raw).pipe(responses())).items[0]
    assert response.text == "héllo ☃" and response.stats.bytes == sum(len(event) for event in raw)


def test_an_event_with_a_lone_surrogate_is_a_frame_error(responses: Pipeline) -> None:
    # Not valid JSON text (RFC 8259 §8.1: UTF-8): parse_responses' Raises, FrameError.
    bad = '{"type": "response.output_text.delta", "sequence_number": 1, "delta": "\udcff"}'
    frames = [orjson.dumps(lifecycle("response.created", 0, "in_progress")).decode(), bad]
    error = run(rxstream.from_frames(frames).pipe(responses())).error
    assert isinstance(error_of(error, rxstream.FrameError), rxstream.FrameError)


DELTAS = ("response.output_text.delta", "response.refusal.delta", "response.function_call_arguments.delta")


def renumbered(events: list[dict[str, Any]], start: int = 0) -> list[dict[str, Any]]:
    return [{**event, "sequence_number": start + number} for number, event in enumerate(events)]


@pytest.mark.parametrize(
    "item, last, expected",
    [
        (Message(["Hel", "lo"]), "response.output_text.done", {"text": "Hello"}),
        (Message(["I can't ", "help."], refusal=True), "response.refusal.done", {"refusal": "I can't help."}),
        (
            FunctionCall("call_1", "f", ['{"a":', " 1}"]),
            "response.function_call_arguments.done",
            {"arguments": '{"a": 1}'},
        ),
        (Message(["Hel", "lo"]), "response.output_item.done", {"text": "Hello"}),
        (Message(["I can't ", "help."], refusal=True), "response.output_item.done", {"refusal": "I can't help."}),
        (FunctionCall("call_1", "f", ['{"a":', " 1}"]), "response.output_item.done", {"arguments": '{"a": 1}'}),
    ],
)
def test_a_final_event_gives_what_no_delta_did_at_once(
    responses: Pipeline, item: Message | FunctionCall, last: str, expected: dict[str, str]
) -> None:
    # parse_responses: a final event's value less what the deltas carried, "all of it where none
    # came (the final event is authoritative)". At once: a stream cut right after it keeps it.
    events = [event for event in response_events([item]) if event["type"] not in DELTAS]
    if last == "response.output_item.done":  # the item's done alone carries the value
        done = ("response.output_text.done", "response.refusal.done", "response.function_call_arguments.done")
        events = [event for event in events if event["type"] not in done]
    cut = next(at for at, event in enumerate(events) if event["type"] == last)
    error = replay(responses, renumbered(events[: cut + 1]))
    assert isinstance(error, rxstream.IncompleteStreamError)
    partial = error.partial
    assert partial.text == expected.get("text", "") and partial.refusal == expected.get("refusal")
    if "arguments" in expected:
        assert partial.tool_calls == (rxstream.ToolCall(0, "call_1", "f", expected["arguments"]),)


def test_both_kinds_of_reasoning_delta_are_the_reasoning(responses: Pipeline) -> None:
    # parse_responses: "reasoning from response.reasoning_summary_text.delta and response.reasoning_text.delta".
    events = response_events([Reasoning([["Think", "ing."]], [["Step ", "one."]]), Message(["Hi"])])
    response = replay(responses, events)
    assert response.text == "Hi" and response.reasoning == "Thinking.Step one."


def test_a_stream_numbered_from_1_takes_its_final_events_values(responses: Pipeline) -> None:
    # The API reference's examples number from 1: chunk 0 stands empty, and the final events,
    # checked once nothing numbered before them is missing, still give what no delta did.
    events = [event for event in response_events([Message(["Hel", "lo"])], start=1) if event["type"] not in DELTAS]
    response = replay(responses, renumbered(events, start=1))
    assert response.complete and response.text == "Hello"


def test_an_incomplete_response_without_details_finishes_as_incomplete(responses: Pipeline) -> None:
    # Response.incomplete_details is nullable (openai.types.responses.Response).
    events = response_events([Message(["Hi"])], status="incomplete")
    for details in (None, "absent"):
        if details is None:
            events[-1]["response"]["incomplete_details"] = None
        else:
            del events[-1]["response"]["incomplete_details"]
        response = replay(responses, events)
        assert response.finish_reason == "incomplete" and response.text == "Hi"


def test_arguments_on_output_item_added_and_in_the_final_values(responses: Pipeline) -> None:
    # output_item.added may carry the start of the arguments; function_call_arguments.done and the
    # item's done then carry them whole (openai.types.responses.ResponseFunctionCallArgumentsDoneEvent).
    events = response_events([FunctionCall("call_1", "get_weather", ['"Paris"}'])])
    whole = '{"city": "Paris"}'
    for event in events:
        if event["type"] == "response.output_item.added":
            event["item"]["arguments"] = '{"city": '
        elif event["type"] == "response.function_call_arguments.done":
            event["arguments"] = whole
        elif event["type"] == "response.output_item.done":
            event["item"]["arguments"] = whole
        elif event["type"] == "response.completed":
            event["response"]["output"][0]["arguments"] = whole
    response = replay(responses, events)
    assert response.tool_calls == (rxstream.ToolCall(0, "call_1", "get_weather", whole),)


def test_final_events_after_events_out_of_order_still_give_their_values(responses: Pipeline) -> None:
    # Events may come out of order (reorder puts them back by sequence_number); once every number
    # before a final event has come, it is checked and gives what no delta did.
    events = renumbered([event for event in response_events([Message(["Hel", "lo"])]) if event["type"] not in DELTAS])
    shuffled = [events[0], events[2], events[1], *events[3:]]  # response.in_progress after the first item event
    response = replay(responses, shuffled)
    assert response.complete and response.text == "Hello"


@pytest.mark.parametrize("refusal", [False, True])
def test_the_completed_events_output_gives_every_items_value_in_order(responses: Pipeline, refusal: bool) -> None:
    # response.completed's output holds every item whole: what no delta or earlier final event
    # gave comes from it, each message's text (or refusal) after the one before.
    finals = ("response.output_text.done", "response.refusal.done", "response.output_item.done")
    items = [Message(["Hello "], refusal=refusal), Message(["there."], refusal=refusal)]
    events = renumbered([event for event in response_events(items) if event["type"] not in (*DELTAS, *finals)])
    response = replay(responses, events)
    assert (response.refusal if refusal else response.text) == "Hello there."
    assert response.text == ("" if refusal else "Hello there.") and response.refusal == (
        "Hello there." if refusal else None
    )


def test_a_negative_output_index_is_a_frame_error(responses: Pipeline) -> None:
    events = response_events([FunctionCall("call_1", "f", ["{}"])])
    for event in events:
        if event["type"] == "response.function_call_arguments.delta":
            event["output_index"] = -1
    error = replay(responses, events)
    assert "output_index" in str(error_of(error, rxstream.FrameError))


def test_a_failure_surfaces_once_what_precedes_it_came_without_waiting_for_the_source(responses: Pipeline) -> None:
    # parse_responses' Raises: ResponseFailedError "once every event numbered before it has been
    # delivered": not when the connection ends, which a server may hold open.
    events = response_events([Message(["a", "b", "c"])], status="failed")
    failed = events[-1]
    last_delta = [event for event in events if event["type"] == "response.output_text.delta"][-1]
    before = [event for event in events[:-1] if event is not last_delta]
    subject: Subject[bytes] = Subject()
    errors: list[Exception] = []
    subject.pipe(responses()).subscribe(on_error=errors.append)
    for event in [*before, failed]:
        subject.on_next(orjson.dumps(event))
    assert errors == []  # the last delta, numbered before the failure, has not come
    subject.on_next(orjson.dumps(last_delta))
    assert len(errors) == 1  # the source has not ended
    failure = error_of(errors[0], rxstream.ResponseFailedError)
    assert isinstance(errors[0], rxstream.StreamError) and errors[0].partial is not None
    assert errors[0].partial.text == "abc"
    assert failure.code == "server_error"


def test_a_failure_numbered_0_surfaces_at_once(responses: Pipeline) -> None:
    failed = response_events([], status="failed")[-1]
    subject: Subject[bytes] = Subject()
    errors: list[Exception] = []
    subject.pipe(responses()).subscribe(on_error=errors.append)
    subject.on_next(orjson.dumps({**failed, "sequence_number": 0}))
    assert len(errors) == 1 and error_of(errors[0], rxstream.ResponseFailedError).code == "server_error"


def test_refusal_deltas_are_the_refusal_as_they_come(responses: Pipeline) -> None:
    # parse_responses: "the refusal from response.refusal.delta": a stream cut before refusal.done keeps them.
    events = response_events([Message(["I can't ", "help."], refusal=True)])
    cut = next(at for at, event in enumerate(events) if event["type"] == "response.refusal.done")
    error = replay(responses, events[:cut])
    assert isinstance(error, rxstream.IncompleteStreamError) and error.partial.refusal == "I can't help."


def test_a_content_part_of_another_type_adds_nothing(responses: Pipeline) -> None:
    # parse_responses: "Other event types add nothing"; so does a message part that is neither output_text nor refusal.
    events = response_events([Message(["Hi"])])
    events[-1]["response"]["output"][0]["content"].append({"type": "reasoning_text", "text": "aside"})
    response = replay(responses, events)
    assert response.complete and response.text == "Hi" and response.refusal is None


def test_an_event_that_is_json_but_not_an_object_is_a_frame_error_saying_so() -> None:
    # FrameError: "reason says why" (the README's error table); every Responses event is an object.
    frames = [orjson.dumps(lifecycle("response.created", 0, "in_progress")), b"[1, 2]"]
    error = run(rxstream.from_frames(frames).pipe(rxo.parse_responses())).error
    assert isinstance(error, rxstream.FrameError)
    assert error.reason == "the event is not a JSON object" and error.number == 2


def test_a_parse_that_failed_ignores_what_its_source_still_sends() -> None:
    # Stage: a stage that ended the stream "ignores what still arrives" (a source that does not
    # stop at once when disposed): no chunk, no count, no second error.
    below = Recorder()
    (factory,) = rxo.parse_responses().factories
    stage = factory(below, rxstream.Shared(rxstream.Stats(), None))
    stage.on_next(b"[1, 2]")
    counted = stage.shared.stats.bytes
    stage.on_next(orjson.dumps(text_delta(1, "late")))
    assert [call for call, _ in below.calls] == ["error"] and stage.shared.stats.bytes == counted


def test_after_a_gap_too_wide_to_track_a_final_event_adds_nothing_the_deltas_may_still_bring() -> None:
    # parse_responses: the numbers missing below a gap are tracked up to MAX_GAP, "for the final
    # events' check"; past it a final event is not checked, since deltas may still be on their way.
    events = [lifecycle("response.created", 0, "in_progress"), text_delta(1, "Hel")]
    done = {**text_delta(2 + MAX_GAP + 1, ""), "type": "response.output_text.done", "text": "Hello"}
    del done["delta"]
    outcome = run(rxstream.from_frames([orjson.dumps(event) for event in [*events, done]]).pipe(rxo.parse_responses()))
    # Checked, it would be a FrameError (the deltas carried 3 characters, the final event 5).
    assert outcome.error is None and "".join(chunk.data for chunk in outcome.items) == "Hel"
