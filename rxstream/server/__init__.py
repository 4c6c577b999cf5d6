"""Reference servers that speak rxstream's protocols and inject faults, for demos, tests and benchmarks."""

from ._admission import ServerStats
from ._content import generate, load, split
from ._faults import Faults, Send, plan
from ._responses import ReferenceResponsesServer
from ._sse import ReferenceSSEServer
from ._websocket import ReferenceServer

__all__ = [
    "Faults",
    "ReferenceResponsesServer",
    "ReferenceSSEServer",
    "ReferenceServer",
    "Send",
    "ServerStats",
    "generate",
    "load",
    "plan",
    "split",
]
