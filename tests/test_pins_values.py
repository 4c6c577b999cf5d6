"""The values, pinned where the in-memory suite left them loose (issue 23): a repr shows "the
first 60 characters and the length beyond that", "a Response never changes once emitted" (README,
"What you get"), a ``ToolCall`` is "immutable" (README, "Tool calls, refusals and thinking"), a
tool call's pieces "may add to its ``arguments``" (``ToolCallFragment``), and a
``redacted_thinking`` block "has no text, only its opaque (encrypted) ``data``" (``ThinkingBlock``),
and what a session id and a saved ``Turn`` must be."""

from __future__ import annotations

import dataclasses
from typing import cast

import pytest

import rxstream
import rxstream.operators
from rxstream.core._context_store import check_session_id

from .support import frames_for, run


def test_a_text_of_60_characters_shows_whole_and_a_longer_one_shows_its_length() -> None:
    sixty, longer = "x" * 60, "y" * 61
    assert repr(rxstream.Response(sixty, True, 1)) == f"<Response complete text={sixty!r} chunks=1>"
    assert repr(rxstream.Response(longer, True, 1)) == f"<Response complete text={'y' * 60!r}… (61 chars) chunks=1>"


def test_a_piece_naming_a_call_adds_no_arguments() -> None:
    transcript = rxstream.Transcript()
    named = rxstream.ToolCallFragment(0, "call_1", "lookup")
    transcript.add(rxstream.Chunk(0, tool_calls=(named,)), "")
    transcript.add(rxstream.Chunk(1, tool_calls=(rxstream.ToolCallFragment(0, arguments='{"q": 1}'),)), "")
    assert named.arguments == ""
    assert transcript.tool_calls == (rxstream.ToolCall(0, "call_1", "lookup", '{"q": 1}'),)


def test_a_redacted_thinking_block_has_no_text() -> None:
    block = rxstream.ThinkingBlock(data="opaque")
    assert block.redacted and block.text == "" and block.signature is None
    assert not rxstream.ThinkingBlock("thought").redacted


def test_a_response_never_changes_once_emitted_nor_do_its_calls_and_blocks() -> None:
    transcript = rxstream.Transcript()
    transcript.add(rxstream.Chunk(0, reasoning="hm", signature="sig"), "")
    transcript.add(rxstream.Chunk(1, tool_calls=(rxstream.ToolCallFragment(0, "call_1", "f", "{}"),)), "")
    response = transcript.response(True, rxstream.Stats())
    with pytest.raises(dataclasses.FrozenInstanceError):
        response.text = "changed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        response.thinking[0].text = "changed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        response.tool_calls[0].name = "changed"  # type: ignore[misc]


def test_a_total_is_none_where_the_sender_gave_neither_it_nor_both_its_parts() -> None:
    # Usage: "total_tokens the sender's total, else input plus output. Each is None where the sender did not say."
    assert rxstream.Usage({"prompt_tokens": 5, "completion_tokens": 2}).total_tokens == 7
    assert rxstream.Usage({"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 9}).total_tokens == 9
    assert rxstream.Usage({"prompt_tokens": 5}).total_tokens is None
    assert rxstream.Usage({"completion_tokens": 2}).total_tokens is None


def test_a_stream_that_came_in_order_once_counts_no_reordering_and_no_retry() -> None:
    # Stats: "every operator adds what it saw"; reorder_depth is "the most chunks reorder held at once" (README)
    response = run(rxstream.from_frames(frames_for(["a", "b", "c"])).pipe(rxstream.pipeline())).items[0]
    stats = response.stats
    assert (stats.chunks, stats.out_of_order, stats.reorder_depth, stats.duplicates, stats.dropped, stats.retries) == (
        3,
        0,
        0,
        0,
        0,
        0,
    )


def test_reprs_show_the_fields_a_value_carries() -> None:
    # test_repr.py's rule for a chunk and a response, for the fields it leaves out
    assert repr(rxstream.Chunk(3)) == "Chunk(index=3)"
    calls = (rxstream.ToolCall(0, "srvtoolu_1", "web_search", "{}"),)
    assert repr(rxstream.Response("", True, 1, server_tool_calls=calls)) == (
        "<Response complete text='' chunks=1 server_tool_calls=1>"
    )
    assert repr(rxstream.ThinkingBlock("hm", "sig")) == "ThinkingBlock(text='hm', signature='sig')"
    assert repr(rxstream.ThinkingBlock("hm")) == "ThinkingBlock(text='hm')"
    assert repr(rxstream.ThinkingBlock(data="opaque")) == "ThinkingBlock(redacted, data='opaque')"


def test_persist_refuses_a_session_id_that_is_empty_not_a_string_or_not_unicode() -> None:
    # persist: "InvalidSessionError: (at the call) session_id is empty, not a string, or not valid Unicode."
    store = cast(rxstream.ContextStore, object())  # never reached: the id is checked at the call
    for bad in ["", 7, None]:
        with pytest.raises(rxstream.InvalidSessionError, match="^session id must be a non-empty string, not "):
            rxstream.operators.persist(store, bad)  # type: ignore[arg-type]
    with pytest.raises(rxstream.InvalidSessionError, match="^session id must be valid Unicode text "):
        rxstream.operators.persist(store, "lone \ud800")
    assert rxstream.operators.persist(store, "s") is not None
    assert check_session_id("s") == "s"


def test_a_turn_keeps_its_request_out_of_its_repr() -> None:
    # Turn.request: "a whole conversation: kept out of reprs"
    turn = rxstream.Turn("s", 1, rxstream.Response("hi", True, 1), 1.5, {"messages": ["a whole conversation"]})
    assert "conversation" not in repr(turn) and turn.request == {"messages": ["a whole conversation"]}


def test_a_refusals_stop_details_are_the_responses() -> None:
    # README: "a refusal's stop_details is Response.stop_details" (kept on its stats, which the parser fills in)
    details = {"category": "cyber", "explanation": "no"}
    assert rxstream.Response("", True, 1, stats=rxstream.Stats(stop_details=details)).stop_details == details
    assert rxstream.Response("", True, 1).stop_details is None


def test_a_plain_chunk_is_text_only_and_not_the_last() -> None:
    # Chunk.plain: "Text only, and not the last: what most chunks are"; a timestamp is no content
    assert rxstream.Chunk(0, "a").plain and rxstream.Chunk(0, "a", timestamp=5).plain
    assert not rxstream.Chunk(0, "a", is_final=True).plain
    for chunk in [
        rxstream.Chunk(0, "a", text="x"),
        rxstream.Chunk(0, "a", image_url="x"),
        rxstream.Chunk(0, "a", reasoning="x"),
        rxstream.Chunk(0, "a", finish_reason="x"),
        rxstream.Chunk(0, "a", refusal="x"),
        rxstream.Chunk(0, "a", signature="x"),
    ]:
        assert not chunk.plain, chunk
    assert not rxstream.Chunk(0, "a", usage={"total_tokens": 1}).plain
