"""parse_responses: OpenAI Responses stream events into ``Chunk``s numbered by their ``sequence_number``."""

from __future__ import annotations

from typing import Any

import orjson
from reactivex import abc

from ..core._errors import FrameError, ResponseFailedError, shown
from ..core._stage import Operator, Shared
from ..core._values import PLAIN_TAIL, Chunk, ThinkingBlock, ToolCallFragment
from ..protocol._sse import SSEEvent
from ._fragment_path import EventParseStage
from ._parse import Payload, _new_chunk
from ._parse_sse import _new_fragment, mapping, string
from ._parse_sse import reason as finish_reason

# The widest gap in sequence numbers whose missing numbers are tracked, for the final events' check:
# far beyond reorder's window, and bounded, so that a number from an attacker costs no memory.
MAX_GAP = 4096
LIFECYCLE_EVENTS = frozenset({"response.created", "response.queued", "response.in_progress"})


class ParseResponsesStage(EventParseStage[Payload | SSEEvent]):
    def __init__(self, downstream: abc.ObserverBase[Chunk], shared: Shared) -> None:
        super().__init__(downstream, shared)
        # A failure the server reported (response.failed, error) waits until reorder has
        # delivered everything numbered before it, so that the partial is all of it.
        self.failure: ResponseFailedError | None = None
        # The characters the deltas of each text, refusal and arguments have carried, by
        # (kind, output_index, content_index), to hold the final events' values against once
        # every event numbered before them has come (``missing`` is empty).
        self.delivered: dict[tuple[Any, ...], int] = {}
        self.highest = -1  # the highest sequence number so far
        self.missing: set[int] = set()  # numbers below it that have not come
        self.checking = True  # false after a gap too wide to track: the final events are then not checked
        self.opened: dict[Any, int] = {}  # the length of the arguments each call's output_item.added carried
        # The key in ``delivered`` of the text part the last text delta counted for, the part
        # common_delta takes the next one of (none yet: the key of a delta with null indices).
        self.text_key: tuple[Any, ...] = ("text", None, None)

    def take(self, item: Payload | SSEEvent) -> bool:
        if self.stopped:
            return False
        data = item.data if isinstance(item, SSEEvent) else item
        self.events += 1
        stats = self.shared.stats
        # str.isascii is O(1) in CPython: only non-ASCII text pays for encoding to count bytes
        stats.bytes += (
            len(data.encode("utf-8", "surrogatepass")) if type(data) is str and not data.isascii() else len(data)
        )
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError as error:  # also raised for input that is neither str nor bytes
            self.fail(FrameError(data, f"invalid JSON ({error})", number=self.events, secrets=self.shared.secrets))
            return False
        text = self.common_delta(event)
        if text is not None:  # most events: decode's books for it, and the path may take it without a Chunk
            number = self.highest = self.highest + 1
            key, delivered = self.text_key, self.delivered
            delivered[key] = delivered.get(key, 0) + len(text)
            path = self.fragment_path
            if path is not None and path.take_plain(number, text):
                stats.chunks += 1  # deliver's bookkeeping, for the chunk the path took
                return True
            self.deliver(_new_chunk(Chunk, (number, text, False, None, *PLAIN_TAIL)))
            return False
        try:
            chunk = self.decode(event)
        except ResponseFailedError as error:  # an error event without a number: nothing to wait for
            self.fail(error)
            return False
        except (ValueError, TypeError, LookupError, AttributeError) as error:
            self.fail(FrameError(data, str(error), number=self.events, secrets=self.shared.secrets))
            return False
        self.deliver(chunk)
        return False

    def common_delta(self, event: Any) -> str | None:
        """The text of an ``output_text.delta`` in the shape of most: next in order (one past the highest
        sequence number), of the text part the last one counted for, no failure waiting; checked in a
        few steps. None for anything else, which ``decode`` checks in full (and gives a plain chunk
        of this text, counted for that part, for this one)."""
        try:
            # Subscripts cost less than type checks and .get, and fail on every other shape (the event
            # not an object, a field missing); == matches as the key's lookup in ``delivered`` does.
            if event["type"] != "response.output_text.delta":
                return None
            number, text, key = event["sequence_number"], event["delta"], self.text_key
            same_part = event["output_index"] == key[1] and event["content_index"] == key[2]
        except (LookupError, TypeError):
            return None
        if same_part and number == self.highest + 1 and type(number) is int and type(text) is str:
            return text if self.failure is None else None
        return None

    def decode(self, event: Any) -> Chunk:
        """The chunk of one event: every event has one, at its sequence number, so that reorder sees no gap."""
        if type(event) is not dict:
            raise ValueError("the event is not a JSON object")
        kind = event.get("type")
        number = event.get("sequence_number")
        if type(number) is not int or number < 0:
            if kind == "error":  # servers that fail before the stream starts may leave the number out
                raise self.failed(kind, event, None)
            raise ValueError(f"field 'sequence_number' must be a non-negative integer, not {shown(number)}")
        if number == self.highest + 1:  # most events
            self.highest = number
            fresh = True
        else:
            fresh = self.arrived(number)
        # every field in Chunk's order, built by the C constructor: the deltas are most events
        if kind == "response.output_text.delta":
            text = string(event, "delta")
            part = ("text", event.get("output_index"), event.get("content_index"))
            self.count(part, len(text), fresh)
            if fresh:  # counted: the next delta of this part, in order, is common_delta's
                self.text_key = part
            return _new_chunk(Chunk, (number, text, False, None, None, None, None, None, None, None, None, None, None))
        if kind == "response.function_call_arguments.delta":
            arguments = string(event, "delta")
            at = output_index(event)
            self.count(("arguments", at, None), len(arguments), fresh)
            fragment = _new_fragment(ToolCallFragment, (at, None, None, arguments, False))
            return _new_chunk(
                Chunk, (number, "", False, None, None, None, None, None, None, None, (fragment,), None, None)
            )
        if kind == "response.reasoning_summary_text.delta" or kind == "response.reasoning_text.delta":
            return Chunk(number, "", reasoning=string(event, "delta"))
        if kind == "response.refusal.delta":
            refusal = string(event, "delta")
            self.count(("refusal", event.get("output_index"), event.get("content_index")), len(refusal), fresh)
            return Chunk(number, "", refusal=refusal)
        if kind == "response.output_item.added":
            item = mapping(event, "item")
            if item.get("type") == "function_call":
                at = output_index(event)
                arguments = arguments_of(item)
                self.count(("arguments", at, None), len(arguments), fresh)
                self.opened[at] = len(arguments)  # a final value may count these or not
                fragment = ToolCallFragment(at, string(item, "call_id"), string(item, "name"), arguments)
                return Chunk(number, "", tool_calls=(fragment,))
            if item.get("type") == "reasoning":  # the block its summary and text deltas fill
                return Chunk(number, "", thinking_block=ThinkingBlock(index=output_index(event)))
        elif kind in LIFECYCLE_EVENTS:
            self.identify(event)
            if kind == "response.created" and number == 1:
                # A stream numbered from 1 (the API reference's examples; the API itself counts
                # from 0): nothing will come at 0, so an empty chunk stands there.
                self.missing.discard(0)
                self.deliver(Chunk(0, ""))
        elif kind == "response.completed" or kind == "response.incomplete":
            response = self.identify(event)
            if kind == "response.completed":
                reason = finish_reason(response, "status") or "completed"
            else:
                details = mapping(response, "incomplete_details", optional=True)
                reason = finish_reason(details, "reason") or "incomplete"
            usage = response.get("usage")
            if usage is not None and type(usage) is not dict:
                raise ValueError("field 'response.usage' must be an object")
            output = response.get("output")
            final = self.finals(output if type(output) is list else [], kind)
            return Chunk(
                number,
                final.data,
                True,
                finish_reason=reason,
                usage=usage,
                refusal=final.refusal,
                tool_calls=final.tool_calls,
            )
        elif kind == "response.output_text.done" or kind == "response.refusal.done":
            key = "text" if kind == "response.output_text.done" else "refusal"
            missing = self.settle(
                (key, event.get("output_index"), event.get("content_index")), string(event, key), kind
            )
            return Chunk(number, missing) if key == "text" else Chunk(number, "", refusal=missing or None)
        elif kind == "response.function_call_arguments.done":
            at = output_index(event)
            missing = self.settle(("arguments", at, None), string(event, "arguments"), kind)
            return Chunk(number, "", tool_calls=(ToolCallFragment(at, None, None, missing),) if missing else None)
        elif kind == "response.output_item.done":
            item = mapping(event, "item")
            if item.get("type") == "reasoning":  # kept as it came, to go back to a server that keeps no state
                block = ThinkingBlock(index=output_index(event), item=orjson.dumps(item).decode())
                return Chunk(number, "", thinking_block=block)
            return self.finals([{**item, "output_index": output_index(event)}], kind)._replace(index=number)
        elif (kind == "response.failed" or kind == "error") and self.failure is None:
            self.failure = self.failed(kind, event, number)
        # anything else (an item or part added or done, a text done, event types yet to come)
        # carries nothing new: an empty chunk keeps its number
        return Chunk(number, "")

    def arrived(self, number: int) -> bool:
        """Note event ``number``, out of the ordinary order: whether it is new (not a resend)."""
        if number > self.highest:
            if number - self.highest > MAX_GAP:
                self.checking = False
            elif self.checking:
                self.missing.update(range(self.highest + 1, number))
            self.highest = number
            return True
        if number in self.missing:
            self.missing.discard(number)
            return True
        return not self.checking  # a resend; or, past a gap too wide to track, whatever it is

    def count(self, key: tuple[Any, ...], size: int, fresh: bool) -> None:
        if fresh:
            self.delivered[key] = self.delivered.get(key, 0) + size

    def settle(self, key: tuple[Any, ...], final: str, kind: str) -> str:
        """What of ``final``, a final event's value, the deltas did not carry: all of it where none
        came (the final event is authoritative), nothing where they all did. Deltas that add up to
        another length are a FrameError: the stream lost or changed some of them."""
        if self.missing or not self.checking:  # some deltas may be yet to come: a later final event checks
            return ""
        had = self.delivered.get(key, 0)
        self.delivered[key] = len(final)
        # the arguments an output_item.added carried may or may not be in the final value: either agrees
        deltas = had - self.opened.get(key[1], 0) if key[0] == "arguments" else had
        if had == 0 or len(final) == had or len(final) == deltas:
            return final if had == 0 else ""
        what = f"the {key[0]} of output {key[1]}" + ("" if key[2] is None else f", part {key[2]}")
        raise ValueError(f"{what}: the deltas carried {had} characters, {kind} says {len(final)}")

    def finals(self, items: list[Any], kind: str) -> Chunk:
        """The values of output items as a final event gives them (output_item.done, response.completed),
        less what the deltas carried: the text, refusals and arguments that no delta did."""
        text, refusal, calls = [], [], []
        for position, item in enumerate(items):
            if type(item) is not dict:
                raise ValueError(f"each output item of {kind} must be an object, not {shown(item)}")
            at = item.get("output_index", position)
            if item.get("type") == "function_call":
                missing = self.settle(("arguments", at, None), arguments_of(item), kind)
                if missing:
                    calls.append(ToolCallFragment(at, string(item, "call_id"), string(item, "name"), missing))
            elif item.get("type") == "message":
                content = item.get("content") or []
                if type(content) is not list:
                    raise ValueError(f"field 'content' of a message item must be a list, not {shown(content)}")
                for part_index, part in enumerate(content):
                    if type(part) is dict and part.get("type") == "output_text":
                        text.append(self.settle(("text", at, part_index), string(part, "text"), kind))
                    elif type(part) is dict and part.get("type") == "refusal":
                        refusal.append(self.settle(("refusal", at, part_index), string(part, "refusal"), kind))
        return Chunk(0, "".join(text), refusal="".join(refusal) or None, tool_calls=tuple(calls) or None)

    def failed(self, kind: str, event: dict[str, Any], number: int | None) -> ResponseFailedError:
        """The error a response.failed or error event reports, with the server's code and message."""
        if kind == "response.failed":
            details = self.identify(event).get("error") or {}
        else:  # the error event has code and message at the top; some servers nest them in 'error'
            details = event["error"] if type(event.get("error")) is dict else event
        code, message = details.get("code"), details.get("message")
        error_type = None if details is event else details.get("type")  # the event's own type is "error"
        return ResponseFailedError(
            code if type(code) is str else None,
            message if type(message) is str else "no message",
            event=kind,
            sequence_number=number,
            error_type=error_type if type(error_type) is str else None,
            secrets=self.shared.secrets,
        )

    def identify(self, event: dict[str, Any]) -> dict[str, Any]:
        """The ``response`` object of a lifecycle event; its id becomes the response's."""
        response = event["response"]
        if type(response) is not dict:
            raise ValueError(f"field 'response' of {event['type']} must be an object")
        identity = response.get("id")
        if type(identity) is str and self.shared.stats.response_id is None:
            self.shared.stats.response_id = identity
        return response

    def deliver(self, chunk: Chunk) -> None:
        self.pass_on(chunk)
        failure = self.failure
        if failure is not None and not self.stopped:
            position = self.shared.resume.position
            if position is None or position() > (failure.sequence_number or 0):
                self.fail(failure)

    def on_error(self, error: Exception) -> None:
        # The server's word on why the response failed, rather than the drop that followed it
        self.fail(error if self.failure is None else self.failure)

    def on_completed(self) -> None:
        if self.failure is not None:
            self.fail(self.failure)  # the server's reason, rather than the gap it leaves behind
        else:
            self.complete()


def arguments_of(item: dict[str, Any]) -> str:
    """A function_call item's arguments: a string, or none."""
    arguments = item.get("arguments")
    if arguments is not None and type(arguments) is not str:
        raise ValueError(f"field 'item.arguments' must be a string, not {shown(arguments)}")
    return arguments or ""


def output_index(event: dict[str, Any]) -> int:
    index = event["output_index"]
    if type(index) is not int or index < 0:
        raise ValueError(f"field 'output_index' of {event['type']} must be a non-negative integer, not {shown(index)}")
    return index


def parse_responses() -> Operator[Payload | SSEEvent, Chunk]:
    """OpenAI Responses stream events into ``Chunk``s numbered by their ``sequence_number``.

    .. marble::
        :alt: parse_responses

        -c--t--t--d--|
        [ parse_responses() ]
        -0--1--2--3--|

        -c--t--x--|
        [ parse_responses() ]
        -0--1--(2#)

    ``c`` is ``response.created``, ``t`` an ``output_text.delta``, ``d``
    ``response.completed`` (the final chunk, ``3``) and ``x`` ``response.failed``; the digits
    are the chunks' indices, each event's ``sequence_number``. Every event gives a chunk
    (``x`` an empty one, then the error),
    empty when it adds nothing, so reorder sees no gap; a stream numbered from 1 gets an
    empty chunk at 0.

    Text comes from ``response.output_text.delta``, reasoning from
    ``response.reasoning_summary_text.delta`` and ``response.reasoning_text.delta`` (a thinking
    block per reasoning item, holding the item as its ``output_item.done`` gives it), the
    refusal from ``response.refusal.delta``, and each function call (keyed by its
    ``output_index``) from its ``response.output_item.added`` (``call_id`` and ``name``) and
    ``response.function_call_arguments.delta`` events. The response id goes to
    ``stats.response_id`` (``Response.id``). ``response.completed`` and
    ``response.incomplete`` are the final chunk, with their ``usage`` and as finish reason the
    status (``"completed"``) or ``incomplete_details.reason`` (such as
    ``"max_output_tokens"``). Other event types add nothing.

    Returns:
        An operator that takes an observable of events, each its JSON text (``str`` or
        ``bytes``: an SSE event's data, or one WebSocket message) or an ``SSEEvent``, and
        returns an observable of ``Chunk``s indexed by sequence number, the last one final.

    Raises:
        ResponseFailedError: (to the observer, ending the stream) a ``response.failed`` or
            ``error`` event, with the server's code and message, once every event numbered
            before it has been delivered (an ``error`` event without a number: at once).
        FrameError: (to the observer, ending the stream) an event that is not valid JSON or
            not the expected shape.
    """
    return Operator(ParseResponsesStage)
