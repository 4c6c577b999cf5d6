"""Run by tests/test_store.py in a child process: read back a store, or save in a loop until killed."""

import asyncio
import sys

import rxstream


async def save_forever(path: str) -> None:
    async with rxstream.SQLiteStore(path) as store:
        number = 0
        while True:
            number += 1
            turn = await store.save("crash", rxstream.Response(f"turn {number} " * 50, True, number))
            print(turn.number, flush=True)  # acknowledged: this save returned


async def read_back(path: str, session_id: str) -> None:
    async with rxstream.SQLiteStore(path) as store:
        for turn in await store.history(session_id):
            response = turn.response
            kinds = [part.kind for part in response.parts]
            print(f"{turn.number}|{response.complete}|{response.text}|{kinds}|{response.finish_reason}")


if __name__ == "__main__":
    command, path, *rest = sys.argv[1:]
    asyncio.run(save_forever(path) if command == "save" else read_back(path, *rest))
