"""parse_responses: OpenAI Responses stream events into ``Chunk``s numbered by their ``sequence_number``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from reactivex import abc

from ..core._errors import FrameError, ResponseFailedError, shown
from ..core._stage import Operator, Shared, Stage
from ..core._values import Chunk, ToolCallFragment
from ..protocol._sse import SSEEvent
from ._parse import Payload, _new_chunk
from ._parse_sse import _new_fragment, mapping, string
from ._parse_sse import reason as finish_reason

if TYPE_CHECKING:
    from ._fragment_path import FragmentPath

LIFECYCLE_EVENTS = frozenset({"response.created", "response.queued", "response.in_progress"})


class ParseResponsesStage(Stage[Payload | SSEEvent, Chunk]):
    def __init__(self, downstream: abc.ObserverBase[Chunk], shared: Shared) -> None:
        super().__init__(downstream, shared)
        self.events = 0
        # A failure the server reported (response.failed, error) waits until reorder has
        # delivered everything numbered before it, so that the partial is all of it.
        self.failure: ResponseFailedError | None = None
        self.fragment_path: FragmentPath | None = None  # responses_pipeline's, past the stages it fuses

    def on_next(self, item: Payload | SSEEvent) -> None:
        if self.stopped:
            return
        data = item.data if isinstance(item, SSEEvent) else item
        self.events += 1
        # str.isascii is O(1) in CPython: only non-ASCII text pays for encoding to count bytes
        self.shared.stats.bytes += (
            len(data.encode("utf-8", "surrogatepass")) if type(data) is str and not data.isascii() else len(data)
        )
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError as error:  # also raised for input that is neither str nor bytes
            self.fail(FrameError(data, f"invalid JSON ({error})", number=self.events, secrets=self.shared.secrets))
            return
        try:
            chunk = self.decode(event)
        except ResponseFailedError as error:  # an error event without a number: nothing to wait for
            self.fail(error)
            return
        except (ValueError, TypeError, LookupError, AttributeError) as error:
            self.fail(FrameError(data, str(error), number=self.events, secrets=self.shared.secrets))
            return
        self.deliver(chunk)

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
        # every field in Chunk's order, built by the C constructor: the deltas are most events
        if kind == "response.output_text.delta":
            return _new_chunk(
                Chunk,
                (number, string(event, "delta"), False, None, None, None, None, None, None, None, None, None, None),
            )
        if kind == "response.function_call_arguments.delta":
            fragment = _new_fragment(ToolCallFragment, (output_index(event), None, None, string(event, "delta"), False))
            return _new_chunk(
                Chunk, (number, "", False, None, None, None, None, None, None, None, (fragment,), None, None)
            )
        if kind == "response.reasoning_summary_text.delta" or kind == "response.reasoning_text.delta":
            return Chunk(number, "", reasoning=string(event, "delta"))
        if kind == "response.refusal.delta":
            return Chunk(number, "", refusal=string(event, "delta"))
        if kind == "response.output_item.added":
            item = event["item"]
            if item.get("type") == "function_call":
                arguments = item.get("arguments")
                if arguments is not None and type(arguments) is not str:
                    raise ValueError(f"field 'item.arguments' must be a string, not {shown(arguments)}")
                fragment = ToolCallFragment(
                    output_index(event), string(item, "call_id"), string(item, "name"), arguments or ""
                )
                return Chunk(number, "", tool_calls=(fragment,))
        elif kind in LIFECYCLE_EVENTS:
            self.identify(event)
            if kind == "response.created" and number == 1:
                # A stream numbered from 1 (the API reference's examples; the API itself counts
                # from 0): nothing will come at 0, so an empty chunk stands there.
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
            return Chunk(number, "", True, finish_reason=reason, usage=usage)
        elif (kind == "response.failed" or kind == "error") and self.failure is None:
            self.failure = self.failed(kind, event, number)
        # anything else (an item or part added or done, a text done, event types yet to come)
        # carries nothing new: an empty chunk keeps its number
        return Chunk(number, "")

    def failed(self, kind: str, event: dict[str, Any], number: int | None) -> ResponseFailedError:
        """The error a response.failed or error event reports, with the server's code and message."""
        if kind == "response.failed":
            details = self.identify(event).get("error") or {}
        else:  # the error event has code and message at the top; some servers nest them in 'error'
            details = event["error"] if type(event.get("error")) is dict else event
        code, message = details.get("code"), details.get("message")
        return ResponseFailedError(
            code if type(code) is str else None,
            message if type(message) is str else "no message",
            event=kind,
            sequence_number=number,
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
        self.shared.stats.chunks += 1
        if self.fragment_path is None or not self.fragment_path.take_text(chunk):
            self.emit(chunk)
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
    ``response.reasoning_summary_text.delta`` and ``response.reasoning_text.delta``, the
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
