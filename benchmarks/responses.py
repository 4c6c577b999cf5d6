"""7. The OpenAI Responses stream: rxstream against the openai SDK, on the same events in memory, and
over HTTP from the same reference server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import orjson

import rxstream
from rxstream.protocol._sse import SSEEvent, sse_events
from rxstream.server import ReferenceResponsesServer, generate

from .loopback import ServerProcess
from .measure import Result, async_medians, medians, progress

if TYPE_CHECKING:  # openai is the oracle, not a dependency: it is imported when these rows run
    from openai import AsyncOpenAI
    from openai.lib.streaming.responses import ResponseStreamState
    from openai.types.responses import Response

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


def sdk_installed(row: str) -> bool:
    try:
        import openai  # noqa: F401
    except ImportError:
        progress(f"{row}: skipped, the openai SDK (the oracle) is not installed: pip install openai")
        return False
    return True


def run(deltas: int, repetitions: int) -> list[Result]:
    if not sdk_installed("responses"):
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


async def rxstream_over_http(url: str) -> rxstream.Response:
    return await rxstream.stream_responses(url, request=rxstream.responses_request("bench", "hi"))


async def openai_stream(client: AsyncOpenAI) -> tuple[int, Response]:
    """The SDK's accumulating client, ``responses.stream()``, read to the end: events counted, its final response."""
    events = 0
    async with client.responses.stream(model="bench", input="hi") as stream:
        async for _ in stream:
            events += 1
        return events, await stream.get_final_response()


async def openai_create(client: AsyncOpenAI) -> tuple[int, Response]:
    """The SDK's plain stream, ``responses.create(stream=True)``: typed events, the final response the
    one ``response.completed`` carries (it accumulates nothing)."""
    events, final = 0, None
    async for event in await client.responses.create(model="bench", input="hi", stream=True):
        events += 1
        if event.type == "response.completed":
            final = event.response
    assert final is not None, "the stream ended without response.completed"
    return events, final


async def over_http(deltas: int, repetitions: int) -> list[Result]:
    """rxstream.stream_responses against the openai SDK's two streaming clients, each reading the same
    response from ``rxstream serve --responses`` in its own process, so its CPU counts for neither."""
    if not sdk_installed("responses over HTTP"):
        return []
    from openai import AsyncOpenAI

    async with ServerProcess(deltas * CHUNK, CHUNK, "--responses", "--seed", "7") as server:
        # One SDK client for every repetition, as an application keeps it (to its advantage:
        # rxstream makes its httpx client each call); the server closes each body's connection.
        base_url = server.uri.removesuffix("/responses")
        async with AsyncOpenAI(base_url=base_url, api_key="sk-bench", max_retries=0) as client:
            ours = await rxstream_over_http(server.uri)
            count = ours.chunks
            assert ours.complete, "rxstream's response is incomplete"
            progress(f"responses over HTTP, {count:,} events through rxstream and the openai SDK's streams")
            for check in (openai_stream, openai_create):  # each POST is a new response, with an id of its own
                events, final = await check(client)
                assert (events, final.output_text, final.usage and final.usage.to_dict()) == (
                    count,
                    ours.text,
                    ours.stats.usage,
                ), f"rxstream and openai's {check.__name__} disagree"
            contenders: dict[str, Callable[[], Awaitable[object]]] = {
                "rxstream": partial(rxstream_over_http, server.uri),
                "openai_create": partial(openai_create, client),
                "openai_stream": partial(openai_stream, client),
            }
            seconds = await async_medians(contenders, repetitions)
    rates = {name: count / value for name, value in seconds.items()}
    sdk_best = max(rates["openai_create"], rates["openai_stream"])
    return [
        Result(
            "responses over HTTP: stream_responses vs the openai SDK's faster stream, events/s",
            rates["rxstream"] / sdk_best,
            2.0,
            detail=(
                f"{rates['rxstream']:,.0f} vs {rates['openai_create']:,.0f} (responses.create(stream=True)),"
                f" {rates['openai_stream']:,.0f} (responses.stream()) events/s ({count:,} events)"
            ),
            extra={f"{name}_events_per_second": rate for name, rate in rates.items()},
        )
    ]
