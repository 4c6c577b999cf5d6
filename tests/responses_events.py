"""OpenAI Responses stream events built from what the response should hold: rxstream.testing's builders."""

from rxstream.testing import Events, FunctionCall, Item, Message, Reasoning, encode, response_events, sse_body

__all__ = ["Events", "FunctionCall", "Item", "Message", "Reasoning", "encode", "response_events", "sse_body"]
