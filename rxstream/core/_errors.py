"""Every failure rxstream reports is a ``StreamError``; each says what was wrong and what to do.

A stream that ends without its answer raises the error that ended it, typed (a 401 is an
``AuthenticationError``, a stall a ``StreamTimeoutError``), with ``partial`` set to the response
received so far (possibly empty): ``except rxstream.StreamError as error: error.partial`` catches
every stream that ended incomplete and keeps what came. ``partial`` is None on an error raised
outside a pipeline that ends in ``finalize`` (a store's, a bad argument's).

The hierarchy (tests/test_errors.py checks this drawing against the classes)::

    StreamError
      FrameError
      InvalidChunkError
      BufferOverflowError
      IncompleteStreamError
      ResponseFailedError
      InvalidJSONError
      TransportError
        APIStatusError
          RateLimitedError
          AuthenticationError
        UnexpectedContentTypeError
        InvalidEndpointError
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
        InvalidTurnError
      WriterFailedError
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from ._redaction import one_line

if TYPE_CHECKING:
    from ._redaction import Secrets
    from ._values import Response

QUOTE_LIMIT = 200
BODY_LIMIT = 64 * 1024  # of an error body kept on the error: enough for any provider's report, bounded
TimeoutKind = Literal["idle", "content", "deadline"]


def quote(raw: object, secrets: Secrets | None = None) -> str:
    """At most ``QUOTE_LIMIT`` characters of a frame, for an error message, with ``secrets`` redacted
    (before the cut, which could otherwise leave part of one). A value that is not text is shown
    as its ``repr`` would show it, built without recursion (``shown``)."""
    if isinstance(raw, (bytes, bytearray, memoryview)):
        text = bytes(raw).decode("utf-8", "replace")
    elif isinstance(raw, str):
        text = raw
    else:  # far enough past the cut that a secret straddling it is redacted whole
        text = shown(raw, 4 * QUOTE_LIMIT)
    if secrets is not None:
        text = secrets.redact(text)
    if len(text) <= QUOTE_LIMIT:
        return repr(text)
    if not isinstance(raw, (str, bytes, bytearray, memoryview)):
        return f"{text[:QUOTE_LIMIT]!r}..."  # shown stopped reading: the whole length is unknown
    return f"{text[:QUOTE_LIMIT]!r}... ({len(text)} characters in all)"


def shown(value: object, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters, for a message naming a bad value: built without
    recursion, and without reading past the limit, so that a value nested 1,000 deep or a huge one
    costs no more than a short one (``repr`` itself raises RecursionError on the first)."""
    pieces: list[str] = []
    size = 0
    stack: list[object] = [value]
    while stack and size < limit:
        item = stack.pop()
        if type(item) is _Text:
            piece = str(item)
        elif isinstance(item, (list, tuple)):
            opening, closing = ("[", "]") if isinstance(item, list) else ("(", ",)" if len(item) == 1 else ")")
            stack.append(_Text(closing))
            for position in range(len(item) - 1, -1, -1):
                stack.append(item[position])
                if position:
                    stack.append(_Text(", "))
            piece = opening
        elif isinstance(item, dict):
            stack.append(_Text("}"))
            entries = list(item.items())
            for position in range(len(entries) - 1, -1, -1):
                key, entry = entries[position]
                stack += [entry, _Text(": "), key]
                if position:
                    stack.append(_Text(", "))
            piece = "{"
        elif isinstance(item, int) and item.bit_length() > 1000:  # repr refuses ints past 4,300 digits
            piece = f"<an integer of {item.bit_length()} bits>"
        else:
            piece = repr(item)
        pieces.append(piece)
        size += len(piece)
    return "".join(pieces)[:limit]


class _Text(str):
    """Punctuation ``shown`` writes as it is, told apart from a string in the value."""


class StreamError(Exception):
    """Base of every error rxstream raises; ``partial`` is the response received before it, when a
    pipeline ending in ``finalize`` raised it (None otherwise)."""

    partial: Response | None = None


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
    """The source completed without the final chunk, or an error that is not rxstream's (a user's
    operator raising ``TypeError``) ended the stream: that error is the ``__cause__``. ``partial``
    holds everything received in order.
    """

    partial: Response

    def __init__(self, partial: Response, reason: str) -> None:
        self.partial = partial
        super().__init__(
            f"stream incomplete after {partial.chunks} chunks ({len(partial.text)} characters), "
            f"kept on this error's .partial; cause: {reason}"
        )


class ResponseFailedError(StreamError):
    """The server reported inside the stream that the response failed: an OpenAI Responses
    ``response.failed`` or ``error`` event, a chat stream's ``{"error": …}`` or ``finish_reason: "error"``,
    Anthropic's ``event: error``. Never retried: a new request is a new (paid) response.

    ``code``, ``error_type`` and ``server_message`` are the server's own (``code`` and ``error_type`` None
    where it gave none); ``sequence_number`` is the event's (None where it had none). ``partial`` holds
    what came before it.
    """

    def __init__(
        self,
        code: str | None,
        server_message: str,
        *,
        event: str,
        sequence_number: int | None,
        error_type: str | None = None,
        secrets: Secrets | None = None,
    ) -> None:
        self.code = code
        self.error_type = error_type
        self.server_message = server_message
        self.sequence_number = sequence_number
        where = "" if sequence_number is None else f" (sequence number {sequence_number})"
        message = (
            f"the server ended the response with {event}{where}: "
            f"{' '.join(filter(None, (error_type, code))) or 'no code'}: {quote(server_message, secrets)}. "
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


def excerpt(text: str) -> str:
    """Peer text for the middle of an error's line: one line, at most ``QUOTE_LIMIT`` characters."""
    text = one_line(text).strip()
    return text if len(text) <= QUOTE_LIMIT else f"{text[:QUOTE_LIMIT]}… ({len(text)} characters in all)"


class APIStatusError(TransportError):
    """The endpoint refused the stream with an HTTP status: ``status_code`` (None for a WebSocket close
    code), and what its body said, as the openai SDK's error of the same name has it: ``server_message``,
    ``error_type`` and ``error_code`` (each None where the body gave none; OpenAI's ``{"error": {…}}``,
    Anthropic's ``{"type": "error", "error": {…}}`` and plain text are read) and ``body``, its first
    ``BODY_LIMIT`` characters, redacted. ``attempts`` is how many tries were answered so.
    """

    def __init__(
        self,
        endpoint: str,
        status_code: int | None,
        *,
        server_message: str | None = None,
        error_type: str | None = None,
        error_code: str | None = None,
        body: str = "",
        attempts: int = 1,
    ) -> None:
        self.endpoint = endpoint
        self.status_code = status_code
        self.server_message = server_message
        self.error_type = error_type
        self.error_code = error_code
        self.body = body
        self.attempts = attempts
        super().__init__(self.describe())

    def words(self) -> str:
        """What the server said, for a message: ``"context_length_exceeded: This model's …"``."""
        said = (self.error_code or self.error_type, self.server_message and excerpt(self.server_message))
        return ": ".join(part for part in said if part)

    def said(self) -> str:
        """``words`` to follow the status: ``" context_length_exceeded: …"``, or ``": …"`` without a code."""
        words = self.words()
        return "" if not words else f" {words}" if self.error_code or self.error_type else f": {words}"

    def describe(self) -> str:
        tries = f" (on each of {self.attempts} tries)" if self.attempts > 1 else ""
        status = self.status_code or 0
        advice = (
            "the server failed or is overloaded: try again later" if status >= 500 else "check the URL and the request"
        )
        return f"{self.endpoint} answered HTTP {self.status_code}{self.said()}{tries}; {advice}."


class RateLimitedError(APIStatusError):
    """The endpoint answered 429 Too Many Requests on every try; ``retry_after`` is its last hint, if any."""

    def __init__(
        self,
        endpoint: str,
        attempts: int,
        retry_after: float | None = None,
        *,
        server_message: str | None = None,
        error_type: str | None = None,
        error_code: str | None = None,
        body: str = "",
    ) -> None:
        self.retry_after = retry_after
        super().__init__(
            endpoint,
            429,
            server_message=server_message,
            error_type=error_type,
            error_code=error_code,
            body=body,
            attempts=attempts,
        )

    def describe(self) -> str:
        words = self.words()
        said = f" ({words})" if words else ""
        return (
            f"{self.endpoint} answered 429 Too Many Requests {self.attempts} times{said}; "
            "wait before trying again, or lower the request rate."
        )


class AuthenticationError(APIStatusError):
    """The endpoint rejected the credentials: HTTP 401/403 (``status_code``), or close code 1008
    (``status_code`` None); ``detail`` says which."""

    def __init__(
        self,
        endpoint: str,
        detail: str,
        *,
        status_code: int | None = None,
        server_message: str | None = None,
        error_type: str | None = None,
        error_code: str | None = None,
        body: str = "",
    ) -> None:
        self.detail = detail
        super().__init__(
            endpoint,
            status_code,
            server_message=server_message,
            error_type=error_type,
            error_code=error_code,
            body=body,
        )

    def describe(self) -> str:
        return f"{self.endpoint} rejected the credentials ({self.detail}{self.said()}); check the token."


class UnexpectedContentTypeError(TransportError):
    """The endpoint answered 200 with a body that is not an event stream (``content_type``): a JSON
    error, a proxy's or captive portal's HTML page. ``body`` is its first ``BODY_LIMIT`` characters,
    redacted; ``server_message`` the error message in it, if it is a JSON error. Never retried."""

    def __init__(self, endpoint: str, content_type: str, body: str, *, server_message: str | None = None) -> None:
        self.endpoint = endpoint
        self.content_type = content_type
        self.body = body
        self.server_message = server_message
        shown = server_message or body
        said = f": {excerpt(shown)}" if shown.strip() else ""
        super().__init__(
            f"{endpoint} answered 200 with Content-Type {content_type or 'none'!r}, not text/event-stream{said}; "
            "not retried: the URL is not a streaming endpoint, a proxy answered for it, or the server reported an error."
        )


class InvalidEndpointError(TransportError, ValueError):
    """A URL the source cannot use (no scheme, or the wrong one for its transport); raised at once,
    never retried, with a hint."""

    def __init__(self, url: str, problem: str, hint: str) -> None:
        self.url = url
        super().__init__(f"{url!r} {problem}; {hint}.")


class ConnectionLostError(TransportError):
    """The connection dropped (close code 1006 or a reset) and reconnecting did not recover it."""

    def __init__(self, endpoint: str, detail: str, attempts: int) -> None:
        self.endpoint = endpoint
        self.attempts = attempts
        super().__init__(f"connection to {endpoint} lost after {attempts} attempts ({detail}).")


class StreamTimeoutError(TransportError):
    """A timer ended the stream; ``kind`` says which, ``timeout`` its seconds:

    - ``"idle"`` (``stream_timeout``): no bytes at all, not even a keep-alive, while the consumer was ready;
    - ``"content"`` (``content_timeout``): no content (keep-alives only) while the consumer was ready;
      ``queued`` when no content had come at all (the server kept the request waiting);
    - ``"deadline"``: the stream did not finish within ``timeout`` seconds of its start, retries included.
    """

    def __init__(self, endpoint: str, timeout: float, *, kind: TimeoutKind = "idle", queued: bool = False) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.kind = kind
        self.queued = queued
        if kind == "deadline":
            message = f"{endpoint} did not finish the stream within the deadline of {timeout:g} s; raise deadline if it may take longer."
        elif kind == "content" and queued:
            message = (
                f"{endpoint} queued: only keep-alives for {timeout:g} s, no content; the server kept the request "
                "waiting. Raise content_timeout (None: no bound) to wait longer, or try again later."
            )
        elif kind == "content":
            message = (
                f"{endpoint} sent only keep-alives for {timeout:g} s after the answer began; "
                "raise content_timeout if the endpoint is known to pause that long."
            )
        else:
            message = (
                f"{endpoint} sent nothing, not even a keep-alive, for {timeout:g} s; the connection is stalled. "
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
    """The database could not be opened or written (a missing directory, no permission, a full disk, a server down).

    ``path`` is the file, or the server as ``postgresql://user@host:port/dbname`` (never the password).
    """

    def __init__(self, path: str, detail: str, *, remedy: str = "check the path and its permissions") -> None:
        self.path = path
        super().__init__(f"cannot use the session store at {path}: {detail}; {remedy}.")


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


class InvalidTurnError(StoreError, ValueError):
    """A response no store can keep as it is: a string in it is not valid Unicode (a lone surrogate)."""

    def __init__(self, response: Response, problem: str) -> None:
        self.response = response
        super().__init__(
            f"the response ({len(response.text)} characters) cannot be saved: {problem}. "
            "Its strings must be valid Unicode text: replace or drop the lone surrogates, then save it."
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
