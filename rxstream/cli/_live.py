"""A stream read live: its text shown as it arrives, and nothing received lost when it ends early.

On Ctrl-C or a failure the partial response is saved (when a session is given), the text's line
is ended and the command says how far it got, then the interruption or the error goes on to
``main``, which exits 130 or 1.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core._context_store import ContextStore
from ..core._errors import StreamError
from ..core._transcript import Transcript
from ..core._values import Response
from ..operators._accumulate import Delta
from ..transport._calls import ResponseStream
from ._render import LiveText


@dataclass(frozen=True)
class Keeping:
    """Where a turn is saved: ``store`` under ``session``, with the ``request`` that asked for it; the
    database's path says where, to the user."""

    store: ContextStore
    session: str
    path: str
    request: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Outcome:
    """What a live stream gave: the response (the partial one when ``error`` ended it early), and
    when its first token came (seconds from the start)."""

    response: Response
    first_token: float | None
    error: StreamError | None = None


async def read_live(
    command: str, deltas: ResponseStream[Delta], live: LiveText, keeping: Keeping | None = None
) -> Outcome:
    """Show ``deltas`` live and return the response, whole or partial, saved when ``keeping``.

    Raises:
        asyncio.CancelledError: Ctrl-C; the partial response was saved.
    """
    started = time.perf_counter()
    first_token: float | None = None
    transcript = Transcript()
    try:
        async with deltas:
            async for delta in deltas:
                transcript = delta.transcript
                if first_token is None and (delta.text or delta.chunk.reasoning or delta.tool_calls or delta.refusal):
                    first_token = time.perf_counter() - started
                live.show(delta)
    except asyncio.CancelledError:
        await interrupted(command, transcript.response(False, deltas.stats), live, keeping, always=True)
        raise
    except StreamError as error:
        partial = error.partial or transcript.response(False, deltas.stats)
        await interrupted(command, partial, live, keeping, always=False)
        return Outcome(partial, first_token, error)
    response = deltas.response
    assert response is not None  # the loop ended without an error: finalize had the final chunk
    if keeping is not None:
        await keeping.store.save(keeping.session, response, request=keeping.request)
    return Outcome(response, first_token)


async def interrupted(
    command: str, partial: Response, live: LiveText, keeping: Keeping | None, *, always: bool
) -> None:
    """End the text's line, save the partial turn, and say so (a failure before anything came says nothing)."""
    live.end_line()
    saved = ""
    if keeping is not None:
        turn = await keeping.store.save(keeping.session, partial, request=keeping.request)
        saved = f", saved as turn {turn.number} of session {keeping.session!r} in {keeping.path}"
    if always or saved or partial.chunks:
        print(f"rxstream {command}: interrupted after {partial.chunks} chunks{saved}", file=sys.stderr, flush=True)
