"""Run by the store tests in a child process: read a store back, save in a loop until killed, or save
many turns at once. ``STORE`` is ``sqlite:PATH`` or ``postgres:SCHEMA:URL``."""

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import rxstream

Store = rxstream.SQLiteStore | rxstream.PostgresStore


def open_store(spec: str) -> Store:
    kind, _, where = spec.partition(":")
    if kind == "postgres":
        schema, _, url = where.partition(":")
        return rxstream.PostgresStore(url, schema=schema, max_connections=4)
    return rxstream.SQLiteStore(where)


async def save_forever(spec: str, tag: str) -> None:
    async with open_store(spec) as store:
        number = 0
        while True:
            number += 1
            turn = await store.save("crash", rxstream.Response(f"{tag} {number} " * 50, True, number))
            print(turn.number, flush=True)  # acknowledged: this save returned


async def save_many(spec: str, worker: str, tasks: str, sessions: str) -> None:
    """``tasks`` concurrent saves, task i to session ``i % sessions``, each its own text."""
    async with open_store(spec) as store:
        await asyncio.gather(
            *(
                store.save(f"session-{i % int(sessions)}", rxstream.Response(f"{worker}:{i}", True, 1))
                for i in range(int(tasks))
            )
        )


async def read_back(spec: str, session_id: str) -> None:
    async with open_store(spec) as store:
        for turn in await store.history(session_id):
            response = turn.response
            kinds = [part.kind for part in response.parts]
            print(f"{turn.number}|{response.complete}|{response.text}|{kinds}|{response.finish_reason}")


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    run: dict[str, Callable[..., Coroutine[Any, Any, None]]] = {
        "save": save_forever,
        "many": save_many,
        "read": read_back,
    }
    asyncio.run(run[command](*arguments))
