"""The pipeline's operators; each is a plain ``reactivex`` operator usable in ``Observable.pipe``."""

from ._accumulate import Delta, accumulate
from ._backpressure_buffer import backpressure_buffer
from ._finalize import finalize
from ._parse import parse
from ._parse_responses import parse_responses
from ._parse_sse import parse_sse
from ._persist import persist
from ._publish import publish
from ._reorder import reorder

__all__ = [
    "Delta",
    "accumulate",
    "backpressure_buffer",
    "finalize",
    "parse",
    "parse_responses",
    "parse_sse",
    "persist",
    "publish",
    "reorder",
]
