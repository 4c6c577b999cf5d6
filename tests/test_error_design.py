"""The error design (issue 19): the typed error is the one raised, with the partial response on it.

In memory: a source that fails with each kind of rxstream error after two chunks, through the five
operators piped and fused, and the Responses pipeline on input whose partial cannot be built.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
import pytest
import reactivex
from reactivex import operators as ops

import rxstream
from rxstream import operators as rxo
from rxstream.operators._accumulate import Delta

from .responses_events import Message, encode, response_events
from .support import FiveOperators, frame, run

ERRORS: list[rxstream.StreamError] = [
    rxstream.AuthenticationError("ws://h/s", "HTTP 401", status_code=401, server_message="Incorrect API key"),
    rxstream.RateLimitedError("ws://h/s", 4, 2.0),
    rxstream.APIStatusError("ws://h/s", 529, error_type="overloaded_error", server_message="Overloaded", attempts=4),
    rxstream.ConnectionLostError("ws://h/s", "reset", 4),
    rxstream.StreamTimeoutError("ws://h/s", 30.0, kind="idle"),
    rxstream.ResponseFailedError("server_error", "Overloaded", event="error", sequence_number=None),
    rxstream.FrameError("{", "invalid JSON"),
]


@pytest.mark.parametrize("raised", ERRORS, ids=lambda error: type(error).__name__)
def test_the_error_that_ended_the_stream_is_raised_with_the_partial_and_a_note(
    five: Callable[..., FiveOperators], raised: rxstream.StreamError
) -> None:
    raised.partial = None  # each parametrized run starts from the error as a source raises it
    raised.__notes__ = []
    source = rxstream.from_frames([frame(0, "kept "), frame(1, "too")]).pipe(ops.concat(reactivex.throw(raised)))
    error = run(source.pipe(five())).error
    assert error is raised  # `except rxstream.AuthenticationError` fires; no IncompleteStreamError around it
    assert error.partial is not None and error.partial.text == "kept too" and not error.partial.complete
    assert error.__notes__ == ["the response so far (2 chunks, 8 characters) is kept on this error's .partial"]


def test_an_error_before_any_chunk_has_an_empty_partial_never_none(five: Callable[..., FiveOperators]) -> None:
    refused = rxstream.AuthenticationError("ws://h/s", "HTTP 401", status_code=401)
    error = run(reactivex.throw(refused).pipe(five())).error
    assert error is refused and error.partial is not None
    assert (error.partial.text, error.partial.chunks, error.partial.complete) == ("", 0, False)


async def test_a_partial_that_cannot_be_built_still_ends_the_stream_typed() -> None:
    # issue 25 §6: a function call whose "arguments" is a number made the transcript's join fail,
    # and finalize failed on the same join, so `await` hung. No error path may itself fail.
    events = encode(response_events((Message(("Half ", "an ")),)))[:3]
    bad = {
        "type": "response.output_item.added",
        "sequence_number": 3,
        "output_index": 1,
        "item": {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "f", "arguments": 1},
    }
    with pytest.raises(rxstream.StreamError) as caught:
        await asyncio.wait_for(
            rxstream.from_frames([*events, orjson.dumps(bad)]).pipe(rxstream.responses_pipeline()), 5
        )
    error = caught.value
    assert error.partial is not None and not error.partial.complete
    notes = "\n".join(getattr(error, "__notes__", []))
    assert "could not be kept (TypeError" in notes or "kept on this error's .partial" in notes


class Unbuildable(rxstream.Transcript):
    """A transcript whose Response cannot be built, as a bug in a user's stage or in rxstream's own
    could make one: the final chunk must still end the stream, typed, never hang it."""

    def response(self, complete: bool, stats: rxstream.Stats) -> rxstream.Response:
        raise RuntimeError("cannot build the response")


def test_a_response_that_cannot_be_built_ends_the_stream_typed() -> None:
    final = rxstream.Chunk(0, "", True)
    source = reactivex.of(Delta("", final, Unbuildable()))
    outcome = run(source.pipe(rxo.finalize()))
    assert outcome.items == [] and isinstance(outcome.error, rxstream.IncompleteStreamError)
    assert isinstance(outcome.error.__cause__, RuntimeError) and outcome.error.partial is not None
