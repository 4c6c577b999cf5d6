"""9. The SSE decoder: rxstream's ``SSEDecoder`` against the openai SDK's, on bodies cut as networks and attackers cut them."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from rxstream.protocol._sse import SSEDecoder

from .measure import Result, medians, progress

EVENT = (
    b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1727346178,"model":"gpt-4o",'
    b'"choices":[{"index":0,"delta":{"content":"Edinburgh"},"finish_reason":null}]}\n\n'
)


def cut(body: bytes, size: int) -> list[bytes]:
    return [body[start : start + size] for start in range(0, len(body), size)]


def bodies(size: int) -> dict[str, list[bytes]]:
    """Each shape of body, about ``size`` bytes, in the reads it arrives in."""
    line = b"data: " + b"x" * size + b"\n\n"
    cr_events = b"data: x\r\r" * (size // 9)
    return {
        "a chat stream in 4 KiB reads": cut(EVENT * (size // len(EVENT)), 4096),
        "a chat stream, one event a read": [EVENT] * (size // len(EVENT)),
        "CR-only events in 4 KiB reads": cut(cr_events, 4096),
        "one long line in 1-byte reads": cut(line, 1),
        "CR alone, one read": [b"\r" * size],
    }


def through_rxstream(reads: list[bytes]) -> int:
    decoder = SSEDecoder()
    events = sum(len(decoder.feed(read)) for read in reads)
    return events + len(decoder.end())


def through_openai(reads: list[bytes]) -> int:
    from openai._streaming import SSEDecoder as OpenAIDecoder  # the oracle, imported when the row runs

    return sum(1 for event in OpenAIDecoder().iter_bytes(iter(reads)) if event.data)


def run(size: int, repetitions: int) -> list[Result]:
    try:
        import openai  # noqa: F401
    except ImportError:
        progress("SSE decoder: skipped, the openai SDK (the oracle) is not installed: pip install openai")
        return []
    results = []
    for name, reads in bodies(size).items():
        progress(f"SSE decoder: {name}, {sum(map(len, reads)):,} bytes")
        assert through_rxstream(reads) == through_openai(reads), f"the decoders disagree on {name}"
        contenders: dict[str, Callable[[], object]] = {
            "rxstream": partial(through_rxstream, reads),
            "openai": partial(through_openai, reads),
        }
        seconds = medians(contenders, repetitions)
        megabytes = sum(map(len, reads)) / 1e6
        results.append(
            Result(
                f"SSE decoder, {name}: rxstream vs openai SSEDecoder, MB/s",
                seconds["openai"] / seconds["rxstream"],
                1.0,
                detail=f"{megabytes / seconds['rxstream']:.1f} vs {megabytes / seconds['openai']:.1f} MB/s",
                extra={f"{name}_seconds": value for name, value in seconds.items()},
            )
        )
    # Linear time: ten times the bytes may take ten times as long, not a hundred.
    small, large = bodies(size // 10), bodies(size)
    for name in ("one long line in 1-byte reads", "CR alone, one read"):
        times = medians(
            {"small": partial(through_rxstream, small[name]), "large": partial(through_rxstream, large[name])},
            repetitions,
        )
        results.append(
            Result(
                f"SSE decoder, {name}: seconds for 10x the bytes, over 10x",
                times["large"] / times["small"] / 10,
                2.0,
                higher_is_better=False,
                detail=f"{times['small'] * 1e3:.1f} ms for {size // 10:,} bytes, {times['large'] * 1e3:.1f} ms for {size:,}",
            )
        )
    return results
