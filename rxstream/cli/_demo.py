"""``rxstream demo``: the embedded reference server, a faulty stream, the full pipeline, live."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from ..core._stage import Operator
from ..operators import Delta, parse, publish
from ..protocol._decision import RetryPolicy
from ..transport._calls import response_stream
from ..transport._websocket import from_websocket
from . import _options
from ._history import add_store_options, open_store, where
from ._live import Keeping, read_live
from ._relay import DEFAULT_REDIS, relay_server
from ._render import LiveText, retry_reporter, stats_table
from ._serve import add_content_options, server_from

DEMO_TOKEN = "demo-token"
DEMO_RETRY = RetryPolicy(initial=0.2)  # a visible pause when the dropped chunk is requested again, not a long one


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help="stream a faulty response from the embedded server, live")
    add_content_options(parser, 3000)
    parser.add_argument(
        "--delay", type=_options.seconds, default=0.004, help="seconds between frames (default %(default)s)"
    )
    parser.add_argument(
        "--timeout", type=_options.timeout, default=30.0, help="idle timeout in seconds (default %(default)s)"
    )
    add_store_options(parser, "save the turn in this session database")
    parser.add_argument("--session", default="demo", help="the session id to save it under (default %(default)s)")
    relay = parser.add_argument_group("through Redis to browsers (needs rxstream[relay])")
    relay.add_argument(
        "--relay",
        action="store_true",
        help="publish each delta to a Redis Stream and serve it to browsers with the relay, printing the page's URL",
    )
    relay.add_argument("--redis", default=DEFAULT_REDIS, help="the Redis to publish to (default %(default)s)")
    relay.add_argument("--relay-port", type=int, default=8766, help="the relay's port (default %(default)s)")
    relay.add_argument(
        "--linger",
        type=float,
        help="with --relay: keep relaying this many seconds after the stream (default: until Ctrl-C)",
    )
    parser.set_defaults(faults="reorder=6,drop=1,seed=1", chunk_size=24)


async def run(args: argparse.Namespace) -> int:
    if "delay=" not in args.faults:
        args.faults = f"{args.faults},delay={args.delay}"
    live = LiveText(sys.stdout)
    async with server_from(args, DEMO_TOKEN) as server:
        print(f"rxstream demo: {len(server.pieces)} chunks from {server.uri}, faults: {args.faults}\n", file=sys.stderr)
        async with open_store(args, read_only=False) as store, relayed(args) as published:
            source = from_websocket(
                server.uri,
                token=DEMO_TOKEN,
                request={"prompt": "demo"},
                retry=DEMO_RETRY,
                stream_timeout=args.timeout,
                on_retry=retry_reporter("demo", live),
            )
            deltas = response_stream(source, parse(), text_only=False, after_accumulate=published)
            outcome = await read_live("demo", deltas, live, Keeping(store, args.session, where(store)))
    if outcome.error is not None:
        raise outcome.error
    live.end_line()
    print()
    print(stats_table(outcome.response.stats))
    print(
        f"\nsaved as a turn of session {args.session!r} in {where(store)}: rxstream history {args.session} --db {where(store)}"
        + ("" if args.schema == "public" else f" --schema {args.schema}")
    )
    return 0 if outcome.response.complete else 1


@asynccontextmanager
async def relayed(args: argparse.Namespace) -> AsyncIterator[Operator[Delta, Delta] | None]:
    """With --relay, ``publish`` to a new Redis Stream while the relay serves it (its page's URL printed),
    the relay lingering after the block; without, None."""
    if not args.relay:
        yield None
        return
    import redis.asyncio

    from ..transport._redis import RedisStreamSink

    key = f"rxstream:demo:{uuid.uuid4().hex}"
    client = redis.asyncio.from_url(args.redis)
    relay = relay_server(args.redis, host="127.0.0.1", port=args.relay_port)
    serving = asyncio.ensure_future(relay.serve())
    try:
        while not relay.started and not serving.done():
            await asyncio.sleep(0.02)
        print(f"open http://127.0.0.1:{args.relay_port}/?key={key}\n", file=sys.stderr, flush=True)
        yield publish(RedisStreamSink(client, key))
        print(f"\n\npublished to {key}; relaying on http://127.0.0.1:{args.relay_port}", file=sys.stderr, flush=True)
        await asyncio.wait({serving}, timeout=args.linger)  # a browser opened late still gets the whole stream
    finally:
        relay.should_exit = True
        await serving
        await client.aclose()
