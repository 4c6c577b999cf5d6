"""``rxstream serve``: the reference WebSocket server (or, with ``--responses``, the OpenAI Responses
endpoint over SSE and in WebSocket mode; with ``--sse``, chat-completion streams over SSE), with faults on demand."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from ..server import Faults, ReferenceResponsesServer, ReferenceServer, ReferenceSSEServer, load
from . import _options


def add_content_options(parser: argparse.ArgumentParser, default_size: int) -> None:
    parser.add_argument("--text", help="the response text")
    parser.add_argument("--file", help="read the response text from this file")
    parser.add_argument(
        "--size",
        type=_options.size,
        default=default_size,
        help="generate about this many characters, ending at a word (default %(default)s)",
    )
    parser.add_argument(
        "--chunk-size", type=_options.positive, default=64, help="characters per chunk (default %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for generated text and faults")
    parser.add_argument(
        "--faults",
        type=_options.faults,
        default="",
        help="e.g. reorder=8,duplicate=0.1,drop=1,delay=0.01,abort_after=40,reject_first=2",
    )


def faults_and_text(args: argparse.Namespace) -> tuple[Faults, str]:
    faults = Faults.parse(args.faults)
    if "seed=" not in args.faults:
        faults = Faults.parse(f"{args.faults},seed={args.seed}")
    return faults, load(args.text, args.file, args.size, args.seed)


def server_from(args: argparse.Namespace, token: str | None, **options: Any) -> ReferenceServer:
    faults, text = faults_and_text(args)
    return ReferenceServer(text, chunk_size=args.chunk_size, token=token, faults=faults, **options)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("serve", help="run the reference streaming server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=_options.port, default=8765, help="0 for any free one (default %(default)s)")
    _options.add_token_env(parser, "require the bearer token held in this environment variable")
    parser.add_argument(
        "--qps", type=_options.rate, default=50.0, help="handshakes per second before 429 (default %(default)s)"
    )
    parser.add_argument(
        "--responses",
        action="store_true",
        help="serve the OpenAI Responses API over SSE (POST /v1/responses; background responses resumed by "
        "GET /v1/responses/<id>?stream=true&starting_after=<n>) and in WebSocket mode (ws://…/v1/responses, "
        "a response.create message) on the same port, instead of the WebSocket chunk protocol",
    )
    parser.add_argument(
        "--sse",
        action="store_true",
        help="serve OpenAI-compatible chat-completion streams over SSE (POST /v1/chat/completions, "
        "Last-Event-ID honoured) instead of the WebSocket chunk protocol",
    )
    add_content_options(parser, 2048)


async def run(args: argparse.Namespace) -> int:
    endpoint = {"token": args.token, "host": args.host, "port": args.port, "qps": args.qps}
    server: ReferenceServer | ReferenceResponsesServer | ReferenceSSEServer
    if args.responses or args.sse:
        faults, text = faults_and_text(args)
        kind = ReferenceResponsesServer if args.responses else ReferenceSSEServer
        server = kind(text, chunk_size=args.chunk_size, faults=faults, **endpoint)
    else:
        server = server_from(args, **endpoint)
    async with server:
        if isinstance(server, ReferenceResponsesServer):
            serving = f"{server.count} Responses events on {server.url} (SSE) and {server.websocket_url} (WebSocket)"
        elif isinstance(server, ReferenceSSEServer):
            serving = f"{server.count} chat-completion events on {server.url} (SSE)"
        else:
            serving = f"{len(server.pieces)} chunks on {server.uri}"
        print(f"serving {serving} (Ctrl-C to stop)", flush=True)
        await asyncio.Future()  # until interrupted
    return 0
