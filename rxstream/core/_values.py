"""The values that flow through a pipeline: chunks in, one response out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from ._json_text import parse_object, partial_object


class Chunk(NamedTuple):
    """One piece of a streamed response, as the sender numbered it.

    A named tuple rather than a dataclass: it is immutable and slotted like a frozen
    dataclass, and costs a third as much to build, which matters once per frame.
    """

    index: int  # type: ignore[assignment]  # shadows tuple.index, which a chunk has no use for
    data: str = ""
    is_final: bool = False
    timestamp: int | None = None
    text: str | None = None
    image_url: str | None = None
    reasoning: str | None = None  # a reasoning model's thinking, kept out of the response text
    finish_reason: str | None = None  # why the sender stopped, where it says (OpenAI-style streams)
    usage: Mapping[str, Any] | None = None  # token counts, where the sender reports them
    refusal: str | None = None  # a model's refusal, apart from the text (OpenAI-style streams)
    tool_calls: tuple[ToolCallFragment, ...] | None = None  # pieces of the tool calls the model asks for
    signature: str | None = None  # the signature of an Anthropic thinking block
    thinking_block: ThinkingBlock | None = None  # an Anthropic thinking or redacted_thinking block starts here

    @property
    def plain(self) -> bool:
        """Text only, and not the last: what most chunks are, and what the pipeline's fast path takes."""
        return not self.is_final and self[4:] == PLAIN_TAIL

    def __repr__(self) -> str:
        # Bounded: a chunk may carry a whole document, and asyncio and loggers print reprs.
        fields = ", ".join(
            f"{name}={preview(value) if isinstance(value, str) else repr(value)}"
            for name, value, default in zip(self._fields[1:], self[1:], _CHUNK_DEFAULTS, strict=True)
            if value != default
        )
        return f"Chunk(index={self.index}{', ' if fields else ''}{fields})"

    def same_content(self, other: Chunk) -> bool:
        """Whether ``other`` carries the same content; a resend may differ in timestamp only."""
        return (
            self.index == other.index
            and self.data == other.data
            and self.is_final == other.is_final
            and self.text == other.text
            and self.image_url == other.image_url
            and self.reasoning == other.reasoning
            and self.refusal == other.refusal
            and self.tool_calls == other.tool_calls
            and self.signature == other.signature
            and self.thinking_block == other.thinking_block
        )


# text, image_url, reasoning, finish_reason, usage, refusal, tool_calls, signature, thinking_block: all absent
PLAIN_TAIL = (None,) * 9
_CHUNK_DEFAULTS = ("", False, None, *PLAIN_TAIL)

PREVIEW = 60  # characters of a text a repr shows, as much as a log line can spare


def preview(text: str) -> str:
    """``text`` for a repr: its first ``PREVIEW`` characters quoted, and its length when it is longer."""
    if len(text) <= PREVIEW:
        return repr(text)
    return f"{text[:PREVIEW]!r}… ({len(text):,} chars)"


class ToolCallFragment(NamedTuple):
    """A piece of a tool call as the stream carries it: the first piece of a call names it
    (``id`` and ``name``), every piece may add to its ``arguments`` (raw JSON text).

    ``server`` marks a tool the server runs itself (Anthropic's ``server_tool_use``, such as
    web search): its calls go to ``Response.server_tool_calls``, never among those the client runs.
    """

    index: int  # type: ignore[assignment]  # the stream's key for the call: OpenAI's tool_calls[].index, Anthropic's content block index
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    server: bool = False


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call the model asked for: ``arguments`` is the JSON text exactly as streamed, its pieces joined.

    ``index`` is the stream's key for the call (OpenAI's ``tool_calls[].index``, Anthropic's
    content block index), so the calls of one response are in ``index`` order.
    """

    index: int
    id: str
    name: str
    arguments: str

    def parsed(self) -> dict[str, Any]:
        """The arguments as a dict (``{}`` when there are none); ``InvalidJSONError`` saying where they are not a JSON object."""
        return parse_object(self.arguments, self._what)

    def partial(self, *, trailing_strings: bool = False) -> dict[str, Any]:
        """The best-effort parse of arguments that may be incomplete (``rxstream.partial_json``), ``{}`` before any."""
        return partial_object(self.arguments, self._what, trailing_strings)

    def __repr__(self) -> str:
        return f"ToolCall(index={self.index}, id={self.id!r}, name={self.name!r}, arguments={preview(self.arguments)})"

    @property
    def _what(self) -> str:
        return f"the arguments of tool call {self.index} ({self.name}, id {self.id})"


@dataclass(frozen=True, slots=True)
class ThinkingBlock:
    """One block of a reasoning model's thinking: its ``text`` and the ``signature`` that came with it.

    Anthropic requires a tool-use loop to send each thinking block back with its own signature,
    and a ``redacted_thinking`` block as it came: such a block has no text, only its opaque
    (encrypted) ``data``. ``index`` is the stream's key for the block (Anthropic's content block
    index, a Responses output item's ``output_index``, as ``ToolCall.index``), so that thinking
    between tool calls goes back where it came. ``item`` is a Responses reasoning item as it came
    (its JSON text: id, summary parts and, when asked for, ``encrypted_content``), which a request
    to a server that keeps no state sends back
    (https://platform.openai.com/docs/guides/reasoning#keeping-reasoning-items-in-context).
    """

    text: str = ""
    signature: str | None = None
    data: str | None = None  # a redacted_thinking block's encrypted thinking, None for a readable block
    index: int | None = None  # None where the stream numbers no blocks (OpenAI-style reasoning)
    item: str | None = None  # a Responses reasoning item's JSON text, None for the other APIs' blocks

    @property
    def redacted(self) -> bool:
        return self.data is not None

    def __repr__(self) -> str:
        at = "" if self.index is None else f", index={self.index}"
        if self.data is not None:
            return f"ThinkingBlock(redacted, data={preview(self.data)}{at})"
        signature = "" if self.signature is None else f", signature={preview(self.signature)}"
        item = "" if self.item is None else f", item={preview(self.item)}"
        return f"ThinkingBlock(text={preview(self.text)}{signature}{at}{item})"


PartKind = Literal["text", "image", "reasoning"]


class Part(NamedTuple):
    """A run of the response in index order: text, reasoning, or one image by URL."""

    kind: PartKind
    value: str


class Usage(dict[str, Any]):
    """The sender's token counts: the dict it sent, as it sent it (``usage["prompt_tokens"]``),
    and the same counts under one set of names whatever the API (``usage.input_tokens``).

    ``input_tokens`` counts every input token, those read from a cache included (OpenAI's
    ``prompt_tokens``; the Responses API's ``input_tokens``; Anthropic's ``input_tokens`` plus its
    ``cache_read_input_tokens`` and ``cache_creation_input_tokens``, which it counts apart);
    ``cached_tokens`` those read from a cache; ``output_tokens`` the completion's, of which
    ``reasoning_tokens`` were thinking; ``total_tokens`` the sender's total, else input plus
    output. Each is None where the sender did not say.
    """

    __slots__ = ()

    @property
    def input_tokens(self) -> int | None:
        base = _count(self, "prompt_tokens", "input_tokens")
        if base is None:
            return None
        cache = (_count(self, "cache_read_input_tokens") or 0) + (_count(self, "cache_creation_input_tokens") or 0)
        return base + cache

    @property
    def output_tokens(self) -> int | None:
        return _count(self, "completion_tokens", "output_tokens")

    @property
    def total_tokens(self) -> int | None:
        total = _count(self, "total_tokens")
        if total is not None:
            return total
        input_tokens, output_tokens = self.input_tokens, self.output_tokens
        return None if input_tokens is None or output_tokens is None else input_tokens + output_tokens

    @property
    def reasoning_tokens(self) -> int | None:
        return _count(_details(self, "completion_tokens_details", "output_tokens_details"), "reasoning_tokens")

    @property
    def cached_tokens(self) -> int | None:
        cached = _count(_details(self, "prompt_tokens_details", "input_tokens_details"), "cached_tokens")
        # Anthropic's cache reads; DeepSeek's prompt_cache_hit_tokens
        return cached if cached is not None else _count(self, "cache_read_input_tokens", "prompt_cache_hit_tokens")


def _count(fields: Mapping[str, Any], *names: str) -> int | None:
    """The first of ``names`` that ``fields`` holds as a whole number."""
    for name in names:
        value = fields.get(name)
        if type(value) is int:
            return value
    return None


def _details(fields: Mapping[str, Any], *names: str) -> Mapping[str, Any]:
    for name in names:
        value = fields.get(name)
        if isinstance(value, Mapping):
            return value
    return {}


@dataclass(slots=True)
class Stats:
    """What happened on the way; every operator adds what it saw.

    Times are in seconds from the moment the pipeline was subscribed.
    """

    chunks: int = 0
    bytes: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    reorder_depth: int = 0
    buffer_high_water: int = 0
    dropped: int = 0
    retries: int = 0
    time_to_first_chunk: float | None = None
    duration: float | None = None
    usage: Usage | None = None  # the sender's token counts, where it reports them: raw, and by common names
    stop_details: dict[str, Any] | None = None  # why the sender refused, where it says (Anthropic's stop_details)
    response_id: str | None = None  # the sender's id for the response, where it gives one (OpenAI Responses)

    def __post_init__(self) -> None:
        if self.usage is not None and type(self.usage) is not Usage:  # a plain dict given (a saved turn read back)
            self.usage = Usage(self.usage)


@dataclass(frozen=True, slots=True)
class Response:
    """The whole streamed response, or the part of it received before a failure.

    ``complete`` is true only when the final chunk arrived and no chunk was dropped on
    the way (see ``backpressure_buffer``'s drop strategies). ``reasoning`` is a reasoning
    model's thinking, apart from ``text``; ``finish_reason`` is the sender's, if it gave one.
    ``tool_calls`` are the tool calls the model asked for, in index order; ``refusal`` is its
    refusal text (OpenAI's ``delta.refusal``), None when it did not refuse that way;
    ``thinking`` is the reasoning as the blocks it came in, in order, each with its signature
    (and Anthropic's ``redacted_thinking`` blocks kept opaque), which a request that sends the
    thinking back must include; ``reasoning`` is their text joined. ``id`` is the sender's id for the
    response, where it gives one (kept on ``stats``, which the parser fills in).
    ``server_tool_calls`` are the tools the server ran itself (Anthropic's ``server_tool_use``
    blocks: web search, code execution), kept apart from ``tool_calls``, which are the client's
    to run, as the anthropic SDK keeps them apart by block type.
    """

    text: str
    complete: bool
    chunks: int
    parts: tuple[Part, ...] = ()
    stats: Stats = field(default_factory=Stats)
    reasoning: str = ""
    finish_reason: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    refusal: str | None = None
    thinking: tuple[ThinkingBlock, ...] = ()
    server_tool_calls: tuple[ToolCall, ...] = ()

    @property
    def reasoning_signatures(self) -> tuple[str, ...]:
        """The signatures of the thinking blocks, in order (blocks without one left out)."""
        return tuple(block.signature for block in self.thinking if block.signature is not None)

    @property
    def stop_details(self) -> dict[str, Any] | None:
        """Why the sender refused, where it says (an Anthropic refusal's ``stop_details``: category, explanation)."""
        return self.stats.stop_details

    @property
    def id(self) -> str | None:
        """The sender's id for the response (an OpenAI Responses stream's ``resp_...``), None where it gives none."""
        return self.stats.response_id

    def __repr__(self) -> str:
        # Bounded, as httpx shows ``<Response [200 OK]>``: asyncio formats the result of every
        # finished task, and a whole 1.8 MB text took 16.6 ms there and filled the log.
        fields = [
            "complete" if self.complete else "partial",
            f"text={preview(self.text)}",
            f"chunks={self.chunks}",
        ]
        if self.reasoning:
            fields.append(f"reasoning={preview(self.reasoning)}")
        if self.refusal is not None:
            fields.append(f"refusal={preview(self.refusal)}")
        if self.tool_calls:
            fields.append(f"tool_calls={len(self.tool_calls)}")
        if self.server_tool_calls:
            fields.append(f"server_tool_calls={len(self.server_tool_calls)}")
        if self.finish_reason is not None:
            fields.append(f"finish_reason={self.finish_reason!r}")
        if self.id is not None:
            fields.append(f"id={self.id!r}")
        return f"<Response {' '.join(fields)}>"
