"""``rxstream connect URI``: stream from any endpoint, live, or as JSON."""

from __future__ import annotations

import argparse
import io
import os
import sys
from typing import Any

import orjson

from ..model import Response
from ..websocket import from_websocket
from .render import live_pipeline, response_json, stats_table


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("connect", help="stream a response from a WebSocket endpoint")
    parser.add_argument("uri", help="ws:// or wss:// endpoint")
    parser.add_argument("--token-env", help="environment variable holding the bearer token")
    parser.add_argument("--request", help="JSON object sent as the first message")
    parser.add_argument("--json", action="store_true", help="print the final response as JSON instead of live text")
    parser.add_argument("--timeout", type=float, default=30.0, help="idle timeout in seconds (default %(default)s)")


async def run(args: argparse.Namespace) -> int:
    token = None
    if args.token_env:
        if args.token_env not in os.environ:
            raise ValueError(f"environment variable {args.token_env} is not set")
        token = os.environ[args.token_env]
    request = orjson.loads(args.request) if args.request else None
    out = io.StringIO() if args.json else sys.stdout
    response: Response = await from_websocket(args.uri, token=token, request=request, stream_timeout=args.timeout).pipe(
        *live_pipeline(out)
    )
    if args.json:
        print(response_json(response))
    else:
        print("\n")
        print(stats_table(response.stats), file=sys.stderr)
    return 0
