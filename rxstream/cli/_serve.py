"""``rxstream serve``: the reference WebSocket server, with faults on demand."""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

from ..server import Faults, ReferenceServer, load


def add_content_options(parser: argparse.ArgumentParser, default_size: int) -> None:
    parser.add_argument("--text", help="the response text")
    parser.add_argument("--file", help="read the response text from this file")
    parser.add_argument(
        "--size", type=int, default=default_size, help="generate this many characters (default %(default)s)"
    )
    parser.add_argument("--chunk-size", type=int, default=64, help="characters per chunk (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed for generated text and faults")
    parser.add_argument(
        "--faults", default="", help="e.g. reorder=8,duplicate=0.1,drop=1,delay=0.01,abort_after=40,reject_first=2"
    )


def server_from(args: argparse.Namespace, token: str | None, **options: Any) -> ReferenceServer:
    faults = Faults.parse(args.faults)
    if "seed=" not in args.faults:
        faults = Faults.parse(f"{args.faults},seed={args.seed}")
    text = load(args.text, args.file, args.size, args.seed)
    return ReferenceServer(text, chunk_size=args.chunk_size, token=token, faults=faults, **options)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("serve", help="run the reference streaming server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token-env", help="require the bearer token held in this environment variable")
    parser.add_argument(
        "--qps", type=float, default=50.0, help="handshakes per second before 429 (default %(default)s)"
    )
    add_content_options(parser, 2048)


async def run(args: argparse.Namespace) -> int:
    token = os.environ[args.token_env] if args.token_env else None
    async with server_from(args, token, host=args.host, port=args.port, qps=args.qps) as server:
        print(f"serving {len(server.pieces)} chunks on {server.uri} (Ctrl-C to stop)", flush=True)
        await asyncio.Future()  # until interrupted
    return 0
