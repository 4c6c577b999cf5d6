"""``rxstream relay``: serve the Redis Streams ``publish`` writes to browsers, as Server-Sent Events (uvicorn)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "relay", help="serve published streams to browsers as Server-Sent Events (needs rxstream[relay])"
    )
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="the Redis the writers publish to (default %(default)s)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--prefix", default="", help="serve only the streams whose keys start with this")
    parser.add_argument(
        "--writer-timeout",
        type=float,
        default=30.0,
        help="seconds a stream may go without a new entry before its writer is taken for dead (default %(default)s)",
    )
    parser.add_argument(
        "--reconnect-ms", type=int, default=1000, help="the reconnection time sent to browsers (default %(default)s)"
    )


def relay_server(
    redis_url: str, *, host: str, port: int, prefix: str = "", writer_timeout: float = 30.0, reconnect_ms: int = 1000
) -> Any:
    """A uvicorn server running ``relay_app``, to ``await .serve()``."""
    try:
        import uvicorn

        from ..server._relay import relay_app
    except ImportError as error:
        raise ValueError(f"the relay needs its extra: pip install 'rxstream[relay]' ({error})") from error
    app = relay_app(redis_url, prefix=prefix, writer_timeout=writer_timeout, reconnect_ms=reconnect_ms)
    # An open event stream must not hold up a restart: give it a second, then cut it (the browser resumes).
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=1)
    return uvicorn.Server(config)


async def run(args: argparse.Namespace) -> int:
    server = relay_server(
        args.redis,
        host=args.host,
        port=args.port,
        prefix=args.prefix,
        writer_timeout=args.writer_timeout,
        reconnect_ms=args.reconnect_ms,
    )
    url = f"http://{args.host}:{args.port}"
    print(
        f"relaying {args.redis} on {url}/streams/KEY; a page showing one: {url}/?key=KEY", file=sys.stderr, flush=True
    )
    await server.serve()
    return 0
