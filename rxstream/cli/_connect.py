"""``rxstream connect URI``: stream from any endpoint, live, or as JSON."""

from __future__ import annotations

import argparse
import io
import sys
from typing import Any

from reactivex import Observable

from ..core._stage import Operator
from ..core._values import Chunk
from ..operators import parse, parse_responses, parse_sse
from ..operators._accumulate import Delta
from ..protocol._requests import chat_request, responses_request
from ..transport._calls import ResponseStream, response_stream
from ..transport._sse import from_sse
from ..transport._websocket import from_websocket
from . import _options
from ._history import add_store_options, open_store, where
from ._live import Keeping, read_live
from ._render import LiveText, chat_table, response_json, retry_reporter, stats_table


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("connect", help="stream a response from a WebSocket or OpenAI-compatible endpoint")
    parser.add_argument(
        "uri",
        help="ws:// or wss:// endpoint, with --sse an https://…/chat/completions URL, "
        "with --responses a wss:// or https:// …/v1/responses URL",
    )
    _options.add_token_env(parser)
    parser.add_argument("--request", type=_options.json_object, help="JSON object sent as the first message (the body)")
    parser.add_argument(
        "--json", action="store_true", help="print the response (the partial one on failure) as JSON on stdout"
    )
    parser.add_argument(
        "--timeout", type=_options.timeout, default=30.0, help="idle timeout in seconds (default %(default)s)"
    )
    parser.add_argument(
        "--content-timeout",
        type=_options.timeout,
        default=600.0,
        help="seconds without content, keep-alives not counting (default %(default)s)",
    )
    parser.add_argument("--session", help="save the turn (the partial one too) under this session id")
    add_store_options(parser, "with --session, save the turn in this session database")
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


def check(args: argparse.Namespace) -> None:
    """What argparse cannot check alone: options that go together."""
    if args.sse and args.responses:
        args.usage_error("--sse and --responses are two formats: give one")
    if (args.sse or args.responses) and args.request is None and not (args.model and args.prompt):
        option = "--responses" if args.responses else "--sse"
        args.usage_error(f"{option} needs --model and --prompt (or the whole body as --request)")


async def run(args: argparse.Namespace) -> int:
    live = LiveText(io.StringIO() if args.json else sys.stdout)
    deltas = deltas_of(args, live)
    chat = args.sse or args.responses
    if args.session is None:
        outcome = await read_live("connect", deltas, live)
    else:
        async with open_store(args, read_only=False) as store:
            outcome = await read_live("connect", deltas, live, Keeping(store, args.session, where(store)))
    if args.json:
        print(response_json(outcome.response, outcome.error))
    elif outcome.error is None:
        live.end_line()
        print(file=sys.stderr)
        table = chat_table(outcome.response, outcome.first_token) if chat else stats_table(outcome.response.stats)
        print(table, file=sys.stderr)
    if outcome.error is not None:
        raise outcome.error
    return 0


def deltas_of(args: argparse.Namespace, live: LiveText) -> ResponseStream[Delta]:
    """The stream the options ask for, read delta by delta."""
    parser: Operator[Any, Chunk] = parse()
    body, api = args.request, "chat"
    if args.responses:
        extra = {"background": True} if args.background else {}
        body = body if body is not None else responses_request(args.model, args.prompt, **extra)
        parser, api = parse_responses(), "responses"
    elif args.sse:
        body = body if body is not None else chat_request(args.model, args.prompt)
        parser = parse_sse()
    options: dict[str, Any] = {
        "token": args.token,
        "request": body,
        "stream_timeout": args.timeout,
        "content_timeout": args.content_timeout,
        "on_retry": retry_reporter("connect", live),
        "api": api,
    }
    # --sse is HTTP and the chunk protocol WebSocket whatever the URL says (the source refuses the wrong
    # scheme, with a hint); the scheme picks the Responses transport.
    over_http = args.sse or (args.responses and not args.uri.startswith(("ws://", "wss://")))
    source: Observable[Any] = from_sse(args.uri, **options) if over_http else from_websocket(args.uri, **options)
    deltas: ResponseStream[Delta] = response_stream(source, parser, text_only=False)
    return deltas
