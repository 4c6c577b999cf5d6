"""rxstream: streamed LLM responses as a ReactiveX pipeline.

    response = await rxstream.from_frames(frames).pipe(rxstream.pipeline())

The network sources and the stores are imported when first used, so that
``import rxstream`` costs little more than reactivex and orjson.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .core._context_store import ContextStore, ToolResult, Turn
from .core._demand import Demand
from .core._errors import (
    APIStatusError,
    AuthenticationError,
    BufferOverflowError,
    ConnectionLostError,
    CorruptStoreError,
    FrameError,
    FrameTooLargeError,
    IncompleteStreamError,
    InvalidChunkError,
    InvalidEndpointError,
    InvalidJSONError,
    InvalidSessionError,
    InvalidTurnError,
    PublishFailedError,
    RateLimitedError,
    ResponseFailedError,
    StoreClosedError,
    StoreError,
    StoreUnavailableError,
    StreamError,
    StreamTimeoutError,
    TransportError,
    TurnNotSavedError,
    UnexpectedContentTypeError,
    WriterFailedError,
    WriterLostError,
)
from .core._json_text import partial_json
from .core._stage import Operator, Shared, Stage, fuse
from .core._stream_sink import StreamEntry, StreamSink
from .core._transcript import Transcript
from .core._values import Chunk, Part, Response, Stats, ThinkingBlock, ToolCall, ToolCallFragment, Usage
from .operators._accumulate import Delta
from .operators._pipeline import pipeline, responses_pipeline, sse_pipeline
from .protocol._decision import Retry, RetryPolicy
from .protocol._requests import (
    anthropic_assistant_message,
    anthropic_messages,
    anthropic_request,
    anthropic_tool_result,
    chat_assistant_message,
    chat_messages,
    chat_request,
    chat_tool_result,
    responses_continuation,
    responses_output_items,
    responses_request,
    responses_tool_result,
    unanswered_tool_calls,
)
from .protocol._sse import SSEDecoder, SSEEncoder, SSEEvent, sse_events
from .transport._clock import Clock, SystemClock, VirtualClock
from .transport._sources import AsyncStream, from_async_iterable, from_frames, to_async_iterable

if TYPE_CHECKING:
    from .server._relay import relay_app
    from .store._postgres import PostgresStore
    from .store._sqlite import SQLiteStore
    from .transport._calls import ResponseStream, stream, stream_deltas, stream_responses, stream_sse, stream_text
    from .transport._redis import RedisStreamSink, from_redis_stream
    from .transport._relay_sse import relay_sse
    from .transport._sse import from_sse
    from .transport._websocket import from_websocket

__version__ = "0.1.0"

# Where each lazily imported name lives: httpx, websockets, sqlite3, psycopg and redis load with the first use.
_LAZY = {
    "from_websocket": "transport._websocket",
    "stream": "transport._calls",
    "stream_deltas": "transport._calls",
    "stream_text": "transport._calls",
    "stream_responses": "transport._calls",
    "stream_sse": "transport._calls",
    "ResponseStream": "transport._calls",
    "from_sse": "transport._sse",
    "SQLiteStore": "store._sqlite",
    "PostgresStore": "store._postgres",
    "RedisStreamSink": "transport._redis",
    "from_redis_stream": "transport._redis",
    "relay_sse": "transport._relay_sse",
    "relay_app": "server._relay",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rxstream' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # the next lookup finds it without coming here
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "__version__",
    "APIStatusError",
    "AsyncStream",
    "AuthenticationError",
    "BufferOverflowError",
    "anthropic_assistant_message",
    "anthropic_messages",
    "anthropic_request",
    "anthropic_tool_result",
    "chat_assistant_message",
    "chat_messages",
    "chat_request",
    "chat_tool_result",
    "responses_continuation",
    "responses_output_items",
    "responses_tool_result",
    "unanswered_tool_calls",
    "Chunk",
    "Clock",
    "ConnectionLostError",
    "ContextStore",
    "CorruptStoreError",
    "Delta",
    "Demand",
    "FrameError",
    "FrameTooLargeError",
    "from_async_iterable",
    "from_frames",
    "from_redis_stream",
    "from_sse",
    "from_websocket",
    "fuse",
    "IncompleteStreamError",
    "InvalidChunkError",
    "InvalidEndpointError",
    "InvalidJSONError",
    "InvalidSessionError",
    "InvalidTurnError",
    "Operator",
    "Part",
    "PostgresStore",
    "partial_json",
    "pipeline",
    "PublishFailedError",
    "RateLimitedError",
    "RedisStreamSink",
    "relay_app",
    "relay_sse",
    "Response",
    "ResponseFailedError",
    "ResponseStream",
    "responses_pipeline",
    "responses_request",
    "Retry",
    "RetryPolicy",
    "Shared",
    "SQLiteStore",
    "sse_events",
    "sse_pipeline",
    "SSEDecoder",
    "SSEEncoder",
    "SSEEvent",
    "Stage",
    "Stats",
    "StoreClosedError",
    "StoreError",
    "StoreUnavailableError",
    "stream",
    "stream_deltas",
    "stream_responses",
    "stream_sse",
    "stream_text",
    "StreamEntry",
    "StreamError",
    "StreamSink",
    "StreamTimeoutError",
    "SystemClock",
    "to_async_iterable",
    "ThinkingBlock",
    "ToolCall",
    "ToolResult",
    "ToolCallFragment",
    "Usage",
    "Transcript",
    "TransportError",
    "Turn",
    "TurnNotSavedError",
    "UnexpectedContentTypeError",
    "VirtualClock",
    "WriterFailedError",
    "WriterLostError",
]
