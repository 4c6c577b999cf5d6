"""parse, pinned where the in-memory suite left it loose (issue 23, item 12): the bytes it counts
for each kind of frame, piped and fused, and each FrameError's reason as a whole (tests/test_parse.py
matches the field's name in the message)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import rxstream
from rxstream import operators as rxo

from .support import FiveOperators, frame, run


def test_bytes_counts_each_frames_utf8_length_str_or_bytes(five: Callable[..., FiveOperators]) -> None:
    # parse: "It counts Stats.chunks and Stats.bytes"; a str frame is counted as the UTF-8 it came as.
    ascii_text = frame(0, "plain").decode()
    accented = frame(1, "été ✓").decode()  # é 2 bytes, ✓ 3
    raw = frame(2, "naïve", image_url="https://example.com/a.png")  # bytes, non-ASCII, and not plain
    last = frame(3, "", True).decode()
    response = run(rxstream.from_frames([ascii_text, accented, raw, last]).pipe(five())).items[0]
    assert response.text == "plainété ✓naïve"
    assert response.stats.chunks == 4
    assert response.stats.bytes == len(ascii_text) + len(accented.encode()) + len(raw) + len(last)


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"[1, 2]", "the frame is not a JSON object"),
        (b'{"chunk": 7}', "field 'chunk' is missing or not an object"),
        (b'{"chunk": {"index": 0, "data": 7}}', "field 'chunk.data' must be a string"),
        (b'{"chunk": {"index": 0, "is_final": "yes"}}', "field 'chunk.is_final' must be true or false"),
        (b'{"chunk": {"index": 0}, "timestamp": "now"}', "field 'timestamp' must be an integer"),
        (b'{"chunk": {"index": 0, "image_url": 7}}', "fields 'chunk.text' and 'chunk.image_url' must be strings"),
    ],
)
def test_a_frame_errors_reason_is_one_sentence_naming_the_field(raw: bytes, reason: str) -> None:
    # FrameError: "reason says why" (the README's error table: .frame, .reason, .number); parse: it names the field.
    error = run(rxstream.from_frames([raw]).pipe(rxo.parse())).error
    assert isinstance(error, rxstream.FrameError) and error.reason == reason and error.number == 1
