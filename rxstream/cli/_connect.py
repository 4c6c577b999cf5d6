"""``rxstream connect URI``: stream from any endpoint, live, or as JSON."""

from __future__ import annotations

import argparse
import io
import os
import sys
from typing import Any

import orjson
from reactivex import Observable

from ..core._stage import Operator
from ..core._values import Chunk, Response
from ..operators import parse, parse_responses, parse_sse
from ..transport._sse import Api, chat_request, from_sse, responses_request
from ..transport._websocket import from_websocket
from ._render import live_pipeline, response_json, stats_table


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("connect", help="stream a response from a WebSocket or OpenAI-compatible endpoint")
    parser.add_argument(
        "uri",
        help="ws:// or wss:// endpoint, with --sse an https://…/chat/completions URL, "
        "with --responses a wss:// or https:// …/v1/responses URL",
    )
    parser.add_argument("--token-env", help="environment variable holding the bearer token")
    parser.add_argument("--request", help="JSON object sent as the first message")
    parser.add_argument("--json", action="store_true", help="print the final response as JSON instead of live text")
    parser.add_argument("--timeout", type=float, default=30.0, help="idle timeout in seconds (default %(default)s)")
    sse = parser.add_argument_group("OpenAI-compatible streaming (DeepSeek, OpenAI, …)")
    sse.add_argument("--sse", action="store_true", help="POST a chat completion and read its Server-Sent Events")
    sse.add_argument(
        "--responses",
        action="store_true",
        help="create an OpenAI Responses answer: in WebSocket mode for a ws(s)://…/v1/responses URL, "
        "over SSE (a POST) for an http(s):// one",
    )
    sse.add_argument("--model", help="the model to ask, with --sse or --responses")
    sse.add_argument("--prompt", help="the user message (the input, with --responses)")
    sse.add_argument(
        "--background",
        action="store_true",
        help='with --responses: create it with "background": true, so that a dropped connection resumes',
    )


async def run(args: argparse.Namespace) -> int:
    token = None
    if args.token_env:
        if args.token_env not in os.environ:
            raise ValueError(f"environment variable {args.token_env} is not set")
        token = os.environ[args.token_env]
    request = orjson.loads(args.request) if args.request else None
    out = io.StringIO() if args.json else sys.stdout
    parser: Operator[Any, Chunk]
    if args.sse or args.responses:
        if request is None and not (args.model and args.prompt):
            option = "--responses" if args.responses else "--sse"
            raise ValueError(f"{option} needs --model and --prompt (or the whole body as --request)")
        if args.responses:
            extra = {"background": True} if args.background else {}
            body = request if request is not None else responses_request(args.model, args.prompt, **extra)
            parser = parse_responses()
        else:
            body = request if request is not None else chat_request(args.model, args.prompt)
            parser = parse_sse()
        api: Api = "responses" if args.responses else "chat"
        source: Observable[Any]
        if args.responses and args.uri.startswith(("ws://", "wss://")):
            source = from_websocket(args.uri, token=token, request=body, stream_timeout=args.timeout, api=api)
        else:
            source = from_sse(args.uri, token=token, request=body, stream_timeout=args.timeout, api=api)
    else:
        source = from_websocket(args.uri, token=token, request=request, stream_timeout=args.timeout)
        parser = parse()
    response: Response = await source.pipe(*live_pipeline(out, parse=parser))
    if args.json:
        print(response_json(response))
    else:
        print("\n")
        print(stats_table(response.stats), file=sys.stderr)
    return 0
