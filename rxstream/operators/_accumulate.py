"""accumulate: each chunk's text delta, with the transcript so far."""

from __future__ import annotations

from typing import NamedTuple

from reactivex import abc

from ..core._stage import Operator, Shared, Stage
from ..core._transcript import Transcript
from ..core._values import PLAIN_TAIL, Chunk, ToolCallFragment, preview


class Delta(NamedTuple):
    """What one chunk added: its ``text`` and the ``transcript`` it was appended to.

    ``tool_calls`` is the streaming view of tool calls: a fragment with a ``name`` starts a
    call, and each fragment's ``arguments`` is what that call's arguments grew by.
    """

    text: str
    chunk: Chunk
    transcript: Transcript

    @property
    def tool_calls(self) -> tuple[ToolCallFragment, ...]:
        return self.chunk.tool_calls or ()

    def __repr__(self) -> str:
        # Bounded: the transcript holds the whole response so far.
        return f"Delta(text={preview(self.text)}, chunk={self.chunk.index}, transcript={len(self.transcript):,} chars)"

    @property
    def refusal(self) -> str:
        """What the refusal grew by."""
        return self.chunk.refusal or ""


_new_delta = tuple.__new__  # as in parse: the C constructor, not the named tuple's Python one


class AccumulateStage(Stage[Chunk, Delta]):
    def __init__(self, downstream: abc.ObserverBase[Delta], shared: Shared) -> None:
        super().__init__(downstream, shared)
        self.transcript = Transcript()

    def on_next(self, chunk: Chunk) -> None:
        text = chunk.data if chunk.text is None else chunk.data + chunk.text
        transcript = self.transcript
        if chunk[4:] == PLAIN_TAIL:  # Chunk.plain, less the is_final test this path does not need
            transcript.append(text)
        else:
            transcript.add(chunk, text)
        self.emit(_new_delta(Delta, (text, chunk, transcript)))


def accumulate() -> Operator[Chunk, Delta]:
    """Emit a ``Delta`` per chunk: the text it adds and the ``Transcript`` so far.

    .. marble::
        :alt: accumulate

        -a--b--c--|
        [ accumulate() ]
        -A--B--C--|

    ``A`` is ``Delta(text, chunk, transcript)`` for chunk ``a``; ``B``'s transcript holds
    the text of ``a`` and ``b``, and so on: the same ``Transcript``, grown in place.

    Text comes from ``data`` followed by ``text``; an ``image_url`` becomes an image part
    after it, ``reasoning`` a reasoning part before it. Building the whole text is linear
    in its size.

    Returns:
        An operator that takes an observable of ``Chunk``s (in order: after ``reorder``)
        and returns an observable of one ``Delta`` per chunk. Completion and errors pass
        through as they come.
    """
    return Operator(AccumulateStage)
