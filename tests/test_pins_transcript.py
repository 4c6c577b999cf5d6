"""The transcript when its text is long and many small pieces follow (issue 23, item 9: "part offsets
after more than ~512 chunks while rope blocks are pending"). The rope adds its blocks to the text
only once they make up an eighth of it (``Rope``), so after a long start the blocks of later chunks
wait; the text is still "everything received so far, in index order" (``Transcript``), and a part
stands where its chunk came."""

from __future__ import annotations

import rxstream
from rxstream.core._transcript import COMPACT_EVERY


def test_the_text_and_the_parts_are_whole_while_blocks_wait() -> None:
    transcript = rxstream.Transcript()
    for _ in range(COMPACT_EVERY):
        transcript.append("a" * 1000)
    transcript.extend(["b"] * (4 * COMPACT_EVERY))  # four blocks, together far less than an eighth of the text
    for _ in range(COMPACT_EVERY):
        transcript.append("c")
    before = "a" * 1000 * COMPACT_EVERY + "b" * 4 * COMPACT_EVERY + "c" * COMPACT_EVERY
    assert len(transcript) == len(before)
    transcript.add(rxstream.Chunk(0, image_url="http://i/1"), "")
    transcript.append("after")
    assert transcript.text == before + "after"
    assert transcript.parts == (
        rxstream.Part("text", before),
        rxstream.Part("image", "http://i/1"),
        rxstream.Part("text", "after"),
    )
    assert transcript.chunks == 6 * COMPACT_EVERY + 2


def test_the_thinking_is_the_blocks_it_came_in_each_with_its_signature() -> None:
    # Response.thinking: "the reasoning as the blocks it came in, in order, each with its signature (and
    # Anthropic's redacted_thinking blocks kept opaque)"; Chunk.signature: "the signature of an Anthropic
    # thinking block"; a redacted block "has no text, only its opaque (encrypted) data" (ThinkingBlock).
    chunks = [
        rxstream.Chunk(0, thinking_block=rxstream.ThinkingBlock()),
        rxstream.Chunk(1, reasoning="a"),
        rxstream.Chunk(2, reasoning="b"),
        rxstream.Chunk(3, signature="s1"),
        rxstream.Chunk(4, thinking_block=rxstream.ThinkingBlock(data="opaque")),
        rxstream.Chunk(5, reasoning="c"),  # after a redacted block: a block of its own, without a signature
        rxstream.Chunk(6, "text"),
        rxstream.Chunk(7, thinking_block=rxstream.ThinkingBlock()),
        rxstream.Chunk(8, reasoning="d", signature="s2"),
        rxstream.Chunk(9, reasoning="e"),  # after a signed block: a block of its own
        rxstream.Chunk(10, signature="s3"),
        rxstream.Chunk(11, signature="s4"),  # with no block open: a block of its own
    ]
    transcript = rxstream.Transcript()
    for chunk in chunks:
        transcript.add(chunk, chunk.data)
    response = transcript.response(True, rxstream.Stats())
    assert response.thinking == (
        rxstream.ThinkingBlock("ab", "s1"),
        rxstream.ThinkingBlock("", None, "opaque"),
        rxstream.ThinkingBlock("c"),
        rxstream.ThinkingBlock("d", "s2"),
        rxstream.ThinkingBlock("e", "s3"),
        rxstream.ThinkingBlock("", "s4"),
    )
    assert response.reasoning == "abcde" and response.reasoning_signatures == ("s1", "s2", "s3", "s4")


def test_reasoning_that_came_without_blocks_is_one_block() -> None:
    # OpenAI-style reasoning deltas carry no block marks: "reasoning is their text joined"
    transcript = rxstream.Transcript()
    for index, piece in enumerate(["one ", "two"]):
        transcript.add(rxstream.Chunk(index, reasoning=piece), "")
    assert transcript.thinking == (rxstream.ThinkingBlock("one two"),)
