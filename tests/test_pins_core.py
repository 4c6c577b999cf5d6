"""The core's values, pinned where the in-memory suite left them loose (issue 23, items 9 and 13):
the transcript's parts and tool calls, partial JSON, the streaming view of a delta, and the
redaction of secrets from logs. Each test pins a sentence of the README or of a docstring."""

from __future__ import annotations

import contextvars
import logging
from typing import Any

import pytest
import reactivex
from hypothesis import given
from hypothesis import strategies as st

import rxstream
from rxstream import operators as rxo
from rxstream.core._redaction import REDACTED, RedactingLogger, Secrets, one_line, redact_http_logs

from .support import run

# --- The transcript: "Text comes from data followed by text; an image_url becomes an image part
# after it, reasoning a reasoning part before it" (accumulate); parts are "a run of the response in
# index order: text, reasoning, or one image by URL" (Part).


def chunk(index: int, data: str = "", **fields: Any) -> rxstream.Chunk:
    return rxstream.Chunk(index, data, **fields)


def test_reasoning_parts_hold_their_own_text_in_order() -> None:
    transcript = rxstream.Transcript()
    for index, fields in enumerate(
        [
            {"reasoning": "think "},
            {"reasoning": "more", "data": "A"},
            {"data": "B", "image_url": "http://i/1"},
            {"reasoning": "again"},
            {"data": "C"},
        ]
    ):
        transcript.add(chunk(index, **fields), fields.get("data", ""))
    assert transcript.parts == (
        rxstream.Part("reasoning", "think more"),
        rxstream.Part("text", "AB"),
        rxstream.Part("image", "http://i/1"),
        rxstream.Part("reasoning", "again"),
        rxstream.Part("text", "C"),
    )
    assert transcript.reasoning == "think moreagain" and transcript.text == "ABC" and transcript.chunks == 5


def test_text_after_the_last_image_is_a_part_of_its_own() -> None:
    transcript = rxstream.Transcript()
    transcript.add(chunk(0, image_url="http://i/1"), "")
    transcript.append("after")
    assert transcript.parts == (rxstream.Part("image", "http://i/1"), rxstream.Part("text", "after"))


def test_a_fragment_repeating_the_calls_id_or_name_does_not_double_it() -> None:
    # README: "one with a name starts a call, each arguments is what that call's arguments grew by".
    transcript = rxstream.Transcript()
    fragments = [
        rxstream.ToolCallFragment(0, "call_1", "get_weather", '{"city"'),
        rxstream.ToolCallFragment(0, "call_1", "get_weather", ': "Paris"'),
        rxstream.ToolCallFragment(1, None, "lookup", "{}"),
        rxstream.ToolCallFragment(0, None, None, "}"),
        rxstream.ToolCallFragment(1, "call_2", None, ""),  # an id that comes after the name
        rxstream.ToolCallFragment(2, None, "no_id", "{"),  # a call that never gets an id (or a name) keeps ""
        rxstream.ToolCallFragment(2, None, "no_id", "}"),
        rxstream.ToolCallFragment(3, "call_4", None, "{"),
        rxstream.ToolCallFragment(3, "call_4", None, "}"),
    ]
    for index, fragment in enumerate(fragments):
        transcript.add(chunk(index, tool_calls=(fragment,)), "")
    assert transcript.tool_calls == (
        rxstream.ToolCall(0, "call_1", "get_weather", '{"city": "Paris"}'),
        rxstream.ToolCall(1, "call_2", "lookup", "{}"),
        rxstream.ToolCall(2, "", "no_id", "{}"),
        rxstream.ToolCall(3, "call_4", "", "{}"),
    )


Step = tuple[str, Any]
steps = st.lists(
    st.one_of(
        st.tuples(st.just("plain"), st.integers(0, 700)),  # a run of plain chunks, past the rope's blocks
        st.tuples(st.just("text"), st.text(max_size=3)),
        st.tuples(st.just("reasoning"), st.text(min_size=1, max_size=3)),
        st.tuples(st.just("image"), st.text(min_size=1, max_size=3)),
        st.tuples(st.just("both"), st.tuples(st.text(min_size=1, max_size=3), st.text(max_size=3))),
    ),
    max_size=12,
)


def expected_parts(script: list[Step]) -> list[tuple[str, str]]:
    """The parts as the docstrings describe them: runs of text, reasoning before a chunk's text, an image after it."""
    parts: list[tuple[str, str]] = []

    def add(kind: str, value: str) -> None:
        if kind != "image" and parts and parts[-1][0] == kind:
            parts[-1] = (kind, parts[-1][1] + value)
        elif value or kind == "image":
            parts.append((kind, value))

    for kind, value in script:
        if kind == "plain":
            add("text", "".join(f"<{n}>" for n in range(value)))
        elif kind == "both":
            add("reasoning", value[0])
            add("text", value[1])
        else:
            add(kind, value)
    return parts


@given(steps)
def test_parts_follow_the_chunks_whatever_their_number(script: list[Step]) -> None:
    transcript = rxstream.Transcript()
    index = 0
    for kind, value in script:
        if kind == "plain":
            texts = [f"<{n}>" for n in range(value)]
            transcript.extend(texts[: value // 2])  # the fast path's runs, then one by one
            for text in texts[value // 2 :]:
                transcript.append(text)
            index += value
            continue
        fields = (
            {"reasoning": value[0], "data": value[1]}
            if kind == "both"
            else {"data": value}
            if kind == "text"
            else {kind if kind == "reasoning" else "image_url": value}
        )
        transcript.add(chunk(index, **fields), fields.get("data", ""))
        index += 1
    assert [tuple(part) for part in transcript.parts] == expected_parts(script)
    assert transcript.chunks == index and len(transcript) == len(transcript.text)


# --- Partial JSON. README: "call.partial() (or rxstream.partial_json(text) for any JSON) is the
# best-effort parse of what has arrived, by jiter's partial mode: what is unfinished is left out,
# or kept with trailing_strings=True."


def test_partial_json_leaves_out_what_is_unfinished() -> None:
    assert rxstream.partial_json('{"a": [1, 2], "b": {"c": tr') == {"a": [1, 2], "b": {}}
    assert rxstream.partial_json('{"city": "Paris", "note": "unfini') == {"city": "Paris"}
    assert rxstream.partial_json('{"city": "Paris", "note": "unfini', trailing_strings=True) == {
        "city": "Paris",
        "note": "unfini",
    }
    assert rxstream.partial_json(b'[1, "x') == [1] and rxstream.partial_json("  \n") is None
    assert rxstream.partial_json("42") == 42


def test_partial_json_of_what_cannot_begin_json_is_an_error() -> None:
    with pytest.raises(rxstream.InvalidJSONError, match="partial JSON") as raised:
        rxstream.partial_json("{oops")
    assert raised.value.text == "{oops"
    with pytest.raises(rxstream.InvalidJSONError) as raised:
        rxstream.partial_json(b'{"a": \xff')  # not UTF-8: still the error partial_json documents
    assert raised.value.text == '{"a": \ufffd'


def test_a_tool_calls_partial_arguments() -> None:
    cut = rxstream.ToolCall(0, "call_1", "get_weather", '{"city": "Paris", "note": "unfini')
    assert cut.partial() == {"city": "Paris"}
    assert cut.partial(trailing_strings=True) == {"city": "Paris", "note": "unfini"}
    assert rxstream.ToolCall(0, "call_1", "get_weather", "").partial() == {}  # "{} before any"
    with pytest.raises(rxstream.InvalidJSONError, match="tool call 0"):
        rxstream.ToolCall(0, "call_1", "get_weather", "[1, 2").partial()


# --- The streaming view. README: "Delta.tool_calls holds the ToolCallFragments the chunk carried
# ...; Delta.refusal is what the refusal grew by".


def test_a_deltas_tool_calls_and_refusal() -> None:
    fragment = rxstream.ToolCallFragment(0, "call_1", "lookup", '{"q"')
    chunks = [chunk(0, "a"), chunk(1, tool_calls=(fragment,)), chunk(2, refusal="I can't"), chunk(3, refusal=" help")]
    outcome = run(reactivex.from_iterable(chunks).pipe(rxo.accumulate()))
    deltas = outcome.items
    assert [delta.tool_calls for delta in deltas] == [(), (fragment,), (), ()]
    assert [delta.refusal for delta in deltas] == ["", "", "I can't", " help"]
    assert deltas[-1].transcript.refusal == "I can't help"
    assert repr(deltas[1]).startswith("Delta(text=") and "chunk=1" in repr(deltas[1])  # a bounded repr, not None


# --- Redaction. "Nothing rxstream reports may show them": errors and library logs.


def test_a_token_that_contains_another_is_redacted_whole() -> None:
    secrets = Secrets()
    secrets.add("abc")
    secrets.add("abcdef")  # longest first
    assert secrets.redact("x abcdef x abc") == f"x {REDACTED} x {REDACTED}"


def test_a_token_of_four_characters_is_redacted_even_inside_a_word() -> None:
    # SHORT: "A secret shorter than this is matched only as a whole word" (4): one of 4 is matched anywhere
    secrets = Secrets()
    secrets.add("k3y9")
    assert secrets.redact("xk3y9y k3y9") == f"x{REDACTED}y {REDACTED}"
    assert secrets.revealed_by(OSError("refused xk3y9y"))


def test_a_token_as_a_url_carries_it_is_redacted() -> None:
    secrets = Secrets()
    secrets.add("a b/c")
    assert secrets.redact("Location: /?t=a%20b%2Fc") == f"Location: /?t={REDACTED}"


def test_no_token_redacts_nothing() -> None:
    secrets = Secrets()
    secrets.add("")
    assert secrets.redact("text") == "text" and secrets.peer_text("a\nb\x1b[31m") == "a b [31m"


def test_an_error_whose_chain_shows_a_secret_is_revealing() -> None:
    # Secrets.revealed_by: "Whether error's traceback, with its whole chain, would show a secret."
    secrets = Secrets()
    secrets.add("sk-789")
    try:
        try:
            raise OSError("handshake with token sk-789 refused")
        except OSError as cause:
            raise rxstream.TransportError("connection failed") from cause
    except rxstream.TransportError as error:
        assert secrets.revealed_by(error)
        assert not Secrets().revealed_by(error)
    assert not secrets.revealed_by(rxstream.TransportError("connection failed"))


def test_peer_text_is_one_line() -> None:
    assert one_line("close\r\nreason\u202e") == "close  reason " and one_line("plain") == "plain"


def test_the_redacting_logger_formats_then_redacts(caplog: pytest.LogCaptureFixture) -> None:
    secrets = Secrets()
    secrets.add("sk-123")
    logger = RedactingLogger(logging.getLogger("rxstream.tests.pins"), secrets)
    with caplog.at_level(logging.DEBUG, logger="rxstream.tests.pins"):
        logger.debug("> Authorization: Bearer %s", "sk-123")
        logger.info("no args sk-123")
    assert [record.getMessage() for record in caplog.records] == [
        f"> Authorization: Bearer {REDACTED}",
        f"no args {REDACTED}",
    ]
    assert all(record.filename == "test_pins_core.py" for record in caplog.records)  # the caller's line


def test_the_redacting_logger_formats_nothing_below_its_level(caplog: pytest.LogCaptureFixture) -> None:
    logger = RedactingLogger(logging.getLogger("rxstream.tests.pins.quiet"), Secrets())
    with caplog.at_level(logging.WARNING, logger="rxstream.tests.pins.quiet"):
        logger.debug("%s", object())
    assert caplog.records == []


# Every logger httpx, httpcore and hpack log a request's line or headers on (their modules' loggers).
HTTP_LOGGERS = (
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
    "hpack.hpack",
)


def test_http_logs_are_redacted_for_the_stream_that_set_the_secrets(caplog: pytest.LogCaptureFixture) -> None:
    secrets = Secrets()
    secrets.add("sk-456")

    def a_streams_task() -> None:  # its own context, as each stream's task has: the secrets stay in it
        redact_http_logs(secrets)
        for name in HTTP_LOGGERS:
            logging.getLogger(name).info("HTTP Request: GET http://h/?key=%s", "sk-456")
        logging.getLogger("httpx").info("nothing secret %s", "here")

    with caplog.at_level(logging.DEBUG):
        contextvars.copy_context().run(a_streams_task)
        logging.getLogger("httpx").info("another task: sk-456")
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [f"HTTP Request: GET http://h/?key={REDACTED}"] * len(HTTP_LOGGERS) + [
        "nothing secret here",
        "another task: sk-456",
    ]
    assert all("sk-456" not in str(record.args) for record in caplog.records)
