"""Issue 20's design question, measured: the SSE text fast path against stages that take runs of items.

``batched_stages`` is a model of the other mechanism, every stage handed the run of events one read
of the body gives (as ``BatchObserver.on_next_batch`` hands them) and doing its own per-item work in
one loop: parse_sse checks and numbers each event into a Chunk (the same few-step check for text,
the full decoding otherwise), reorder records each, the buffer passes the run on, accumulate appends
each text and builds its Delta, finalize keeps the last. It is a model for plain text in order, not a
pipeline: no demand, holds or errors, so it is a floor for what batches can cost.
``python -m benchmarks.sse_batches`` prints both, in CPU time, beside split + orjson + join.
"""

from __future__ import annotations

import time
from functools import partial

from orjson import loads
from reactivex.observer import Observer

from rxstream.core._stage import Shared
from rxstream.core._transcript import Transcript
from rxstream.core._values import PLAIN_TAIL, Chunk, Stats
from rxstream.operators._accumulate import Delta
from rxstream.operators._parse import _new_chunk
from rxstream.operators._parse_sse import CHUNK_EVENTS, ParseSSEStage, common_text
from rxstream.protocol._sse import SSEDecoder

from .measure import medians
from .sse import chat_body, pieces, split_join, through_sse_pipeline

_new_delta = tuple.__new__


def batched_stages(reads: list[bytes]) -> str:
    """The model: the runs of events each read gives, through the five stages' per-item work, a loop a stage."""
    stats = Stats()
    parse = ParseSSEStage(Observer(), Shared(stats, None), 0)  # for decode(): the model emits nothing
    transcript = Transcript()
    decoder = SSEDecoder()
    delivered: list[Chunk] = []
    next_index = 0
    last: Delta | None = None
    for read in reads:
        # parse_sse: a Chunk an event
        chunks = []
        for event in decoder.feed(read):
            if event.event not in CHUNK_EVENTS:
                continue
            parse.events += 1
            data = event.data
            stats.bytes += len(data) if data.isascii() else len(data.encode("utf-8", "surrogatepass"))
            index = parse.next_index
            if data == "[DONE]":
                chunk: Chunk | None = Chunk(index, "", True)
            else:
                message = loads(data)
                text = common_text(message, 0)
                if text is not None:
                    chunk = _new_chunk(Chunk, (index, text, False, message.get("created"), *PLAIN_TAIL))
                else:
                    chunk = parse.decode(index, message)
            if chunk is not None:
                parse.next_index = index + 1
                stats.chunks += 1
                chunks.append(chunk)
        # reorder: each in order, recorded
        for chunk in chunks:
            if chunk.index == next_index:
                delivered.append(chunk)
                next_index += 1
        # backpressure_buffer: the run passes on; accumulate: each text appended, a Delta each
        deltas = []
        for chunk in chunks:
            if chunk[4:] == PLAIN_TAIL:
                transcript.append(chunk.data)
            else:
                transcript.add(chunk, chunk.data)
            deltas.append(_new_delta(Delta, (chunk.data, chunk, transcript)))
        # finalize: the last of the run
        if deltas:
            last = deltas[-1]
    assert last is not None and last.chunk.is_final
    return str(transcript.response(True, stats).text)


def run(events: int = 20_000, repetitions: int = 7) -> dict[str, float]:
    """µs of CPU an event: sse_pipeline (the fast path), the batched model, split + orjson + join."""
    reads = pieces(chat_body(events))
    assert batched_stages(reads) == through_sse_pipeline(reads) == split_join(reads)
    seconds = medians(
        {
            "fast path": partial(through_sse_pipeline, reads),
            "batched stages": partial(batched_stages, reads),
            "split": partial(split_join, reads),
        },
        repetitions,
        time.process_time,
    )
    return {name: value / events * 1e6 for name, value in seconds.items()}


if __name__ == "__main__":
    for name, micros in run().items():
        print(f"{name:>15}: {micros:.2f} µs an event")
