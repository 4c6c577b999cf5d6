"""What rxstream needs from a store of conversation turns: the interface ``persist`` saves
through, which ``rxstream.SQLiteStore`` implements and a user's own store can."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ._errors import InvalidSessionError
from ._values import Response


@dataclass(frozen=True, slots=True)
class Turn:
    """One saved response: the ``number``-th turn of ``session_id`` (from 1), saved at ``saved_at`` (epoch seconds).

    ``request`` is the body of the request that asked for it (messages or input, model and
    parameters), as sent, where the saver knew it; None for a turn saved without one.
    """

    session_id: str
    number: int
    response: Response
    saved_at: float
    request: dict[str, Any] | None = field(default=None, repr=False)  # a whole conversation: kept out of reprs


class ContextStore(Protocol):
    """What ``persist`` and ``stream(store=...)`` need from a store; implement it to use another database."""

    async def save(self, session_id: str, response: Response, *, request: Mapping[str, Any] | None = None) -> Turn: ...

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
