"""Whether a WebSocket connection needs websockets to look for a proxy."""

from __future__ import annotations

import os
import urllib.request
from typing import Literal


def environment_proxy() -> Literal[True] | None:
    """``True`` (websockets resolves the proxy) unless nothing can name one: then ``None``.

    websockets reads the whole environment four times for ``proxy=True``, about 0.1 ms a
    connection. Where only the environment names proxies (not on macOS or Windows, which
    have system settings) and no variable ends in ``_proxy`` in any case, it would find
    none, and one pass over the names says so for a tenth of that.
    """
    if urllib.request.getproxies is urllib.request.getproxies_environment and not any(
        name[-6:].lower() == "_proxy" for name in os.environ
    ):
        return None
    return True
