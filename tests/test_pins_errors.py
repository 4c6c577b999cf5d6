"""The errors' messages, pinned where the in-memory suite left them loose (issue 23): "the messages
quote at most 200 characters of it, on one line" (README, "What each failure raises"), a quote is
"at most ``QUOTE_LIMIT`` characters of a frame ... A value that is not text is shown as its ``repr``
would show it" (``quote``), and ``shown`` is "``repr(value)`` cut to ``limit`` characters"."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import rxstream
from rxstream import operators as rxo
from rxstream.core._errors import QUOTE_LIMIT, quote, shown

from .support import run

# Values as a bad frame or field carries them: JSON's, and the tuples and non-string keys Python adds.
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(st.text(max_size=4) | st.integers(), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(values, st.integers(0, 120))
def test_shown_is_the_repr_cut_to_the_limit(value: Any, limit: int) -> None:
    assert shown(value, limit) == repr(value)[:limit]


def test_tuples_of_any_length_are_shown_as_repr_shows_them() -> None:
    value = ((), (1,), (1, 2), [(None,)], {(): (3,)})
    assert shown(value, 100) == repr(value)


class Watched:
    """A value that notes when its repr is read."""

    def __init__(self, name: str, read: list[str]) -> None:
        self.name, self.read = name, read

    def __repr__(self) -> str:
        self.read.append(self.name)
        return self.name


def test_shown_reads_nothing_past_the_limit() -> None:
    read: list[str] = []
    assert shown([Watched("a" * 50, read), Watched("b", read)], 40) == "[" + "a" * 39
    assert read == ["a" * 50]


def test_shown_cuts_to_40_characters_unless_told() -> None:
    assert shown(list(range(100))) == repr(list(range(100)))[:40]


def test_a_value_too_deep_or_too_big_for_repr_is_shown_cut_all_the_same() -> None:
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    assert shown(deep) == "[" * 40
    huge = 10**5000  # repr refuses an int past 4,300 digits
    assert len(shown(huge)) <= 40 and len(shown([huge, 1])) <= 40


def test_a_frame_within_the_limit_is_quoted_whole() -> None:
    text = "x" * QUOTE_LIMIT
    assert quote(text) == repr(text) and quote(text.encode()) == repr(text)


def test_a_longer_frame_is_cut_at_200_characters_and_says_its_length() -> None:
    assert QUOTE_LIMIT == 200
    text = "".join(chr(ord("a") + i % 26) for i in range(1000))
    for frame in (text, text.encode()):
        assert quote(frame) == f"{text[:200]!r}... (1000 characters in all)"


def test_a_long_value_that_is_not_text_is_cut_without_a_length() -> None:
    # shown stops reading at the cut, so the whole length is not known and not claimed
    value = list(range(1000))
    assert quote(value) == f"{repr(value)[:200]!r}..."


def test_a_frame_that_is_not_utf8_is_quoted_with_replacement_characters() -> None:
    error = run(rxstream.from_frames([b'{"chunk": \xff}']).pipe(rxo.parse())).error
    assert isinstance(error, rxstream.FrameError) and error.frame == b'{"chunk": \xff}'
    assert "'{\"chunk\": \ufffd}'" in str(error)


# Each message "says what was wrong and what to do" (core/_errors.py): the fields it was given,
# the README's words for the case, and the remedy it ends with.
MESSAGES: list[tuple[rxstream.StreamError, list[str]]] = [
    (
        rxstream.FrameError("{", "invalid JSON", number=7),
        ["frame 7: invalid JSON; the frame was '{'.", "check the endpoint."],
    ),
    (rxstream.FrameError("{", "invalid JSON"), ["a frame: invalid JSON; the frame was '{'."]),
    (
        rxstream.InvalidChunkError(3, 5, "a gap"),
        ["40002 Invalid Chunk: expected index 3 but index 5 came (a gap)", "request it again."],
    ),
    (rxstream.InvalidChunkError(3, None, "no final chunk"), ["expected index 3 but the stream ended (no final chunk)"]),
    (
        rxstream.ResponseFailedError("server_error", "Overloaded", event="error", sequence_number=None),
        ["the server ended the response with error: server_error: 'Overloaded'. What came before is kept"],
    ),
    (
        rxstream.ResponseFailedError(None, "Overloaded", event="response.failed", sequence_number=7),
        ["with response.failed (sequence number 7): no code: 'Overloaded'."],
    ),
    (
        rxstream.InvalidJSONError("the arguments", "{", "EOF", 1),
        ["the arguments: not the JSON expected at character 1 of 1 (EOF): '{'."],
    ),
    (
        rxstream.InvalidJSONError("the arguments", "[]", "a JSON list"),
        ["the arguments: not the JSON expected (a JSON list): '[]'."],
    ),
    (rxstream.APIStatusError("https://h/v1", 404), ["https://h/v1 answered HTTP 404; check the URL and the request."]),
    (
        rxstream.APIStatusError("https://h/v1", 500, server_message="boom", attempts=2),
        [
            "https://h/v1 answered HTTP 500: boom (on each of 2 tries); the server failed or is overloaded: try again later."
        ],
    ),
    (rxstream.APIStatusError("wss://h/v1", None), ["wss://h/v1 answered HTTP None; check the URL and the request."]),
    (
        rxstream.APIStatusError("https://h/v1", 499, error_code="c"),
        ["answered HTTP 499 c; check the URL and the request."],
    ),
    (
        rxstream.RateLimitedError("https://h/v1", 3),
        ["https://h/v1 answered 429 Too Many Requests 3 times; wait before trying again"],
    ),
    (
        rxstream.RateLimitedError("https://h/v1", 2, error_code="rate_limit_exceeded", server_message="slow down"),
        ["answered 429 Too Many Requests 2 times (rate_limit_exceeded: slow down); wait"],
    ),
    (
        rxstream.AuthenticationError("wss://h/v1", "close code 1008"),
        ["wss://h/v1 rejected the credentials (close code 1008); check the token."],
    ),
    (
        rxstream.UnexpectedContentTypeError("https://h/v1", "text/html", ""),
        ["https://h/v1 answered 200 with Content-Type 'text/html', not text/event-stream; not retried"],
    ),
    (
        rxstream.UnexpectedContentTypeError("https://h/v1", "", "<html>"),
        ["with Content-Type 'none', not text/event-stream: <html>; not retried"],
    ),
    (
        rxstream.StreamTimeoutError("https://h/v1", 30),
        ["https://h/v1 sent nothing, not even a keep-alive, for 30 s;", "Raise stream_timeout"],
    ),
    (
        rxstream.StreamTimeoutError("https://h/v1", 600, kind="content", queued=True),
        ["https://h/v1 queued: only keep-alives for 600 s, no content;", "Raise content_timeout"],
    ),
    (
        rxstream.StreamTimeoutError("https://h/v1", 600, kind="content"),
        ["https://h/v1 sent only keep-alives for 600 s after the answer began;", "raise content_timeout"],
    ),
    (
        rxstream.StreamTimeoutError("https://h/v1", 90, kind="deadline"),
        ["https://h/v1 did not finish the stream within the deadline of 90 s; raise deadline"],
    ),
    (
        rxstream.StoreUnavailableError("/d/s.db", "no such directory"),
        ["cannot use the session store at /d/s.db: no such directory; check the path and its permissions."],
    ),
    (
        rxstream.TurnNotSavedError("s", rxstream.Response("abc", False, 1), "disk full"),
        [
            "the partial turn of session 's' (3 characters) was not saved: disk full.",
            "save it again once the store works.",
        ],
    ),
    (
        rxstream.TurnNotSavedError("s", rxstream.Response("abc", True, 1), "disk full"),
        ["the turn of session 's' (3 characters)"],
    ),
    (
        rxstream.IncompleteStreamError(rxstream.Response("abc", False, 2), "no final chunk"),
        ["stream incomplete after 2 chunks (3 characters), kept on this error's .partial; cause: no final chunk"],
    ),
    (rxstream.BufferOverflowError(5, 9), ["chunk 9 arrived with 5 chunks already waiting", "raise max_pending"]),
    (
        rxstream.InvalidEndpointError("h/v1", "has no scheme", "write it in full"),
        ["'h/v1' has no scheme; write it in full."],
    ),
    (
        rxstream.ConnectionLostError("wss://h/v1", "reset", 4),
        ["connection to wss://h/v1 lost after 4 attempts (reset)."],
    ),
    (
        rxstream.FrameTooLargeError("wss://h/v1", 1024),
        ["wss://h/v1 sent a frame larger than max_size=1024 bytes", "Raise max_size"],
    ),
    (
        rxstream.InvalidSessionError("", "must be a non-empty string"),
        ["session id must be a non-empty string, not ''; name the conversation."],
    ),
    (
        rxstream.CorruptStoreError("/d/s.db", "file is not a database"),
        ["/d/s.db is not a usable session database (file is not a database); it was not modified."],
    ),
    (
        rxstream.StoreClosedError("/d/s.db"),
        ["the session store at /d/s.db is closed; use it inside its async with block"],
    ),
    (
        rxstream.InvalidTurnError(rxstream.Response("abc", True, 1), "a lone surrogate"),
        ["the response (3 characters) cannot be saved: a lone surrogate.", "replace or drop the lone surrogates"],
    ),
    (
        rxstream.PublishFailedError("answers", 3, 2, "connection refused"),
        ["publishing to answers failed after 3 entries (2 not appended): connection refused.", "WriterLostError"],
    ),
    (
        rxstream.WriterLostError("answers", 5, "0"),
        ["answers got no new entry and no terminal entry for 5 s after entry 0: its writer is gone."],
    ),
    (
        rxstream.WriterFailedError("answers", "ConnectionLostError", "reset", 12),
        [
            "the writer of answers ended it with ConnectionLostError after 12 characters (all delivered before this error): 'reset'"
        ],
    ),
]


@pytest.mark.parametrize(
    ("error", "says"), MESSAGES, ids=lambda value: type(value).__name__ if isinstance(value, Exception) else ""
)
def test_each_message_says_what_was_wrong_and_what_to_do(error: rxstream.StreamError, says: list[str]) -> None:
    for words in says:
        assert words in str(error)


def test_an_error_body_is_quoted_whole_up_to_200_characters_on_one_line() -> None:
    said = "x" * 200
    assert f"HTTP 400: {said}; check" in str(rxstream.APIStatusError("https://h/v1", 400, server_message=said))
    longer = rxstream.APIStatusError("https://h/v1", 400, server_message="two\nlines" + "y" * 200)
    assert "HTTP 400: two lines" + "y" * 191 + "… (209 characters in all); check" in str(longer)


def test_the_fields_given_are_kept_and_the_defaults_are_none_of_a_servers() -> None:
    refused = rxstream.APIStatusError("https://h/v1", 400)
    assert (refused.body, refused.attempts, refused.server_message, refused.error_type, refused.error_code) == (
        "",
        1,
        None,
        None,
        None,
    )
    limited = rxstream.RateLimitedError("https://h/v1", 4, 2.5)
    assert (limited.status_code, limited.attempts, limited.retry_after, limited.body) == (429, 4, 2.5, "")
    rejected = rxstream.AuthenticationError("https://h/v1", "HTTP 401", status_code=401)
    assert (rejected.status_code, rejected.detail, rejected.body) == (401, "HTTP 401", "")
    stalled = rxstream.StreamTimeoutError("https://h/v1", 30)
    assert (stalled.kind, stalled.timeout, stalled.queued) == ("idle", 30, False)
