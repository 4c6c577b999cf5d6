"""The five operators composed: frames in, one ``Response`` out."""

from __future__ import annotations

import time

from . import operators as rxo
from .model import Response
from .operators.backpressure_buffer import Overflow
from .operators.finalize import Clock
from .operators.parse import Frame
from .stage import Operator, fuse


def pipeline(
    window: int = 64,
    max_pending: int = 5,
    overflow: Overflow = "block",
    clock: Clock = time.perf_counter,
) -> Operator[Frame, Response]:
    """parse → reorder → backpressure_buffer → accumulate → finalize, fused into one operator.

    The same stages as piping the five operators one by one, run inside one subscription.
    """
    return fuse(
        rxo.parse(),
        rxo.reorder(window),
        rxo.backpressure_buffer(max_pending, overflow),
        rxo.accumulate(),
        rxo.finalize(clock),
    )
