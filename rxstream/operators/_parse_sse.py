"""parse_sse: OpenAI-compatible chat-completion events into ``Chunk``s."""

from __future__ import annotations

from typing import Any

import orjson
from reactivex import abc

from ..core._errors import FrameError, ResponseFailedError, shown
from ..core._stage import Operator, Shared
from ..core._values import PLAIN_TAIL, Chunk, ThinkingBlock, ToolCallFragment
from ..protocol._sse import SSEEvent
from ._fragment_path import EventParseStage
from ._parse import _new_chunk

_new_fragment = tuple.__new__  # as _new_chunk: the C constructor, not the named tuple's Python one

# The event types that can carry a chunk: OpenAI-compatible servers send only "message"
# (no event field); Anthropic names each event.
CHUNK_EVENTS = frozenset(
    {"message", "message_start", "content_block_start", "content_block_delta", "message_delta", "message_stop", "error"}
)


class ParseSSEStage(EventParseStage[SSEEvent]):
    def __init__(self, downstream: abc.ObserverBase[Chunk], shared: Shared, choice: int) -> None:
        super().__init__(downstream, shared)
        self.choice = choice
        # A chunk's index is its position: the events that carried something for this choice,
        # counted from 0 and on across a source's reconnections. Never the SSE id, which only
        # says where to resume and which servers number as they like, or not at all.
        self.next_index = 0
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] = {}  # Anthropic's usage from message_start, which message_delta updates
        self.server_blocks: set[int] = set()  # Anthropic content blocks of tools the server runs itself
        self.done = False
        shared.resume.finished = self.finished

    def take(self, event: SSEEvent) -> bool:
        if self.stopped or event.event not in CHUNK_EVENTS:
            return False  # keep-alives (an Anthropic ping) and events that carry no text
        self.events += 1
        stats = self.shared.stats
        data = event.data
        # str.isascii is O(1) in CPython: only non-ASCII text pays for encoding to count bytes
        stats.bytes += len(data) if data.isascii() else len(data.encode("utf-8", "surrogatepass"))
        index = self.next_index
        if data == "[DONE]":
            self.done = True
            self.deliver(Chunk(index, "", True, finish_reason=self.finish_reason))
            return False
        try:
            message = orjson.loads(data)
            text = common_text(message, self.choice)
            if text is not None:  # most events: the path may take it without a Chunk
                if stats.response_id is None:
                    self.identify(message)
                path = self.fragment_path
                if path is not None and path.take_plain(index, text):
                    self.next_index = index + 1  # deliver's bookkeeping, for the chunk the path took
                    stats.chunks += 1
                    return True
                chunk: Chunk | None = _new_chunk(Chunk, (index, text, False, message.get("created"), *PLAIN_TAIL))
            else:
                chunk = self.decode(index, message)
        except orjson.JSONDecodeError as error:
            self.fail(
                FrameError(event.data, f"invalid JSON ({error})", number=self.events, secrets=self.shared.secrets)
            )
            return False
        except ResponseFailedError as error:  # the server's own report of why the answer ends here
            self.fail(error)
            return False
        except (ValueError, TypeError, LookupError) as error:
            self.fail(FrameError(event.data, str(error), number=self.events, secrets=self.shared.secrets))
            return False
        if chunk is not None:
            self.deliver(chunk)
        return False

    def decode(self, index: int, message: Any) -> Chunk | None:
        if type(message) is not dict:
            raise ValueError("the event is not a JSON object")
        if "type" in message and "choices" not in message:
            return self.decode_anthropic(index, message)
        if message.get("error") is not None:  # OpenAI's error event; OpenRouter's, beside a finish reason "error"
            raise self.failed("error", message["error"])
        self.identify(message)
        choices = message.get("choices")
        if type(choices) is not list:
            raise ValueError("field 'choices' is missing or not a list")
        usage = message.get("usage")
        if usage is not None and type(usage) is not dict:
            raise ValueError("field 'usage' must be an object")
        for choice in choices:
            if type(choice) is not dict or choice.get("index", 0) != self.choice:
                continue
            delta = mapping(choice, "delta", optional=True)
            finish_reason = reason(choice, "finish_reason")
            if finish_reason == "error":  # OpenRouter's mid-stream failure, where its error object is missing
                raise self.failed("finish_reason error", {})
            tool_calls = delta.get("tool_calls")
            if tool_calls is not None and len(delta) == 1:  # tool-call fragments alone, as most events of a call are
                fragments = common_fragment(tool_calls)
                if fragments is not None and finish_reason is None and usage is None:  # one fragment, nothing else
                    chunk = _new_chunk(
                        Chunk,
                        (
                            index,
                            "",
                            False,
                            message.get("created"),
                            None,
                            None,
                            None,
                            None,
                            None,
                            None,
                            fragments,
                            None,
                            None,
                        ),
                    )
                    if self.fragment_path is None or not self.fragment_path.take(chunk):
                        return chunk
                    self.next_index = index + 1  # deliver's bookkeeping, for the chunk the path took
                    self.shared.stats.chunks += 1
                    return None
                content, reasoning, refusal = "", None, None
                fragments = fragments or openai_tool_calls(tool_calls)
            else:
                content = delta.get("content") or ""
                reasoning = delta.get("reasoning_content") or None
                refusal = delta.get("refusal") or None
                if (
                    type(content) is not str
                    or not (reasoning is None or type(reasoning) is str)
                    or not (refusal is None or type(refusal) is str)
                ):
                    raise ValueError(
                        "fields 'delta.content', 'delta.reasoning_content' and 'delta.refusal' must be strings"
                    )
                fragments = None if tool_calls is None else openai_tool_calls(tool_calls)
            if finish_reason is not None:
                self.finish_reason = finish_reason
            if content or reasoning or refusal or fragments or finish_reason or usage:
                # every field in Chunk's order, built by the C constructor: once per event
                return _new_chunk(
                    Chunk,
                    (
                        index,
                        content,
                        False,
                        message.get("created"),
                        None,
                        None,
                        reasoning,
                        finish_reason,
                        usage,
                        refusal,
                        fragments,
                        None,
                        None,
                    ),
                )
            return None
        return Chunk(index, "", False, usage=usage) if usage else None

    def decode_anthropic(self, index: int, message: dict[str, Any]) -> Chunk | None:
        """Anthropic's Messages stream, the other format in common use: every content block's
        text, thinking and tool use, the stop reason, and the usage of message_start as
        message_delta updates it."""
        kind = message["type"]
        if kind == "error":
            raise self.failed("event: error", message.get("error"))
        if kind == "content_block_delta":
            delta = mapping(message, "delta")
            delta_kind = delta.get("type")
            if delta_kind == "text_delta":
                return Chunk(index, string(delta, "text"))
            if delta_kind == "thinking_delta":
                return Chunk(index, "", reasoning=string(delta, "thinking"))
            if delta_kind == "input_json_delta":
                arguments = string(delta, "partial_json")
                at = block_index(message)
                fragment = ToolCallFragment(at, None, None, arguments, at in self.server_blocks)
                return Chunk(index, "", tool_calls=(fragment,)) if arguments else None
            if delta_kind == "signature_delta":
                return Chunk(index, "", signature=string(delta, "signature"))
        elif kind == "content_block_start":
            block = mapping(message, "content_block")
            block_type = block.get("type")
            if block_type == "tool_use" or block_type == "server_tool_use":
                at = block_index(message)
                server = block_type == "server_tool_use"
                if server:
                    self.server_blocks.add(at)
                fragment = ToolCallFragment(at, string(block, "id"), string(block, "name"), "", server)
                return Chunk(index, "", tool_calls=(fragment,))
            # other blocks but these (a server tool's result, such as web_search_tool_result) carry nothing of ours
            if block_type == "text" and block.get("text"):
                return Chunk(index, string(block, "text"))
            if block_type == "thinking":  # each block starts its own, so each signature pairs with its text
                signature = block.get("signature")
                start = ThinkingBlock("", string(block, "signature") if signature else None, None, block_index(message))
                text = string(block, "thinking") if block.get("thinking") else None
                return Chunk(index, "", reasoning=text, thinking_block=start)
            if block_type == "redacted_thinking":  # sent back as it came, so kept whole
                redacted = ThinkingBlock(data=string(block, "data"), index=block_index(message))
                return Chunk(index, "", thinking_block=redacted)
        elif kind == "message_start":
            self.identify(mapping(message, "message"))
            usage = mapping(message, "message").get("usage")
            if type(usage) is dict:
                self.usage = usage
                return Chunk(index, "", usage=usage)
        elif kind == "message_delta":
            delta = mapping(message, "delta")
            self.finish_reason = reason(delta, "stop_reason")
            details = delta.get("stop_details")
            if type(details) is dict:  # a refusal's category and explanation
                self.shared.stats.stop_details = details
            # message_delta's counts are totals so far; the ones it leaves out (or null) stand as message_start gave them
            update = mapping(message, "usage", optional=True)
            self.usage = {**self.usage, **{name: value for name, value in update.items() if value is not None}}
            return Chunk(index, "", finish_reason=self.finish_reason, usage=self.usage or None)
        elif kind == "message_stop":
            self.done = True
            return Chunk(index, "", True, finish_reason=self.finish_reason)
        return None

    def failed(self, event: str, details: Any) -> ResponseFailedError:
        """The error an in-stream failure report gives: the server's type, code and message, where it gave them."""
        details = details if type(details) is dict else {"message": details} if type(details) is str else {}
        code, kind, message = details.get("code"), details.get("type"), details.get("message")
        return ResponseFailedError(
            code if type(code) is str else str(code) if type(code) is int else None,
            message if type(message) is str else "no message",
            event=event,
            sequence_number=None,
            error_type=kind if type(kind) is str else None,
            secrets=self.shared.secrets,
        )

    def identify(self, message: dict[str, Any]) -> None:
        """The sender's id for the response (a chat completion's ``chatcmpl-…``, an Anthropic ``msg_…``), the first one given."""
        stats = self.shared.stats
        if stats.response_id is None:
            identity = message.get("id")
            if type(identity) is str and identity:
                stats.response_id = identity

    def deliver(self, chunk: Chunk) -> None:
        self.next_index = chunk.index + 1
        self.pass_on(chunk)

    def finished(self) -> bool:
        """Whether the input ending now ends the answer: its finish reason came, the final chunk not yet.

        Some compatible servers end the body right after the finish reason, without [DONE];
        Anthropic's recorded streams end before ``message_stop`` is dispatched. from_sse asks
        this when a body ends, so over HTTP the rule is this one too.
        """
        return self.finish_reason is not None and not self.done and not self.stopped

    def on_completed(self) -> None:
        if self.finished():
            self.done = True
            self.deliver(Chunk(self.next_index, "", True, finish_reason=self.finish_reason))
        self.complete()


def common_text(message: Any, choice: int) -> str | None:
    """The text of a chat completion chunk in the shape of most: one choice, ``choice``, whose delta
    carries non-empty ``content`` and none of reasoning, a refusal, tool calls, a finish reason, usage
    or an error, checked in a few steps; None for any other shape, which ``decode`` checks in full
    (and gives a plain chunk of this text for this one)."""
    try:
        # Subscripts cost less than type checks and .get, and fail on every other shape: one choice
        # (of a list: a dict or a string of one would give a string), an object, holding an object.
        (item,) = message["choices"]
        delta = item["delta"]
        content = delta["content"]
    except (LookupError, TypeError, ValueError):
        return None
    if (
        type(content) is str
        and content
        and item.get("finish_reason") is None
        and item.get("index", 0) == choice
        and message.get("usage") is None
        and message.get("error") is None
        and (
            len(delta) == 1  # content alone, as OpenAI sends every delta after the first
            or (
                delta.get("reasoning_content") is None
                and delta.get("refusal") is None
                and delta.get("tool_calls") is None
            )
        )
    ):
        return content
    return None


def common_fragment(items: Any) -> tuple[ToolCallFragment, ...] | None:
    """``delta.tool_calls`` in the shape of every fragment after a call's first, one entry with
    an ``index`` and ``function.arguments`` only, checked in a few steps; None for any other
    shape, which ``openai_tool_calls`` checks in full (and gives the same fragment for this one)."""
    if type(items) is list and len(items) == 1:
        item = items[0]
        if type(item) is dict and len(item) == 2:
            index = item.get("index")
            function = item.get("function")
            if type(index) is int and index >= 0 and type(function) is dict and len(function) == 1:
                arguments = function.get("arguments")
                if type(arguments) is str:
                    return (_new_fragment(ToolCallFragment, (index, None, None, arguments, False)),)
    return None


def openai_tool_calls(items: Any) -> tuple[ToolCallFragment, ...] | None:
    """``delta.tool_calls``: a fragment per entry, keyed by its ``index``."""
    if type(items) is not list:
        raise ValueError("field 'delta.tool_calls' must be a list")
    fragments = []
    for item in items:
        try:
            index = item["index"]
            function = item.get("function")
            function = {} if function is None else function
            id, name, arguments = item.get("id"), function.get("name"), function.get("arguments", "")
        except (LookupError, TypeError, AttributeError):
            raise ValueError(
                "each entry of 'delta.tool_calls' must be an object with a field 'delta.tool_calls[].index' and a 'function' object"
            ) from None
        if type(index) is not int or index < 0:
            raise ValueError(f"field 'delta.tool_calls[].index' must be a non-negative integer, not {shown(index)}")
        if arguments is None:  # null arguments are none; 0 or false are as wrong as 5 or true
            arguments = ""
        if not (id is None or type(id) is str) or not (name is None or type(name) is str) or type(arguments) is not str:
            raise ValueError(
                "fields 'id', 'function.name' and 'function.arguments' of 'delta.tool_calls[]' must be strings"
            )
        fragments.append(_new_fragment(ToolCallFragment, (index, id, name, arguments, False)))
    return tuple(fragments) or None


def reason(fields: dict[str, Any], name: str) -> str | None:
    """A finish or stop reason: a string, and an empty one is none (some Ollama versions send ``""`` on every chunk)."""
    value = fields.get(name)
    if value is not None and type(value) is not str:
        raise ValueError(f"field {name!r} must be a string, not {shown(value)}")
    return value or None


def mapping(fields: dict[str, Any], name: str, optional: bool = False) -> dict[str, Any]:
    """Field ``name`` of ``fields``, an object; when ``optional``, missing or null is an empty one."""
    value = fields.get(name)
    if value is None and optional:
        return {}
    if type(value) is not dict:
        raise ValueError(f"field {name!r} must be an object, not {shown(value)}")
    return value


def string(fields: dict[str, Any], name: str) -> str:
    value = fields[name]
    if type(value) is not str:
        raise ValueError(f"field {name!r} must be a string, not {shown(value)}")
    return value


def block_index(message: dict[str, Any]) -> int:
    index = message.get("index")
    if type(index) is not int or index < 0:
        raise ValueError(f"field 'index' of {message['type']} must be a non-negative integer, not {shown(index)}")
    return index


def parse_sse(choice: int = 0) -> Operator[SSEEvent, Chunk]:
    """OpenAI-compatible ``chat.completion.chunk`` events (from ``from_sse``) into ``Chunk``s.

    .. marble::
        :alt: parse_sse

        -e--p--f--d--|
        [ parse_sse()  ]
        -0-----1--2--|

        -e--p--f--|
        [ parse_sse() ]
        -0-----1--(2|)

    ``e`` carries text, ``p`` is a keep-alive (skipped), ``f`` carries the finish reason
    and ``d`` is ``[DONE]``; the digits are the chunks' indices, ``2`` the final chunk. An
    input that ends right after a finish reason, without ``[DONE]``, gets its final chunk
    at the end (second diagram).

    Text comes from choice ``choice``'s ``delta.content``, reasoning from
    ``delta.reasoning_content`` (a reasoning part, kept out of ``Response.text``), the
    refusal from ``delta.refusal``, tool calls from the fragments of ``delta.tool_calls``
    (keyed by their ``index``), and ``finish_reason`` and ``usage`` ride on the chunks into
    the ``Response``.

    Anthropic's Messages stream is understood too: the text of every content block
    (``text_delta``), thinking (``thinking_delta`` into the reasoning, ``signature_delta``),
    ``tool_use`` blocks (id and name from ``content_block_start``, the arguments from
    ``input_json_delta``, keyed by the block's index), ``stop_reason`` and the usage of
    ``message_start`` as ``message_delta`` updates it, and ``message_stop`` as the final
    chunk.

    A chunk's index is its position in the stream: the events that carry something for
    this choice, counted from 0 (SSE ids only tell ``from_sse`` where to resume).

    Args:
        choice: The ``choices[].index`` to read; applies to OpenAI-compatible streams only.

    Returns:
        An operator that takes an observable of ``SSEEvent``s and returns an observable of
        ``Chunk``s, indexed by position, the last one final.

    Raises:
        FrameError: (to the observer, ending the stream) an event that is not valid JSON or
            not the expected shape, or an error event from the server.
    """
    return Operator(lambda downstream, shared: ParseSSEStage(downstream, shared, choice))
