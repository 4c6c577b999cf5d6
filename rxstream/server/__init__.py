"""Reference servers that speak rxstream's protocols and inject faults, for demos, tests and benchmarks."""

from .admission import ServerStats
from .content import generate, load, split
from .faults import Faults, Send, plan
from .sse import ReferenceSSEServer
from .websocket import ReferenceServer

__all__ = ["Faults", "ReferenceSSEServer", "ReferenceServer", "Send", "ServerStats", "generate", "load", "plan", "split"]
