"""The response as it grows: text, reasoning, images, tool calls and a refusal, appended in linear time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ._values import Chunk, Part, PartKind, Response, Stats, ThinkingBlock, ToolCall, Usage

COMPACT_EVERY = 256


class Rope:
    """A string built by appending, in linear time, with bounded per-piece overhead, and in
    about its own size of memory.

    Appended strings wait in a list; every ``COMPACT_EVERY`` of them are joined into a
    block, and the blocks are added to the text once they make up an eighth of it. On
    CPython, ``+=`` on a string that only a local variable refers to resizes it in place
    (realloc, which for a large string remaps pages instead of copying them), so the text
    is never held twice, not even when the whole is read at the end. Adding only when the
    blocks have grown in proportion keeps the total copying linear where it cannot resize
    in place.
    """

    __slots__ = ("_pending", "_blocks", "_blocks_length", "_text")

    def __init__(self) -> None:
        self._pending: list[str] = []
        self._blocks: list[str] = []
        self._blocks_length = 0
        self._text = ""

    def append(self, text: str) -> None:
        pending = self._pending
        pending.append(text)
        if len(pending) >= COMPACT_EVERY:
            self._compact()

    def extend(self, texts: list[str]) -> None:
        """Append each of ``texts``, in order."""
        pending = self._pending
        pending += texts
        if len(pending) >= COMPACT_EVERY:
            self._compact()

    def _compact(self) -> None:
        """Join the pending strings into a block; add the blocks to the text once they are an eighth of it."""
        block = "".join(self._pending)
        self._pending.clear()
        self._blocks.append(block)
        self._blocks_length += len(block)
        if self._blocks_length * 8 >= len(self._text):
            self._add_blocks()

    def _add_blocks(self) -> None:
        text = self._text
        self._text = ""  # the local is now the only reference, so += may resize it in place
        text += "".join(self._blocks)
        self._text = text
        self._blocks.clear()
        self._blocks_length = 0

    @property
    def length(self) -> int:
        return len(self._text) + self._blocks_length + sum(map(len, self._pending))

    def __str__(self) -> str:
        """The whole string. The rope keeps it as its text, so reading it again costs nothing
        until more is appended (and then the first append copies it, since the caller holds it)."""
        if self._pending:
            self._compact()
        if self._blocks:
            self._add_blocks()
        return self._text


class ToolCallSoFar:
    """One tool call as its pieces arrive: named by its first piece, its arguments a rope of the rest."""

    __slots__ = ("id", "name", "arguments")

    def __init__(self, id: str, name: str) -> None:
        self.id = id
        self.name = name
        self.arguments = Rope()


class Transcript:
    """Everything received so far, in index order. ``text``, ``parts`` and ``tool_calls`` join
    on each call: read them once at the end, or follow the deltas."""

    __slots__ = (
        "_text_rope",
        "_reasoning",
        "_marks",
        "chunks",
        "finish_reason",
        "usage",
        "calls_so_far",
        "server_calls_so_far",
        "_refusal",
        "_thinking",
        "_thinking_open",
    )

    def __init__(self) -> None:
        self._text_rope = Rope()
        self._reasoning = Rope()
        # Where non-text parts stand: (offset in the text, kind, image url or offset in the reasoning).
        self._marks: list[tuple[int, PartKind, Any]] = []
        self.chunks = 0
        self.finish_reason: str | None = None
        self.usage: Mapping[str, Any] | None = None
        # by the stream's index; public for sse_pipeline's fragment path, which appends to a call's arguments directly
        self.calls_so_far: dict[int, ToolCallSoFar] = {}
        self.server_calls_so_far: dict[int, ToolCallSoFar] = {}  # the tools the server runs itself
        self._refusal: Rope | None = None
        # The thinking blocks: where each starts in the reasoning, its signature, a redacted block's data,
        # its index, a Responses reasoning item.
        self._thinking: list[tuple[int, str | None, str | None, int | None, str | None]] = []
        self._thinking_open = False  # whether more reasoning belongs to the last block (no signature closed it)

    def append(self, text: str) -> None:
        """Add one plain-text chunk's text (possibly empty): the hot path."""
        self.chunks += 1
        if text:
            self._text_rope.append(text)

    def extend(self, texts: list[str]) -> None:
        """Add a run of plain-text chunks' texts, in order: the pipeline's fast path hands them over so."""
        self.chunks += len(texts)
        self._text_rope.extend(texts)

    def add(self, chunk: Chunk, text: str) -> None:
        """Add a chunk with more than text: reasoning, an image, tool calls, a refusal, a finish reason or usage."""
        # one unpacking in place of a field lookup each: most such chunks are tool-call fragments, as many as text chunks
        _, _, _, _, _, image_url, reasoning, finish_reason, usage, refusal, tool_calls, signature, block = chunk
        if block is not None:
            if self._thinking_open and block.index is not None and self._thinking[-1][3] == block.index:
                # the end of the open block (a Responses reasoning item's output_item.done): it closes it
                self._thinking[-1] = (self._thinking[-1][0], block.signature, block.data, block.index, block.item)
            else:
                self._thinking.append((self._reasoning.length, block.signature, block.data, block.index, block.item))
            # the reasoning that starts with it is its text, until a redacted block or a reasoning item's end
            self._thinking_open = block.data is None and block.item is None
        if reasoning:
            if not self._thinking_open:
                self._thinking.append((self._reasoning.length, None, None, None, None))
                self._thinking_open = True
            if not self._marks or self._marks[-1][:2] != (self._text_rope.length, "reasoning"):
                self._marks.append((self._text_rope.length, "reasoning", self._reasoning.length))
            self._reasoning.append(reasoning)
        if block is not None and block.signature is not None:  # a block that came signed is whole
            self._thinking_open = False
        self.chunks += 1
        if text:
            self._text_rope.append(text)
        if tool_calls is not None:
            for index, id, name, arguments, server in tool_calls:
                calls = self.server_calls_so_far if server else self.calls_so_far
                call = calls.get(index)
                if call is None:
                    call = calls[index] = ToolCallSoFar(id or "", name or "")
                elif id or name:  # the first piece names a call; one that repeats it does not double it
                    call.id = call.id or id or ""
                    call.name = call.name or name or ""
                if arguments:
                    call.arguments.append(arguments)
        if image_url is not None:
            self._marks.append((self._text_rope.length, "image", image_url))
        if refusal:
            if self._refusal is None:
                self._refusal = Rope()
            self._refusal.append(refusal)
        if signature is not None:  # it closes the block it ends, or stands as a block of its own
            if self._thinking_open:
                start, _, _, block_index, item = self._thinking[-1]
                self._thinking[-1] = (start, signature, None, block_index, item)
            else:
                self._thinking.append((self._reasoning.length, signature, None, None, None))
            self._thinking_open = False
        if finish_reason is not None:
            self.finish_reason = finish_reason
        if usage is not None:
            self.usage = usage

    def __len__(self) -> int:
        return self._text_rope.length

    @property
    def text(self) -> str:
        return str(self._text_rope)

    @property
    def reasoning(self) -> str:
        return str(self._reasoning)

    @property
    def parts(self) -> tuple[Part, ...]:
        return self._parts(self.text)

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The tool calls so far, in index order, each with the arguments received so far."""
        return _calls(self.calls_so_far)

    @property
    def server_tool_calls(self) -> tuple[ToolCall, ...]:
        """The calls of tools the server runs itself, as ``tool_calls``."""
        return _calls(self.server_calls_so_far)

    @property
    def thinking(self) -> tuple[ThinkingBlock, ...]:
        """The thinking blocks so far, in order, each with its text, signature or redacted data."""
        if not self._thinking:
            return ()
        reasoning = self.reasoning
        ends = [start for start, *_ in self._thinking[1:]] + [len(reasoning)]
        return tuple(
            ThinkingBlock(reasoning[start:end], signature, data, block_index, item)
            for (start, signature, data, block_index, item), end in zip(self._thinking, ends, strict=True)
        )

    @property
    def refusal(self) -> str | None:
        return None if self._refusal is None else str(self._refusal)

    def _parts(self, text: str) -> tuple[Part, ...]:
        if not self._marks:
            return (Part("text", text),) if text else ()
        reasoning = self.reasoning
        reasoning_ends = [m[2] for m in self._marks if m[1] == "reasoning"][1:] + [len(reasoning)]
        parts: list[Part] = []
        start = 0
        for offset, kind, value in self._marks:
            if offset > start:
                parts.append(Part("text", text[start:offset]))
                start = offset
            if kind == "reasoning":
                parts.append(Part("reasoning", reasoning[value : reasoning_ends.pop(0)]))
            else:
                parts.append(Part(kind, value))
        if start < len(text):
            parts.append(Part("text", text[start:]))
        return tuple(parts)

    def response(self, complete: bool, stats: Stats) -> Response:
        """The response so far, with a copy of ``stats`` as they are now: nothing that comes after
        (a late resend, a source that ignores being stopped) may change a response once emitted."""
        if self.usage is not None:
            stats.usage = Usage(self.usage)
        stats = replace(stats)
        text = self.text  # joined once: a 15 MB response must not be copied twice more for its parts
        return Response(
            text,
            complete,
            self.chunks,
            self._parts(text),
            stats,
            self.reasoning,
            self.finish_reason,
            self.tool_calls,
            self.refusal,
            self.thinking,
            self.server_tool_calls,
        )


def _calls(calls: dict[int, ToolCallSoFar]) -> tuple[ToolCall, ...]:
    return tuple(ToolCall(index, call.id, call.name, str(call.arguments)) for index, call in sorted(calls.items()))
