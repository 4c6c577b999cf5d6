"""What rxstream needs from a store of conversation turns: the interface ``persist`` saves
through, which ``rxstream.SQLiteStore`` implements and a user's own store can."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ._errors import InvalidSessionError
from ._values import Response


@dataclass(frozen=True, slots=True)
class Turn:
    """One saved response: the ``number``-th turn of ``session_id`` (from 1), saved at ``saved_at`` (epoch seconds)."""

    session_id: str
    number: int
    response: Response
    saved_at: float


class ContextStore(Protocol):
    """What ``persist`` and ``stream(store=...)`` need from a store; implement it to use another database."""

    async def save(self, session_id: str, response: Response) -> Turn: ...

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
