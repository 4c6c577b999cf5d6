from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rxstream
from rxstream import operators as rxo
from rxstream.core._errors import QUOTE_LIMIT

from .support import FiveOperators, frame, run


def parse_all(frames: list[Any]) -> tuple[list[rxstream.Chunk], Exception | None]:
    outcome = run(rxstream.from_frames(frames).pipe(rxo.parse()))
    return outcome.items, outcome.error


KEPT = [frame(0, "kept "), frame(1, "too").decode()]  # plain chunks, which the fused pipeline's fast path takes


def frame_error(five: Callable[..., FiveOperators], frames: list[Any]) -> BaseException | None:
    """The error that ended the five operators on ``frames``, each way keeping what came before it."""
    error = run(rxstream.from_frames(frames).pipe(five())).error
    assert isinstance(error, rxstream.StreamError) and error.partial is not None
    assert error.partial.text == ("kept too" if frames[:2] == KEPT else "")  # nothing received is lost
    return error


def test_valid_frames_become_typed_chunks() -> None:
    text_frame = '{"chunk": {"index": 0, "data": "partial text", "is_final": false}, "timestamp": 1672531200}'
    multimodal = frame(1, "", True, text="a cat", image_url="https://example.com/cat.png", extra_field=[1])
    chunks, error = parse_all([text_frame, multimodal])
    assert error is None
    assert chunks == [
        rxstream.Chunk(0, "partial text", False, 1672531200),
        rxstream.Chunk(1, "", True, 1672531200, "a cat", "https://example.com/cat.png"),
    ]
    assert chunks[0].data == "partial text" and chunks[1].image_url == "https://example.com/cat.png"


def test_chunk_is_immutable() -> None:
    chunk = rxstream.Chunk(0, "x")
    with pytest.raises(AttributeError):
        chunk.data = "y"  # type: ignore[misc]
    assert not hasattr(chunk, "__dict__")


def test_optional_fields_default() -> None:
    chunks, error = parse_all([b'{"chunk": {"index": 3}}'])
    assert error is None and chunks == [rxstream.Chunk(3, "", False, None)]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{not json", "invalid JSON"),
        (b'{"timestamp": 1}', "'chunk'"),
        (b'{"chunk": [1]}', "'chunk'"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"chunk": {"data": "x", "is_final": false}}', "'chunk.index'"),
        (b'{"chunk": {"index": -1, "data": "x", "is_final": false}}', "'chunk.index'"),
        (b'{"chunk": {"index": true, "data": "x", "is_final": false}}', "'chunk.index'"),
        (b'{"chunk": {"index": 1.0, "data": "x", "is_final": false}}', "'chunk.index'"),
        (b'{"chunk": {"index": 99999999999999999999999, "data": "x", "is_final": false}}', "'chunk.index'"),
        (b'{"chunk": {"index": 0, "data": 5, "is_final": false}}', "'chunk.data'"),
        (b'{"chunk": {"index": 0, "data": "x", "is_final": 1}}', "'chunk.is_final'"),
        (b'{"chunk": {"index": 0, "data": "x", "is_final": false}, "timestamp": "now"}', "'timestamp'"),
        (b'{"chunk": {"index": 0, "text": 7}}', "'chunk.text'"),
        (b"[" * 5000 + b"]" * 5000, "invalid JSON"),
        (b'{"chunk": {"index": 0, "data": "' + b"\xff\xfe" + b'", "is_final": false}}', "invalid JSON"),
    ],
)
def test_malformed_frames_name_the_field(five: Callable[..., FiveOperators], raw: bytes, field: str) -> None:
    error = frame_error(five, [*KEPT, raw])
    assert isinstance(error, rxstream.FrameError)
    assert error.frame == raw and error.number == 3
    assert field in str(error) and "frame 3" in str(error)


def test_error_quotes_at_most_200_characters(five: Callable[..., FiveOperators]) -> None:
    raw = b'{"chunk": {"index": "' + b"x" * 10_000 + b'"}}'
    error = frame_error(five, [raw])
    assert isinstance(error, rxstream.FrameError)
    quoted = str(error).split("the frame was ")[1]
    assert quoted.startswith(repr(raw.decode()[:QUOTE_LIMIT]) + "... (10024 characters in all)")
    assert len(str(error)) < 600


def test_a_frame_that_is_not_text_is_a_frame_error(five: Callable[..., FiveOperators]) -> None:
    error = frame_error(five, [*KEPT, 12])
    assert isinstance(error, rxstream.FrameError) and "must be bytes" in str(error) and error.number == 3


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
chunk_like = st.fixed_dictionaries(
    {"chunk": st.dictionaries(st.sampled_from(["index", "data", "is_final", "text", "image_url", "x"]), json_values)},
    optional={"timestamp": json_values},
)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_frame_error(raw: bytes) -> None:
    chunks, error = parse_all([raw])
    assert error is None or isinstance(error, rxstream.FrameError)
    assert len(chunks) + (error is not None) == 1


@given(json_values | chunk_like)
def test_arbitrary_json_raises_only_frame_error(value: object) -> None:
    raw = orjson.dumps(value)
    chunks, error = parse_all([raw])
    if error is None:
        (chunk,) = chunks
        assert type(chunk.index) is int and chunk.index >= 0 and isinstance(chunk.data, str)
    else:
        assert isinstance(error, rxstream.FrameError) and error.frame == raw
