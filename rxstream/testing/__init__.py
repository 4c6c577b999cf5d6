"""rxstream.testing: prove your own pipelines and operators the way rxstream proves its own.

Hypothesis strategies for valid streams of every protocol with the Response each must give
(``chunk_streams``, ``chat_streams``, ``anthropic_streams``, ``responses_streams``),
``disorder`` for a stream as a network delivers it, oracles (``assert_outcome``,
``assert_same_outcome``), the operator contract check (``check_operator``), marble tests in
rxstream's vocabulary (``marbles``), and the builders of OpenAI Responses events. Needs the
``testing`` extra (``pip install 'rxstream[testing]'``, which brings hypothesis), imported
with the first name used; the pytest plugin (``rxstream.testing._plugin``, which pytest loads
by its entry point) needs only pytest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._contract import ContractViolation, check_operator
    from ._disorder import Disordered, disorder, within_window
    from ._marbles import marbles
    from ._oracles import (
        Failure,
        Outcome,
        assert_equal_outcomes,
        assert_outcome,
        assert_same_outcome,
        content_of,
        outcome_of,
        typed_error,
    )
    from ._responses_events import Events, FunctionCall, Item, Message, Reasoning, encode, response_events, sse_body
    from ._streams import (
        Stream,
        anthropic_streams,
        chat_streams,
        chunk_frame,
        chunk_streams,
        responses_streams,
        split_anywhere,
        streams,
    )

# Where each name lives: hypothesis is imported with the first name that needs it, not by the plugin.
_HOMES = {
    "ContractViolation": "_contract",
    "check_operator": "_contract",
    "Disordered": "_disorder",
    "disorder": "_disorder",
    "within_window": "_disorder",
    "marbles": "_marbles",
    "Failure": "_oracles",
    "Outcome": "_oracles",
    "assert_equal_outcomes": "_oracles",
    "assert_outcome": "_oracles",
    "assert_same_outcome": "_oracles",
    "content_of": "_oracles",
    "outcome_of": "_oracles",
    "typed_error": "_oracles",
    "Events": "_responses_events",
    "FunctionCall": "_responses_events",
    "Item": "_responses_events",
    "Message": "_responses_events",
    "Reasoning": "_responses_events",
    "encode": "_responses_events",
    "response_events": "_responses_events",
    "sse_body": "_responses_events",
    "Stream": "_streams",
    "anthropic_streams": "_streams",
    "chat_streams": "_streams",
    "chunk_frame": "_streams",
    "chunk_streams": "_streams",
    "responses_streams": "_streams",
    "split_anywhere": "_streams",
    "streams": "_streams",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'rxstream.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "ContractViolation",
    "check_operator",
    "Disordered",
    "disorder",
    "within_window",
    "marbles",
    "Failure",
    "Outcome",
    "assert_equal_outcomes",
    "assert_outcome",
    "assert_same_outcome",
    "content_of",
    "outcome_of",
    "typed_error",
    "Events",
    "FunctionCall",
    "Item",
    "Message",
    "Reasoning",
    "encode",
    "response_events",
    "sse_body",
    "Stream",
    "anthropic_streams",
    "chat_streams",
    "chunk_frame",
    "chunk_streams",
    "responses_streams",
    "split_anywhere",
    "streams",
]
