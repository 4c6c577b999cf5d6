"""Reassemble a reordered, duplicated stream with the five operators and a custom one in between."""

import asyncio

import orjson
from reactivex import operators as ops

import rxstream
from rxstream import operators as rxo


def frame(index: int, data: str, is_final: bool = False) -> bytes:
    return orjson.dumps({"chunk": {"index": index, "data": data, "is_final": is_final}, "timestamp": 1672531200})


async def main() -> None:
    words = "Streams arrive out of order, twice, or not at all; rxstream puts them back.".split(" ")
    sent = [1, 0, 2, 2, 4, 3, 5, 7, 6, 8, 9, 11, 10, 13, 12]  # reordered, with one duplicate
    frames = [frame(i, words[i] + (" " if i < len(words) - 1 else ""), i == len(words) - 1) for i in sent]

    response = await rxstream.from_frames(frames).pipe(
        rxo.parse(),
        rxo.reorder(window=8),
        ops.do_action(lambda chunk: print(f"chunk {chunk.index:2}: {chunk.data!r}")),  # any RxPY operator fits
        rxo.backpressure_buffer(max_pending=5),
        rxo.accumulate(),
        rxo.finalize(),
    )
    print(response.text)
    print(response.stats)


if __name__ == "__main__":
    asyncio.run(main())
