"""parse, pinned where the in-memory suite left it loose (issue 23, item 12): the bytes it counts
for each kind of frame, piped and fused."""

from __future__ import annotations

from collections.abc import Callable

import rxstream

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
