"""What rxstream needs from a store of conversation turns: the interface ``persist`` saves
through, which ``rxstream.SQLiteStore`` implements and a user's own store can."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ._errors import InvalidSessionError
from ._values import Response, preview


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool the model called gave back: the answer to call ``call_id`` (``ToolCall.id``).

    The next request carries it as each API takes it: a ``tool`` message (chat completions), a
    ``tool_result`` block (Anthropic, ``is_error`` marking a failed call), a
    ``function_call_output`` item (Responses).
    """

    call_id: str
    content: str
    is_error: bool = False

    def __repr__(self) -> str:
        error = ", is_error=True" if self.is_error else ""
        return f"ToolResult(call_id={self.call_id!r}, content={preview(self.content)}{error})"


@dataclass(frozen=True, slots=True)
class Turn:
    """One saved turn: the ``number``-th of ``session_id`` (from 1), saved at ``saved_at`` (epoch seconds).

    A turn is the model's (``response``, and ``request``, the body that asked for it: messages
    or input, model and parameters, as sent, where the saver knew it) or the tools' (its
    ``tool_results``, answering the calls of the response before; its ``response`` then empty),
    so that an agent loop stopped after running its tools resumes from the store.
    """

    session_id: str
    number: int
    response: Response
    saved_at: float
    request: dict[str, Any] | None = field(default=None, repr=False)  # a whole conversation: kept out of reprs
    tool_results: tuple[ToolResult, ...] = ()

    @property
    def role(self) -> Literal["assistant", "tool"]:
        """Whose turn it is: the model's answer, or the results of the tools it called."""
        return "tool" if self.tool_results else "assistant"

    def __repr__(self) -> str:
        if not self.tool_results:
            return (
                f"Turn(session_id={self.session_id!r}, number={self.number}, response={self.response!r},"
                f" saved_at={self.saved_at!r})"
            )
        return (
            f"Turn(session_id={self.session_id!r}, number={self.number}, saved_at={self.saved_at!r},"
            f" tool_results={self.tool_results!r})"
        )


class ContextStore(Protocol):
    """What ``persist`` and ``stream(store=...)`` need from a store; implement it to use another database."""

    async def save(self, session_id: str, response: Response, *, request: Mapping[str, Any] | None = None) -> Turn: ...

    async def save_tool_results(self, session_id: str, results: Sequence[ToolResult]) -> Turn: ...

    async def history(self, session_id: str, limit: int | None = None) -> list[Turn]: ...

    async def sessions(self) -> list[str]: ...

    async def delete(self, session_id: str) -> int: ...


def check_session_id(session_id: object) -> str:
    if not isinstance(session_id, str) or not session_id:
        raise InvalidSessionError(session_id, "must be a non-empty string")
    try:
        session_id.encode()
    except UnicodeEncodeError as error:  # a lone surrogate, as undecodable bytes on a command line become
        raise InvalidSessionError(
            session_id, f"must be valid Unicode text ({error.reason} at position {error.start})"
        ) from error
    return session_id
