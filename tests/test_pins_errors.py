"""The errors' messages, pinned where the in-memory suite left them loose (issue 23): "the messages
quote at most 200 characters of it, on one line" (README, "What each failure raises"), a quote is
"at most ``QUOTE_LIMIT`` characters of a frame ... A value that is not text is shown as its ``repr``
would show it" (``quote``), and ``shown`` is "``repr(value)`` cut to ``limit`` characters"."""

from __future__ import annotations

from typing import Any

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
