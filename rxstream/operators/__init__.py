"""The pipeline's operators; each is a plain ``reactivex`` operator usable in ``Observable.pipe``."""

from .accumulate import Delta, accumulate
from .backpressure_buffer import backpressure_buffer
from .finalize import finalize
from .parse import parse
from .parse_sse import parse_sse
from .persist import persist
from .reorder import reorder

__all__ = ["Delta", "accumulate", "backpressure_buffer", "finalize", "parse", "parse_sse", "persist", "reorder"]
