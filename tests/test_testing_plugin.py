"""The pytest plugin's fixtures, used as a user's integration test would: three lines each.

The plugin is loaded by its entry point (pytest11), as it is wherever rxstream is installed."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import rxstream
from rxstream.server import Faults, ReferenceResponsesServer, ReferenceServer, ReferenceSSEServer
from rxstream.testing import typed_error

pytestmark = pytest.mark.network


async def test_a_reordered_stream_with_a_gap_comes_back_whole(
    reference_server: Callable[..., ReferenceServer], virtual_clock: rxstream.VirtualClock
) -> None:
    server = reference_server("hello " * 200, faults="reorder=8,drop=1", token="t")
    response = await rxstream.stream(server.uri, token="t", request={}, clock=virtual_clock)
    assert response.text == "hello " * 200 and response.stats.retries == 1 and virtual_clock.sleeps == [1.0]


async def test_an_sse_body_cut_short_is_kept_as_the_partial(
    reference_sse_server: Callable[..., ReferenceSSEServer],
) -> None:
    server = reference_sse_server("kept " * 40, chunk_size=5, faults="abort_after=10", ids=False)
    with pytest.raises(rxstream.StreamError) as failed:
        await rxstream.stream_sse(server.url, request=rxstream.chat_request("m", "hi"))
    partial = typed_error(failed.value)[1]
    assert partial is not None and partial.text and ("kept " * 40).startswith(partial.text)


async def test_a_background_response_resumes_after_a_drop(
    reference_responses_server: Callable[..., ReferenceResponsesServer], virtual_clock: rxstream.VirtualClock
) -> None:
    server = reference_responses_server("resumed " * 30, chunk_size=8, faults=Faults(abort_after=12))
    response = await rxstream.stream_responses(
        server.url, request=rxstream.responses_request("m", "hi", background=True), clock=virtual_clock
    )
    assert response.text == "resumed " * 30 and server.stats.created == 1 and server.stats.resumed_from > 0


def test_the_faults_are_seeded_by_the_test_and_closed_after_it(
    reference_server: Callable[..., ReferenceServer], rxstream_seed: int
) -> None:
    """A sync test can use the servers too: they run on a loop of their own."""
    server = reference_server("x", faults="reorder=4")
    assert server.faults == Faults(reorder=4, seed=rxstream_seed)
    assert reference_server("y", faults="reorder=4,seed=7").faults.seed == 7
    assert reference_server("z", faults=Faults(drop=1)).faults == Faults(drop=1)
