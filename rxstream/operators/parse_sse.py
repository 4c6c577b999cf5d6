"""parse_sse: OpenAI-compatible chat-completion events into ``Chunk``s."""

from __future__ import annotations

from typing import Any

import orjson
from reactivex import abc

from ..errors import FrameError
from ..model import Chunk
from ..sse import SSEEvent
from ..stage import Link, Operator, Stage

# The event types that can carry a chunk: OpenAI-compatible servers send only "message"
# (no event field); Anthropic names each event.
CHUNK_EVENTS = frozenset({"message", "content_block_delta", "message_delta", "message_stop", "error"})


class ParseSSEStage(Stage[SSEEvent, Chunk]):
    def __init__(self, downstream: abc.ObserverBase[Chunk], link: Link, choice: int) -> None:
        super().__init__(downstream, link)
        self.choice = choice
        self.events = 0
        # A chunk's index is its position: the events that carried something for this choice,
        # counted from 0 and on across a source's reconnections. Never the SSE id, which only
        # says where to resume and which servers number as they like, or not at all.
        self.next_index = 0
        self.finish_reason: str | None = None
        self.done = False
        link.resume.finished = self.finished

    def on_next(self, event: SSEEvent) -> None:
        if self.stopped or event.event not in CHUNK_EVENTS:
            return  # keep-alives (an Anthropic ping) and events that carry no text
        self.events += 1
        stats = self.link.stats
        stats.bytes += len(event.data.encode())
        index = self.next_index
        if event.data == "[DONE]":
            self.done = True
            self.deliver(Chunk(index, "", True, finish_reason=self.finish_reason))
            return
        try:
            chunk = self.decode(index, orjson.loads(event.data))
        except orjson.JSONDecodeError as error:
            self.fail(FrameError(event.data, f"invalid JSON ({error})", number=self.events, secrets=self.link.secrets))
            return
        except (ValueError, TypeError, LookupError) as error:
            self.fail(FrameError(event.data, str(error), number=self.events, secrets=self.link.secrets))
            return
        if chunk is not None:
            self.deliver(chunk)

    def decode(self, index: int, message: Any) -> Chunk | None:
        if type(message) is not dict:
            raise ValueError("the event is not a JSON object")
        if "type" in message and "choices" not in message:
            return self.decode_anthropic(index, message)
        if "error" in message:
            raise ValueError(f"the server reported an error: {message['error']!r:.200}")
        choices = message.get("choices")
        if type(choices) is not list:
            raise ValueError("field 'choices' is missing or not a list")
        usage = message.get("usage")
        if usage is not None and type(usage) is not dict:
            raise ValueError("field 'usage' must be an object")
        for choice in choices:
            if type(choice) is not dict or choice.get("index", 0) != self.choice:
                continue
            delta = choice.get("delta") or {}
            content = delta.get("content") or ""
            reasoning = delta.get("reasoning_content") or None
            finish_reason = choice.get("finish_reason")
            if type(content) is not str or (reasoning is not None and type(reasoning) is not str):
                raise ValueError("fields 'delta.content' and 'delta.reasoning_content' must be strings")
            if finish_reason is not None:
                self.finish_reason = finish_reason
            if content or reasoning or finish_reason or usage:
                return Chunk(index, content, False, message.get("created"), reasoning=reasoning, finish_reason=finish_reason, usage=usage)
            return None
        return Chunk(index, "", False, usage=usage) if usage else None

    def decode_anthropic(self, index: int, message: dict[str, Any]) -> Chunk | None:
        """Anthropic's Messages stream, the other format in common use: block ``choice``'s deltas."""
        kind = message["type"]
        if kind == "error":
            raise ValueError(f"the server reported an error: {message.get('error')!r:.200}")
        if kind == "content_block_delta" and message.get("index") == self.choice:
            delta = message["delta"]
            if delta.get("type") == "text_delta":
                return Chunk(index, delta["text"])
            if delta.get("type") == "thinking_delta":
                return Chunk(index, "", reasoning=delta["thinking"])
        elif kind == "message_delta":
            self.finish_reason = message["delta"].get("stop_reason")
            return Chunk(index, "", finish_reason=self.finish_reason, usage=message.get("usage"))
        elif kind == "message_stop":
            self.done = True
            return Chunk(index, "", True, finish_reason=self.finish_reason)
        return None

    def deliver(self, chunk: Chunk) -> None:
        self.next_index = chunk.index + 1
        self.link.stats.chunks += 1
        self.emit(chunk)

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


def parse_sse(choice: int = 0) -> Operator[SSEEvent, Chunk]:
    """OpenAI-compatible ``chat.completion.chunk`` events (from ``from_sse``) into ``Chunk``s.

    Anthropic's Messages stream is understood too: ``text_delta`` and ``thinking_delta`` of
    content block ``choice``, ``stop_reason`` and ``usage`` from ``message_delta``, and
    ``message_stop`` as the final chunk.

    Text comes from choice ``choice``'s ``delta.content``, reasoning from
    ``delta.reasoning_content`` (a reasoning part, kept out of ``Response.text``), and
    ``finish_reason`` and ``usage`` ride on the chunks into the ``Response``. ``[DONE]`` is
    the final chunk; an input that ends right after a finish reason is taken as final too.
    A chunk's index is its position in the stream: the events that carry something for
    this choice, counted from 0 (SSE ids only tell ``from_sse`` where to resume). A
    malformed event is a ``FrameError``.
    """
    return Operator(lambda downstream, link: ParseSSEStage(downstream, link, choice))
