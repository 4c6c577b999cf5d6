"""The reference OpenAI Responses endpoint, over SSE and in WebSocket mode, with the same seeded faults as the others.

``POST /v1/responses`` (or ``/responses``) creates a response and streams its events: created,
in progress, the reasoning summary and the message text as deltas (each item added and done
around them), and ``response.completed`` with the usage, each event numbered by
``sequence_number`` from 0. A response created with ``"background": true`` is kept, and
``GET /v1/responses/<id>?stream=true&starting_after=<n>`` streams its events after ``n`` again.
On the same port and path, a WebSocket handshake opens WebSocket mode, as the openai SDK's
``responses.connect()`` uses it: a ``{"type": "response.create", …}`` message creates a response
and each event comes as one text message (resumable by the same GET).

Each event carries its own number, so unlike the chat endpoint every fault applies: events
reordered within a window, sent twice, left out (a gap that only a resumption fills), besides
aborts, stalls, malformed and oversized events, and 429s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from ._content import split
from ._faults import Faults, Send, plan
from ._sse import ENCODER, MODEL, SSEEndpoint
from ._websocket_frames import close_frame, handshake, read_message, text_frame

ROUTES = ("/v1/responses", "/responses")


class ReferenceResponsesServer(SSEEndpoint):
    """Streams ``text`` (or the given pieces) as OpenAI Responses events to clients presenting ``token``.

    With ``reasoning`` a reasoning item comes first, its summary in deltas. Use as
    ``async with ReferenceResponsesServer(text) as server:``, and ``server.url`` as the endpoint
    (``server.websocket_url`` in WebSocket mode).
    """

    MALFORMED = b'{"type": "response.output_text.delta", "sequence_number": '

    def __init__(
        self,
        text: str | Sequence[str],
        *,
        chunk_size: int = 64,
        token: str | None = None,
        faults: Faults = Faults(),
        qps: float = 50.0,
        reasoning: str = "",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(token=token, faults=faults, qps=qps, host=host, port=port)
        self.background: set[str] = set()  # the ids of the responses that can be resumed
        self._items: list[dict[str, Any]] = []  # the output, as response.completed gives it
        self._body: list[bytes] = []  # the events between in_progress and completed, the same for every response
        if reasoning:
            self._add_reasoning(split(reasoning, chunk_size))
        self._add_message(split(text, chunk_size))
        self.count = len(self._body) + 3
        self.usage = {"input_tokens": 7, "output_tokens": len(self._body), "total_tokens": 7 + len(self._body)}

    def __repr__(self) -> str:
        return f"ReferenceResponsesServer({self.url if self._server else 'not started'}, {self.count} events, {self.faults})"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1/responses"

    @property
    def websocket_url(self) -> str:
        """The same endpoint in WebSocket mode."""
        return f"ws://{self.host}:{self.port}/v1/responses"

    def _add(self, kind: str, **fields: Any) -> None:
        """One more event of the body, numbered after created, in_progress and those before it."""
        self._body.append(sse_event(len(self._body) + 2, kind, **fields))

    def _add_item(self, item: dict[str, Any], done: dict[str, Any], deltas: list[tuple[str, dict[str, Any]]]) -> None:
        index = len(self._items)
        self._add("response.output_item.added", output_index=index, item=item)
        for kind, fields in deltas:
            self._add(kind, item_id=item["id"], output_index=index, **fields)
        self._add("response.output_item.done", output_index=index, item=done)
        self._items.append(done)

    def _add_reasoning(self, pieces: list[str]) -> None:
        item = {"type": "reasoning", "id": f"rs_{len(self._items)}", "summary": []}
        summary = {"type": "summary_text", "text": "".join(pieces)}
        at = {"summary_index": 0}
        deltas = [("response.reasoning_summary_part.added", {**at, "part": {**summary, "text": ""}})]
        deltas += [("response.reasoning_summary_text.delta", {**at, "delta": piece}) for piece in pieces]
        deltas += [("response.reasoning_summary_text.done", {**at, "text": summary["text"]})]
        deltas += [("response.reasoning_summary_part.done", {**at, "part": summary})]
        self._add_item(item, {**item, "summary": [summary]}, deltas)

    def _add_message(self, pieces: list[str]) -> None:
        item = {"type": "message", "id": f"msg_{len(self._items)}", "role": "assistant", "status": "in_progress"}
        part = {"type": "output_text", "text": "".join(pieces), "annotations": []}
        at = {"content_index": 0}
        deltas = [("response.content_part.added", {**at, "part": {**part, "text": ""}})]
        deltas += [("response.output_text.delta", {**at, "delta": piece, "logprobs": []}) for piece in pieces]
        deltas += [("response.output_text.done", {**at, "text": part["text"], "logprobs": []})]
        deltas += [("response.content_part.done", {**at, "part": part})]
        self._add_item({**item, "content": []}, {**item, "status": "completed", "content": [part]}, deltas)

    def events(self, response_id: str, background: bool = False) -> list[bytes]:
        """The events of response ``response_id`` as its SSE body sends them, in order, one bytes each."""

        def response(status: str, **fields: Any) -> dict[str, Any]:
            return {
                "id": response_id,
                "object": "response",
                "created_at": 1672531200,
                "model": MODEL,
                "status": status,
                "background": background,
                "output": [],
                **fields,
            }

        return [
            sse_event(0, "response.created", response=response("in_progress")),
            sse_event(1, "response.in_progress", response=response("in_progress")),
            *self._body,
            sse_event(
                self.count - 1,
                "response.completed",
                response=response("completed", output=self._items, usage=self.usage),
            ),
        ]

    async def _answer(
        self, writer: asyncio.StreamWriter, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> None:
        where = urlsplit(target)
        query = parse_qs(where.query)
        route, _, response_id = where.path.rpartition("/")
        posted = method == "POST" and where.path in ROUTES
        if not posted and not (method == "GET" and route in ROUTES and query.get("stream") == ["true"]):
            return self._status(writer, "404 Not Found", b'{"error": {"message": "not found"}}')
        if self._refused(writer, headers):
            return
        if not posted:
            if response_id not in self.background:
                return self._status(writer, "404 Not Found", b'{"error": {"message": "no such background response"}}')
            after = query.get("starting_after", ["-1"])[0]
            start = int(after) + 1 if after.isdigit() else 0
        else:
            start = 0
            try:
                request = orjson.loads(body) if body else {}
            except orjson.JSONDecodeError:
                return self._status(writer, "400 Bad Request", b'{"error": {"message": "the body is not JSON"}}')
            response_id = self._create(request)
        self._stream_head(writer)
        steps = self._plan(start)
        await self._play(writer, steps, self.events(response_id, response_id in self.background))

    async def _upgrade(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: str, headers: dict[str, str]
    ) -> None:
        """WebSocket mode: after the handshake, a ``response.create`` message creates the response,
        and each of its events comes as one text message; the server closes (1000) after the last."""
        if urlsplit(target).path not in ROUTES or "sec-websocket-key" not in headers:
            return self._status(writer, "404 Not Found", b'{"error": {"message": "not found"}}')
        if self._refused(writer, headers):
            return
        writer.write(handshake(headers["sec-websocket-key"]))
        try:
            request = orjson.loads(await read_message(reader))
        except orjson.JSONDecodeError:
            request = None
        if type(request) is not dict or request.get("type") != "response.create":
            error = {"type": "error", "code": "invalid_request", "message": "expected a response.create message"}
            writer.write(text_frame(orjson.dumps(error)) + close_frame(1003, "expected response.create"))
            return
        response_id = self._create(request)
        events = [text_frame(sse_data_of(event)) for event in self.events(response_id, response_id in self.background)]
        if await self._play(writer, self._plan(0), events, text_frame):
            writer.write(close_frame())
            await writer.drain()

    def _create(self, request: object) -> str:
        """A new response for ``request`` (kept when it asks for ``"background": true``): its id."""
        response_id = f"resp_ref{self.stats.created}"
        self.stats.created += 1
        if type(request) is dict and request.get("background") is True:
            self.background.add(response_id)
        return response_id

    def _plan(self, start: int) -> Iterable[Send]:
        """The steps of the next connection, which streams the events after ``start - 1``."""
        number = self.stats.connections
        self.stats.connections += 1
        self.stats.resumed_from = start
        return plan(self.count, self.faults, number, min(start, self.count))


def sse_data_of(event: bytes) -> bytes:
    """The JSON of an event ``sse_event`` made: what a WebSocket message carries."""
    return event[event.index(b"\ndata: ") + 7 : -2]


def sse_event(number: int, kind: str, **fields: Any) -> bytes:
    """Event ``number`` of type ``kind`` as the API's SSE body has it: an event line naming the type, then the data."""
    event = {"type": kind, "sequence_number": number, **fields}
    return ENCODER.encode(orjson.dumps(event).decode(), event=kind)
