"""``rxstream demo``: the embedded reference server, a faulty stream, the full pipeline, live."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..model import Response
from ..websocket import from_websocket
from .render import live_pipeline, stats_table
from .serve import add_content_options, server_from

DEMO_TOKEN = "demo-token"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help="stream a faulty response from the embedded server, live")
    add_content_options(parser, 3000)
    parser.add_argument("--delay", type=float, default=0.004, help="seconds between frames (default %(default)s)")
    parser.set_defaults(faults="reorder=6,drop=1,seed=1", chunk_size=24)


async def run(args: argparse.Namespace) -> int:
    if "delay=" not in args.faults:
        args.faults = f"{args.faults},delay={args.delay}"
    async with server_from(args, DEMO_TOKEN) as server:
        print(f"rxstream demo: {len(server.pieces)} chunks from {server.uri}, faults: {args.faults}\n", file=sys.stderr)
        response: Response = await from_websocket(server.uri, token=DEMO_TOKEN, request={"prompt": "demo"}).pipe(
            *live_pipeline()
        )
    print("\n")
    print(stats_table(response.stats))
    return 0 if response.complete else 1
