"""Request bodies, pure: the first request of a conversation, and the next one from its saved turns.

A turn records the body that was sent (``Turn.request``) and the response; the next request is
the last recorded body's messages (or input), each later response as the API takes it back,
then what the caller adds: a new user message, or the results of the tools the model called.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..core._context_store import Turn
from ..core._values import Response

# A message as the API takes it: {"role": ..., "content": ...} and the fields of its kind.
Message = Mapping[str, Any]


def as_messages(prompt: str | Sequence[Message]) -> list[dict[str, Any]]:
    """A prompt as one user message; messages as they are (copied)."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [dict(message) for message in prompt]


def chat_request(model: str, prompt: str | Sequence[Message], **extra: Any) -> dict[str, Any]:
    """The body of a streamed chat completion: ``prompt`` as one user message, or a list of
    messages (``chat_messages(turns)`` and the next ones), usage included in the stream."""
    return {
        "model": model,
        "messages": as_messages(prompt),
        "stream": True,
        "stream_options": {"include_usage": True},
        **extra,
    }


def responses_request(model: str, input: str | Sequence[Message], **extra: Any) -> dict[str, Any]:
    """The body of a streamed OpenAI Responses request: ``input`` a string or a list of input items;
    ``background=True`` makes it resumable after a drop."""
    return {
        "model": model,
        "input": input if isinstance(input, str) else [dict(item) for item in input],
        "stream": True,
        **extra,
    }


def anthropic_request(model: str, prompt: str | Sequence[Message], *, max_tokens: int, **extra: Any) -> dict[str, Any]:
    """The body of a streamed Anthropic Messages request (``max_tokens`` is required there)."""
    return {"model": model, "max_tokens": max_tokens, "messages": as_messages(prompt), "stream": True, **extra}


def replayed(turns: Sequence[Turn], key: str) -> tuple[list[dict[str, Any]], Sequence[Response]]:
    """The ``key`` list of the last turn that recorded its request, and the responses from that turn on."""
    for at in range(len(turns) - 1, -1, -1):
        request = turns[at].request
        if request is not None and isinstance(request.get(key), str | list):
            return as_messages(request[key]), [turn.response for turn in turns[at:]]
    return [], [turn.response for turn in turns]


# --- OpenAI-compatible chat completions --------------------------------------------------------


def chat_assistant_message(response: Response, *, keep_reasoning: bool = False) -> dict[str, Any]:
    """``response`` as the assistant message of the next request: its text, tool calls and refusal.

    The reasoning is left out unless ``keep_reasoning``: DeepSeek answers 400 when
    ``reasoning_content`` comes back in the messages
    (https://api-docs.deepseek.com/guides/reasoning_model).
    """
    message: dict[str, Any] = {"role": "assistant", "content": response.text or None}
    if response.tool_calls:
        message["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in response.tool_calls
        ]
    if response.refusal is not None:
        message["refusal"] = response.refusal
    if keep_reasoning and response.reasoning:
        message["reasoning_content"] = response.reasoning
    return message


def chat_tool_result(tool_call_id: str, content: str) -> dict[str, Any]:
    """The message that answers tool call ``tool_call_id`` with ``content``."""
    return {"role": "tool", "tool_call_id": tool_call_id, "content": content}


def chat_messages(turns: Sequence[Turn], *, keep_reasoning: bool = False) -> list[dict[str, Any]]:
    """The messages so far: the last recorded request's, then each later response as an assistant message."""
    messages, responses = replayed(turns, "messages")
    return messages + [chat_assistant_message(response, keep_reasoning=keep_reasoning) for response in responses]


# --- Anthropic Messages ------------------------------------------------------------------------


def anthropic_assistant_message(response: Response) -> dict[str, Any]:
    """``response`` as the assistant message of the next request: its content blocks in the order
    Anthropic sends them, thinking first (each with its signature; a redacted block as its data),
    then the text, then the tool uses, as a tool-use loop must send them back
    (https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#preserving-thinking-blocks).
    A thinking block without its signature (a response cut short) is left out: the API refuses it.
    """
    content: list[dict[str, Any]] = []
    for block in response.thinking:
        if block.data is not None:
            content.append({"type": "redacted_thinking", "data": block.data})
        elif block.signature is not None:
            content.append({"type": "thinking", "thinking": block.text, "signature": block.signature})
    if response.text:
        content.append({"type": "text", "text": response.text})
    for call in response.tool_calls:
        content.append({"type": "tool_use", "id": call.id, "name": call.name, "input": call.parsed()})
    return {"role": "assistant", "content": content}


def anthropic_tool_result(tool_use_id: str, content: str, *, is_error: bool = False) -> dict[str, Any]:
    """The user message that answers tool use ``tool_use_id`` with ``content``."""
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_use_id, "content": content}
    if is_error:
        result["is_error"] = True
    return {"role": "user", "content": [result]}


def anthropic_messages(turns: Sequence[Turn]) -> list[dict[str, Any]]:
    """The messages so far: the last recorded request's, then each later response as an assistant message."""
    messages, responses = replayed(turns, "messages")
    return messages + [anthropic_assistant_message(response) for response in responses]


# --- OpenAI Responses --------------------------------------------------------------------------


def responses_output_items(response: Response) -> list[dict[str, Any]]:
    """``response`` as input items, for a server that keeps no state (``store: false``): its text
    as an assistant message, then its function calls."""
    items: list[dict[str, Any]] = []
    if response.text:
        items.append({"role": "assistant", "content": response.text})
    for call in response.tool_calls:
        items.append({"type": "function_call", "call_id": call.id, "name": call.name, "arguments": call.arguments})
    return items


def responses_tool_result(call_id: str, output: str) -> dict[str, Any]:
    """The input item that answers function call ``call_id`` with ``output``."""
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def responses_continuation(turns: Sequence[Turn], input: Sequence[Message], *, stateful: bool = True) -> dict[str, Any]:
    """The fields that continue the conversation with ``input`` (new messages or tool results).

    ``stateful``: the server kept the last response, so ``previous_response_id`` names it and
    ``input`` is only what is new (https://platform.openai.com/docs/guides/conversation-state);
    otherwise the whole conversation goes as input: the recorded input, the responses' output
    items, then ``input``.
    """
    new = [dict(item) for item in input]
    if stateful and turns and turns[-1].response.id is not None:
        return {"previous_response_id": turns[-1].response.id, "input": new}
    items, responses = replayed(turns, "input")
    for response in responses:
        items += responses_output_items(response)
    return {"input": items + new}
