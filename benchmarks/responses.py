"""7. The OpenAI Responses stream: rxstream against the openai SDK's own accumulation of the same events."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, cast

import orjson

import rxstream
from rxstream.protocol._sse import SSEEvent, sse_events
from rxstream.server import ReferenceResponsesServer, generate

from .measure import Result, medians, progress

if TYPE_CHECKING:  # openai is the oracle, not a dependency: it is imported when this row runs
    from openai.lib.streaming.responses import ResponseStreamState

CHUNK = 8  # characters a text delta: a token or two, as the API sends them


def response_events(deltas: int) -> list[SSEEvent]:
    """The reference endpoint's events for a response of ``deltas`` text deltas and a reasoning summary a tenth as long."""
    server = ReferenceResponsesServer(
        generate(deltas * CHUNK, seed=7), chunk_size=CHUNK, reasoning=generate(deltas * CHUNK // 10, seed=8)
    )
    return list(sse_events(server.events("resp_bench")))


def through_rxstream(events: list[SSEEvent]) -> rxstream.Response:
    responses: list[rxstream.Response] = []
    rxstream.from_frames(events).pipe(rxstream.responses_pipeline()).subscribe(responses.append)
    return responses[0]


def through_openai(events: list[SSEEvent]) -> ResponseStreamState[Any]:
    """What the SDK's ResponseStream does with each event (orjson in place of its json.loads, to its advantage)."""
    from openai._models import construct_type  # how the SDK's Stream builds each event from its JSON
    from openai._types import omit
    from openai.lib.streaming.responses import ResponseStreamState
    from openai.types.responses import ResponseStreamEvent

    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    for event in events:
        state.handle_event(
            cast(ResponseStreamEvent, construct_type(type_=ResponseStreamEvent, value=orjson.loads(event.data)))
        )
    return state


def results_agree(events: list[SSEEvent]) -> bool:
    ours = through_rxstream(events)
    theirs = through_openai(events)._completed_response
    return (
        theirs is not None
        and ours.complete
        and (ours.id, ours.text, ours.stats.usage)
        == (theirs.id, theirs.output_text, theirs.usage and theirs.usage.to_dict())
    )


def run(deltas: int, repetitions: int) -> list[Result]:
    try:
        import openai  # noqa: F401
    except ImportError:
        progress("responses: skipped, the openai SDK (the oracle) is not installed: pip install openai")
        return []
    events = response_events(deltas)
    progress(f"responses, {len(events):,} events through rxstream and openai's ResponseStreamState")
    assert results_agree(events), "rxstream and openai's accumulation disagree"
    seconds = medians(
        {"rxstream": partial(through_rxstream, events), "openai": partial(through_openai, events)}, repetitions
    )
    rate, sdk_rate = len(events) / seconds["rxstream"], len(events) / seconds["openai"]
    return [
        Result(
            "responses: rxstream vs openai ResponseStreamState, events/s",
            rate / sdk_rate,
            2.0,
            detail=f"{rate:,.0f} vs {sdk_rate:,.0f} events/s ({len(events):,} events)",
            extra={f"{name}_seconds": value for name, value in seconds.items()},
        )
    ]
