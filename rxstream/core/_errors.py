"""Every failure rxstream reports is a ``StreamError``; each says what was wrong and what to do.

The hierarchy (tests/test_errors.py checks this drawing against the classes)::

    StreamError
      FrameError
      InvalidChunkError
      BufferOverflowError
      IncompleteStreamError
      ResponseFailedError
      InvalidJSONError
      TransportError
        RateLimitedError
        AuthenticationError
        ConnectionLostError
        StreamTimeoutError
        FrameTooLargeError
        PublishFailedError
        WriterLostError
      StoreError
        InvalidSessionError
        StoreUnavailableError
        CorruptStoreError
        StoreClosedError
        TurnNotSavedError
      WriterFailedError
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._redaction import Secrets
    from ._values import Response

QUOTE_LIMIT = 200


def quote(raw: object, secrets: Secrets | None = None) -> str:
    """At most ``QUOTE_LIMIT`` characters of a frame, for an error message, with ``secrets`` redacted
    (before the cut, which could otherwise leave part of one)."""
    if isinstance(raw, (bytes, bytearray, memoryview)):
        text = bytes(raw).decode("utf-8", "replace")
    else:
        text = raw if isinstance(raw, str) else repr(raw)
    if secrets is not None:
        text = secrets.redact(text)
    if len(text) <= QUOTE_LIMIT:
        return repr(text)
    return f"{text[:QUOTE_LIMIT]!r}... ({len(text)} characters in all)"


class StreamError(Exception):
    """Base of every error rxstream raises."""


class FrameError(StreamError):
    """A frame that is not a valid protocol message; ``frame`` holds it, ``reason`` says why.

    A frame is peer text: the message shows none of ``secrets`` (the tokens the source sent),
    in the frame or in the reason; ``frame`` keeps it as received.
    """

    def __init__(
        self, frame: object, reason: str, *, number: int | None = None, secrets: Secrets | None = None
    ) -> None:
        self.frame = frame
        self.reason = reason
        self.number = number
        where = f"frame {number}" if number is not None else "a frame"
        message = (
            f"{where}: {reason}; the frame was {quote(frame, secrets)}. "
            "The sender does not speak the chunk protocol: check the endpoint."
        )
        super().__init__(message if secrets is None else secrets.redact(message))


class InvalidChunkError(StreamError):
    """Protocol error 40002: chunk indices that are not contiguous. Request the stream again."""

    code = 40002

    def __init__(self, expected: int, received: int | None, reason: str) -> None:
        self.expected = expected
        self.received = received
        got = "the stream ended" if received is None else f"index {received} came"
        super().__init__(
            f"40002 Invalid Chunk: expected index {expected} but {got} ({reason}); "
            "end this stream and request it again."
        )


class BufferOverflowError(StreamError):
    """``backpressure_buffer(overflow="error")`` received more than ``max_pending`` unconsumed chunks."""

    def __init__(self, max_pending: int, index: int) -> None:
        self.max_pending = max_pending
        self.index = index
        super().__init__(
            f"buffer overflow: chunk {index} arrived with {max_pending} chunks already waiting "
            "for a slow consumer; raise max_pending or choose another overflow strategy."
        )


class IncompleteStreamError(StreamError):
    """The stream ended before its final chunk; ``partial`` holds everything received in order.

    The error that cut the stream short, if any, is the ``__cause__``.
    """

    def __init__(self, partial: Response, reason: str) -> None:
        self.partial = partial
        super().__init__(
            f"stream incomplete after {partial.chunks} chunks ({len(partial.text)} characters), "
            f"kept on this error's .partial; cause: {reason}"
        )


class ResponseFailedError(StreamError):
    """The server said the response failed: an OpenAI Responses ``response.failed`` or ``error`` event.

    ``code`` and ``server_message`` are the server's own (``code`` None where it gave none);
    ``sequence_number`` is the event's (None where it had none). In a pipeline it is the ``__cause__`` of the
    ``IncompleteStreamError`` holding the partial response.
    """

    def __init__(
        self,
        code: str | None,
        server_message: str,
        *,
        event: str,
        sequence_number: int | None,
        secrets: Secrets | None = None,
    ) -> None:
        self.code = code
        self.server_message = server_message
        self.sequence_number = sequence_number
        where = "" if sequence_number is None else f" (sequence number {sequence_number})"
        message = (
            f"the server ended the response with {event}{where}: "
            f"{code or 'no code'}: {quote(server_message, secrets)}. "
            "What came before is kept; sending the request again starts a new (paid) response, "
            "so check the code first (a rate limit or server error may pass, an invalid request will not)."
        )
        super().__init__(message if secrets is None else secrets.redact(message))


class InvalidJSONError(StreamError):
    """Text that is not the JSON asked for: a tool call's arguments cut short (``max_tokens``,
    a lost stream) or malformed. ``text`` holds it, ``position`` is the character where it goes
    wrong (None when the JSON is valid but not an object), ``reason`` says what is wrong."""

    def __init__(self, what: str, text: str, reason: str, position: int | None = None) -> None:
        self.text = text
        self.reason = reason
        self.position = position
        where = f" at character {position} of {len(text)}" if position is not None else ""
        super().__init__(
            f"{what}: not the JSON expected{where} ({reason}): {quote(text)}. "
            "If the stream was cut short, its best-effort parse is ToolCall.partial() or rxstream.partial_json()."
        )


class TransportError(StreamError):
    """The connection to the endpoint failed; the message names the endpoint (never the token)."""


class RateLimitedError(TransportError):
    """The endpoint answered 429 Too Many Requests on every try; ``retry_after`` is its last hint, if any."""

    def __init__(self, endpoint: str, attempts: int, retry_after: float | None = None) -> None:
        self.endpoint = endpoint
        self.attempts = attempts
        self.retry_after = retry_after
        super().__init__(
            f"{endpoint} answered 429 Too Many Requests {attempts} times; "
            "wait before trying again, or lower the request rate."
        )


class AuthenticationError(TransportError):
    """The endpoint rejected the credentials (HTTP 401/403, or close code 1008)."""

    def __init__(self, endpoint: str, detail: str) -> None:
        self.endpoint = endpoint
        super().__init__(f"{endpoint} rejected the credentials ({detail}); check the token.")


class ConnectionLostError(TransportError):
    """The connection dropped (close code 1006 or a reset) and reconnecting did not recover it."""

    def __init__(self, endpoint: str, detail: str, attempts: int) -> None:
        self.endpoint = endpoint
        self.attempts = attempts
        super().__init__(f"connection to {endpoint} lost after {attempts} attempts ({detail}).")


class StreamTimeoutError(TransportError):
    """No frame came for ``timeout`` seconds while the consumer was ready; or, with ``deadline``,
    the stream did not finish within ``timeout`` seconds of its start, retries included."""

    def __init__(self, endpoint: str, timeout: float, *, deadline: bool = False) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.deadline = deadline
        if deadline:
            message = f"{endpoint} did not finish the stream within the deadline of {timeout:g} s; raise deadline if it may take longer."
        else:
            message = (
                f"{endpoint} sent no frame for {timeout:g} s; the stream is stalled. "
                "Raise stream_timeout if the endpoint is known to pause that long."
            )
        super().__init__(message)


class FrameTooLargeError(TransportError):
    """A frame above the ``max_size`` the client accepts."""

    def __init__(self, endpoint: str, max_size: int) -> None:
        self.endpoint = endpoint
        self.max_size = max_size
        super().__init__(
            f"{endpoint} sent a frame larger than max_size={max_size} bytes; the stream was ended "
            "to keep memory bounded. Raise max_size if such frames are expected."
        )


class StoreError(StreamError):
    """A session store could not do what was asked; what it already held is untouched."""


class InvalidSessionError(StoreError):
    """A session id that is empty, not a string, or not valid Unicode (a lone surrogate)."""

    def __init__(self, session_id: object, problem: str) -> None:
        self.session_id = session_id
        super().__init__(f"session id {problem}, not {session_id!r:.60}; name the conversation.")


class StoreUnavailableError(StoreError):
    """The database could not be opened or written (a missing directory, no permission, a full disk)."""

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        super().__init__(f"cannot use the session store at {path}: {detail}; check the path and its permissions.")


class CorruptStoreError(StoreError):
    """The file is not a usable session database. It is left as it is, for recovery."""

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        super().__init__(
            f"{path} is not a usable session database ({detail}); it was not modified. "
            "Move it aside to start a new one, or restore it from a backup."
        )


class StoreClosedError(StoreError):
    """A store used after ``close()`` (or after its ``async with`` block ended)."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            f"the session store at {path} is closed; use it inside its async with block, or open a new one."
        )


class TurnNotSavedError(StoreError):
    """``persist`` could not save a turn; ``response`` holds it, so nothing received is lost. The store's error is the ``__cause__``."""

    def __init__(self, session_id: str, response: Response, reason: str) -> None:
        self.session_id = session_id
        self.response = response
        state = "turn" if response.complete else "partial turn"
        super().__init__(
            f"the {state} of session {session_id!r} ({len(response.text)} characters) was not saved: {reason}. "
            "It is kept on this error's .response: save it again once the store works."
        )


class PublishFailedError(TransportError):
    """``publish`` could not append to its stream (Redis unreachable, restarted without the stream, out
    of memory); readers then time out with ``WriterLostError``. The sink's error is the ``__cause__``."""

    def __init__(self, stream: str, published: int, unsent: int, reason: str) -> None:
        self.stream = stream
        self.published = published
        self.unsent = unsent
        super().__init__(
            f"publishing to {stream} failed after {published} entries ({unsent} not appended): {reason}. "
            "The entries before are readable; readers of this stream end with WriterLostError."
        )


class WriterLostError(TransportError):
    """A stream's reader saw no new entry and no terminal entry for ``timeout`` seconds: its writer
    died or stopped publishing. Everything published before was delivered; ``last_id`` is the last
    entry read ("0" before any), to resume after if the writer comes back."""

    def __init__(self, stream: str, timeout: float, last_id: str) -> None:
        self.stream = stream
        self.timeout = timeout
        self.last_id = last_id
        super().__init__(
            f"{stream} got no new entry and no terminal entry for {timeout:g} s after entry {last_id}: "
            "its writer is gone. Raise writer_timeout if a writer may pause that long."
        )


class WriterFailedError(StreamError):
    """The stream's writer recorded that its stream ended with an error: ``error_type`` is the
    writer's error class (``ConnectionLostError``, ``IncompleteStreamError``, ...), ``detail`` its
    message, and ``characters`` the length of the partial text the writer had, all of which was
    published before this error."""

    def __init__(self, stream: str, error_type: str, detail: str, characters: int) -> None:
        self.stream = stream
        self.error_type = error_type
        self.detail = detail
        self.characters = characters
        super().__init__(
            f"the writer of {stream} ended it with {error_type} after {characters} characters "
            f"(all delivered before this error): {quote(detail)}"
        )
