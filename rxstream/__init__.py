"""rxstream: streamed LLM responses as a ReactiveX pipeline.

    response = await rxstream.from_frames(frames).pipe(rxstream.pipeline())
"""

from .decision import Retry
from .errors import (
    AuthenticationError,
    BufferOverflowError,
    ConnectionLostError,
    CorruptStoreError,
    FrameError,
    FrameTooLargeError,
    IncompleteStreamError,
    InvalidChunkError,
    InvalidJSONError,
    InvalidSessionError,
    RateLimitedError,
    StoreClosedError,
    StoreError,
    StoreUnavailableError,
    StreamError,
    StreamTimeoutError,
    TransportError,
    TurnNotSavedError,
)
from .flow import Demand
from .json_text import partial_json
from .model import Chunk, Part, Response, Stats, ToolCall, ToolCallFragment
from .pipeline import pipeline
from .retry import Clock, RetryPolicy, SystemClock, VirtualClock
from .sources import from_async_iterable, from_frames, to_async_iterable
from .sse import SSEDecoder, SSEEvent, sse_events
from .sse_source import chat_request, from_sse, sse_pipeline, stream_sse
from .stage import Link, Operator, Stage, fuse
from .store import ContextStore, SQLiteStore, Turn
from .transcript import Transcript
from .websocket import from_websocket, stream, stream_text

__all__ = [
    "ContextStore",
    "CorruptStoreError",
    "InvalidSessionError",
    "SQLiteStore",
    "StoreClosedError",
    "StoreError",
    "StoreUnavailableError",
    "Turn",
    "TurnNotSavedError",
    "AuthenticationError",
    "ConnectionLostError",
    "FrameTooLargeError",
    "RateLimitedError",
    "StreamTimeoutError",
    "TransportError",
    "BufferOverflowError",
    "Chunk",
    "Clock",
    "Demand",
    "FrameError",
    "IncompleteStreamError",
    "InvalidChunkError",
    "InvalidJSONError",
    "Link",
    "Operator",
    "Part",
    "partial_json",
    "Response",
    "Retry",
    "RetryPolicy",
    "Stage",
    "Stats",
    "SystemClock",
    "StreamError",
    "ToolCall",
    "ToolCallFragment",
    "Transcript",
    "VirtualClock",
    "from_async_iterable",
    "chat_request",
    "from_frames",
    "from_sse",
    "sse_pipeline",
    "stream_sse",
    "SSEDecoder",
    "SSEEvent",
    "sse_events",
    "from_websocket",
    "fuse",
    "pipeline",
    "stream",
    "stream_text",
    "to_async_iterable",
]
