"""rxstream against the openai SDK's own accumulation of Responses streams, on any valid stream hypothesis makes.

The oracle is the SDK's ``ResponseStreamState``, fed each event as its stream builds it
(``construct_type`` into ``ResponseStreamEvent``): the final response it gives
(``get_final_response``'s for ``response.completed``, the ``response.incomplete`` event's
otherwise), and the text and arguments its snapshot accumulated from the deltas.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from openai._models import construct_type
from openai._types import omit
from openai.lib.streaming.responses import ResponseStreamState
from openai.types.responses import Response as SDKResponse
from openai.types.responses import ResponseStreamEvent

import rxstream
from tests.responses_events import FunctionCall, Item, Message, Reasoning, response_events
from tests.test_differential import ARGUMENTS, NAMES, PIECES, split
from tests.test_parse_responses import pipe

USAGES = st.none() | st.builds(
    lambda given, made: {
        "input_tokens": given,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": made,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": given + made,
    },
    st.integers(0, 10**6),
    st.integers(0, 10**6),
)


@st.composite
def items(draw: st.DrawFn) -> list[Item]:
    """Messages, refusals, reasoning and function calls, in any order, any number, split anywhere."""
    drawn: list[Item] = []
    for kind in draw(st.lists(st.sampled_from(["message", "refusal", "reasoning", "call"]), max_size=6)):
        if kind == "message":
            drawn.append(Message(draw(PIECES)))
        elif kind == "refusal":
            drawn.append(Message(draw(PIECES.filter(bool)), refusal=True))
        elif kind == "reasoning":
            encrypted = draw(st.none() | st.text(max_size=12))  # with include: ["reasoning.encrypted_content"]
            drawn.append(Reasoning(draw(st.lists(PIECES, max_size=3)), draw(st.lists(PIECES, max_size=2)), encrypted))
        else:
            call_id = f"call_{len(drawn)}_{draw(NAMES)}"
            drawn.append(FunctionCall(call_id, draw(NAMES), draw(split(draw(ARGUMENTS)))))
    return drawn


@st.composite
def responses_stream(draw: st.DrawFn) -> list[dict[str, Any]]:
    return response_events(
        draw(items()),
        status=draw(st.sampled_from(["completed", "incomplete"])),
        usage=draw(USAGES),
        start=draw(st.sampled_from([0, 1])),
        response_id=f"resp_{draw(NAMES)}",
        incomplete_reason=draw(st.sampled_from(["max_output_tokens", "content_filter"])),
    )


def through_the_sdk(events: list[dict[str, Any]]) -> tuple[SDKResponse, Any]:
    """The SDK's final response and its snapshot, the events handled one by one as its stream does."""
    state: ResponseStreamState[object] = ResponseStreamState(input_tools=omit, text_format=omit)
    final: SDKResponse | None = None
    for raw in events:
        event = construct_type(type_=ResponseStreamEvent, value=orjson.loads(orjson.dumps(raw)))
        for fired in state.handle_event(event):  # type: ignore[arg-type]
            if fired.type == "response.incomplete":
                final = fired.response
    if state._completed_response is not None:
        final = state._completed_response
    assert final is not None
    return final, state._ResponseStreamState__current_snapshot  # type: ignore[attr-defined]


def expected(final: SDKResponse) -> dict[str, Any]:
    """What the SDK's response holds, in the fields rxstream's Response has."""
    reasoning: list[str] = []
    refusals: list[str] = []
    calls: list[rxstream.ToolCall] = []
    for index, item in enumerate(final.output):
        if item.type == "reasoning":
            reasoning += [part.text for part in item.summary] + [part.text for part in item.content or ()]
        elif item.type == "message":
            refusals += [part.refusal for part in item.content if part.type == "refusal"]
        elif item.type == "function_call":
            calls.append(rxstream.ToolCall(index, item.call_id, item.name, item.arguments))
    return {
        "id": final.id,
        "text": final.output_text,
        "reasoning": "".join(reasoning),
        "refusal": "".join(refusals) if refusals else None,
        "tool_calls": tuple(calls),
        "finish_reason": final.status if final.status == "completed" else final.incomplete_details.reason,  # type: ignore[union-attr]
        "usage": None if final.usage is None else final.usage.to_dict(),
        # each reasoning item whole (id, summary, encrypted_content), which a stateless request sends back
        "reasoning_items": [item.to_dict() for item in final.output if item.type == "reasoning"],
    }


def got(response: rxstream.Response) -> dict[str, Any]:
    assert response.complete
    return {
        "id": response.id,
        "text": response.text,
        "reasoning": response.reasoning,
        "refusal": response.refusal,
        "tool_calls": response.tool_calls,
        "finish_reason": response.finish_reason,
        "usage": response.stats.usage,
        "reasoning_items": [orjson.loads(block.item) for block in response.thinking if block.item is not None],
    }


@settings(max_examples=150, deadline=None)
@given(responses_stream())
def test_the_final_response_is_the_sdks(events: list[dict[str, Any]]) -> None:
    final, snapshot = through_the_sdk(events)
    response = pipe([orjson.dumps(event) for event in events])
    assert got(response) == expected(final)
    # the text and the arguments the SDK accumulated from the deltas, not only the server's final word
    accumulated = "".join(
        part.text
        for item in snapshot.output
        if item.type == "message"
        for part in item.content
        if part.type == "output_text"
    )
    assert response.text == accumulated
    assert [call.arguments for call in response.tool_calls] == [
        item.arguments for item in snapshot.output if item.type == "function_call"
    ]


@st.composite
def disordered(draw: st.DrawFn, events: list[bytes], window: int) -> list[bytes]:
    """``events`` moved by at most ``window // 6`` places each, and some sent again at most ``window // 8``
    places later: no event comes ``window`` or more ahead of the one reorder waits for."""
    offsets = draw(st.lists(st.integers(0, window // 6), min_size=len(events), max_size=len(events)))
    keys = [position + offset for position, offset in enumerate(offsets)]
    moved = [event for _, event in sorted(zip(keys, events, strict=True), key=lambda pair: pair[0])]
    for _ in range(draw(st.integers(0, 5))):
        at = draw(st.integers(0, len(moved) - 1))
        moved.insert(min(len(moved), at + draw(st.integers(0, window // 8))), moved[at])
    return moved


@settings(max_examples=150, deadline=None)
@given(st.data(), responses_stream())
def test_reordered_and_resent_events_give_the_same_response(data: st.DataObject, events: list[dict[str, Any]]) -> None:
    final, _ = through_the_sdk(events)
    window = 32
    encoded = [orjson.dumps(event) for event in events]
    response = pipe(data.draw(disordered(encoded, window)), window)
    assert got(response) == expected(final)
