"""What the CLI prints, in memory: rates in a unit that shows them, hints in flags, the demo's text in whole words."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rxstream import StreamTimeoutError
from rxstream.cli._render import flags_for, per_second
from rxstream.server import generate


@given(st.floats(min_value=1e-3, max_value=1e12))
def test_a_rate_never_shows_as_zero(amount: float) -> None:
    shown = per_second(amount, "B")
    number, unit = shown.split(" ")
    assert float(number) >= 1 or unit == "B/s"
    assert float(number) > 0 and unit in {"B/s", "KB/s", "MB/s", "GB/s"}


def test_a_rate_in_its_unit() -> None:
    assert [per_second(amount, "B") for amount in (0.5, 999, 1234, 5_460_000)] == [
        "0.5 B/s",
        "999 B/s",
        "1.23 KB/s",
        "5.46 MB/s",
    ]


def test_a_timeout_hint_names_the_flag() -> None:
    message = flags_for(str(StreamTimeoutError("ws://host/stream", 5.0)))
    assert "--timeout" in message and "stream_timeout" not in message
    message = flags_for(str(StreamTimeoutError("https://host/v1/chat/completions", 600.0, kind="content")))
    assert "--content-timeout" in message and "content_timeout" not in message


@given(st.integers(min_value=0, max_value=3000), st.integers(min_value=0, max_value=50))
def test_generated_text_in_whole_words_is_the_exact_text_cut_at_a_space(size: int, seed: int) -> None:
    exact, whole = generate(size, seed), generate(size, seed, whole_words=True)
    assert exact.startswith(whole) and len(whole) <= size
    longer = generate(size + 1, seed)
    assert whole == exact or longer[len(whole)] == " " or " " not in exact  # cut at a space, unless there is none
