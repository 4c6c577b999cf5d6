"""Request bodies, pure: the first request of a conversation, and the next one from its saved turns.

A model's turn records the body that was sent (``Turn.request``) and the response, a tool turn the
results of the tools it called; the next request is the last recorded body's messages (or input),
each later turn as the API takes it back, then what the caller adds: a new user message, or the
results of the tools the model called.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ..core._context_store import ToolResult, Turn
from ..core._values import Part, Response, ThinkingBlock, ToolCall

# A message as the API takes it: {"role": ..., "content": ...} and the fields of its kind.
Message = Mapping[str, Any]


def as_messages(prompt: str | Sequence[Message]) -> list[dict[str, Any]]:
    """A prompt as one user message; messages as they are (copied)."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [dict(message) for message in prompt]


def chat_request(model: str, prompt: str | Sequence[Message], **extra: Any) -> dict[str, Any]:
    """The body of a streamed chat completion, usage included in the stream.

    Args:
        model: The model to ask.
        prompt: One user message's text, or the messages as the API takes them
            (``[*chat_messages(turns), {"role": "user", "content": ...}]``), copied.
        extra: More fields of the body as they are (``tools``, ``temperature``, ...).
    """
    return {
        "model": model,
        "messages": as_messages(prompt),
        "stream": True,
        "stream_options": {"include_usage": True},
        **extra,
    }


def responses_request(model: str, input: str | Sequence[Message], **extra: Any) -> dict[str, Any]:
    """The body of a streamed OpenAI Responses request.

    Args:
        model: The model to ask.
        input: The input as a string, or a list of input items (messages, ``function_call_output``
            items: ``responses_continuation(turns, ...)["input"]``), copied.
        extra: More fields of the body as they are: ``previous_response_id``, ``store=False``,
            ``background=True`` (resumable after a drop), ``tools``, ...
    """
    return {
        "model": model,
        "input": input if isinstance(input, str) else [dict(item) for item in input],
        "stream": True,
        **extra,
    }


def anthropic_request(model: str, prompt: str | Sequence[Message], *, max_tokens: int, **extra: Any) -> dict[str, Any]:
    """The body of a streamed Anthropic Messages request.

    Args:
        model: The model to ask.
        prompt: One user message's text, or the messages as the API takes them
            (``[*anthropic_messages(turns), ...]``), copied.
        max_tokens: The most tokens the answer may take (the API requires it).
        extra: More fields of the body as they are (``thinking``, ``tools``, ``system``, ...).
    """
    return {"model": model, "max_tokens": max_tokens, "messages": as_messages(prompt), "stream": True, **extra}


def replayed(turns: Sequence[Turn], key: str) -> tuple[list[dict[str, Any]], Sequence[Turn]]:
    """The ``key`` list of the last turn that recorded its request, and the turns from that one on."""
    for at in range(len(turns) - 1, -1, -1):
        request = turns[at].request
        if request is not None and isinstance(request.get(key), str | list):
            return as_messages(request[key]), turns[at:]
    return [], turns


def sent_calls(response: Response) -> tuple[ToolCall, ...]:
    """The tool calls that go back with ``response``: none from a response cut short, whose last
    call's arguments may be cut too and which no tool answered."""
    return response.tool_calls if response.complete else ()


def unanswered_tool_calls(turns: Sequence[Turn]) -> tuple[ToolCall, ...]:
    """The tool calls of the session's last response that no tool turn after it answers: what an
    agent loop stopped between the answer and saving its tools' results runs on resuming."""
    answered: set[str] = set()
    for turn in reversed(turns):
        if turn.role == "assistant":
            return tuple(call for call in sent_calls(turn.response) if call.id not in answered)
        answered.update(result.call_id for result in turn.tool_results)
    return ()


# --- OpenAI-compatible chat completions --------------------------------------------------------


def chat_assistant_message(response: Response, *, keep_reasoning: bool = False) -> dict[str, Any]:
    """``response`` as the assistant message of the next request: its text, tool calls and refusal.

    The reasoning is left out unless ``keep_reasoning``: DeepSeek answers 400 when
    ``reasoning_content`` comes back in the messages
    (https://api-docs.deepseek.com/guides/reasoning_model).
    """
    message: dict[str, Any] = {"role": "assistant", "content": response.text or None}
    calls = sent_calls(response)
    if calls:
        message["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in calls
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
    """The messages so far: the last recorded request's, then each later turn: a response as an
    assistant message (left out when it has nothing to send: an answer cut short before any
    text), tool results as ``tool`` messages."""
    messages, later = replayed(turns, "messages")
    for turn in later:
        if turn.role == "tool":
            messages += [chat_tool_result(result.call_id, result.content) for result in turn.tool_results]
            continue
        message = chat_assistant_message(turn.response, keep_reasoning=keep_reasoning)
        if message["content"] is not None or "tool_calls" in message or "refusal" in message:
            messages.append(message)  # not an assistant message of nothing, which the API refuses
    return messages


# --- Anthropic Messages ------------------------------------------------------------------------


def anthropic_assistant_message(response: Response) -> dict[str, Any]:
    """``response`` as the assistant message of the next request: its content blocks in the order
    they came (thinking with its signature, redacted_thinking as its data, text, tool_use), as a
    tool-use loop must send them back
    (https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#preserving-thinking-blocks:
    "the entire sequence of consecutive thinking or redacted_thinking blocks must match the outputs
    generated by the model during the original request; you cannot rearrange or modify the
    sequence of these blocks").

    A thinking block without its signature (the answer was cut short inside it, or the thinking
    came from another API) is left out: the API refuses it without one, and takes an assistant
    turn without its thinking ("you can omit thinking and redacted_thinking blocks from prior
    assistant role turns").
    """
    content: list[dict[str, Any]] = []
    for block in ordered_blocks(response):
        if isinstance(block, str):
            content.append({"type": "text", "text": block})
        elif isinstance(block, ToolCall):
            content.append({"type": "tool_use", "id": block.id, "name": block.name, "input": block.parsed()})
        elif block.data is not None:
            content.append({"type": "redacted_thinking", "data": block.data})
        elif block.signature is not None:
            content.append({"type": "thinking", "thinking": block.text, "signature": block.signature})
    return {"role": "assistant", "content": content}


def ordered_blocks(response: Response) -> list[ThinkingBlock | ToolCall | str]:
    """The response's thinking blocks, tool calls and runs of text in the order they came.

    Thinking and tool calls are ordered by the stream's block index (blocks without one first,
    as they came); each run of text goes where ``parts`` puts it among the thinking, after the
    last thinking block with text that began before it and any textless ones (redacted) right
    after that (after all the thinking when ``parts`` has none of it). Where no thinking lies
    between a text and a tool call, the text goes first, as a model writes "Let me check."
    before the call.
    """
    blocks: list[ThinkingBlock | ToolCall] = sorted(
        [*response.thinking, *sent_calls(response)], key=lambda block: -1 if block.index is None else block.index
    )  # sorted() keeps the order of equal keys: the blocks without an index as they came
    textless = [block for block in response.thinking if not block.text]  # redacted, or a signature alone
    starts: dict[int, int] = {}  # where each thinking block with text begins in the reasoning, by its place in blocks
    reasoning = 0
    for place, block in enumerate(blocks):
        if isinstance(block, ThinkingBlock) and block.text:
            starts[place] = reasoning
            reasoning += len(block.text)
    if any(part.kind == "reasoning" for part in response.parts):
        runs = text_runs(response.parts)
    else:  # a response built without them: its text after all its thinking
        runs = [(reasoning, response.text)] if response.text else []
    ordered: list[ThinkingBlock | ToolCall | str] = []
    place = 0
    for before, text in runs:
        after = max((at + 1 for at, start in starts.items() if start < before), default=0)
        while after < len(blocks) and blocks[after] in textless:
            after += 1
        ordered += blocks[place:after]
        ordered.append(text)
        place = max(place, after)
    return ordered + blocks[place:]


def text_runs(parts: Sequence[Part]) -> list[tuple[int, str]]:
    """Each run of text in ``parts`` and how much reasoning came before it (texts apart only by an image joined)."""
    runs: list[tuple[int, str]] = []
    reasoning = 0
    for part in parts:
        if part.kind == "reasoning":
            reasoning += len(part.value)
        elif part.kind == "text" and part.value:
            if runs and runs[-1][0] == reasoning:
                runs[-1] = (reasoning, runs[-1][1] + part.value)
            else:
                runs.append((reasoning, part.value))
    return runs


def anthropic_tool_result(tool_use_id: str, content: str, *, is_error: bool = False) -> dict[str, Any]:
    """The user message that answers tool use ``tool_use_id`` with ``content``."""
    return {"role": "user", "content": [tool_result_block(ToolResult(tool_use_id, content, is_error))]}


def tool_result_block(result: ToolResult) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": result.call_id, "content": result.content}
    if result.is_error:
        block["is_error"] = True
    return block


def anthropic_messages(turns: Sequence[Turn]) -> list[dict[str, Any]]:
    """The messages so far: the last recorded request's, then each later turn: a response as an
    assistant message (left out when it has nothing to send), a tool turn as one user message of
    ``tool_result`` blocks, all the results of one response together, as the API requires
    (https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/implement-tool-use#handling-tool-use-and-tool-result-content-blocks)."""
    messages, later = replayed(turns, "messages")
    for turn in later:
        if turn.role == "tool":
            messages.append({"role": "user", "content": [tool_result_block(result) for result in turn.tool_results]})
            continue
        message = anthropic_assistant_message(turn.response)
        if message["content"]:  # only a final assistant message may be empty
            messages.append(message)
    return messages


# --- OpenAI Responses --------------------------------------------------------------------------


def responses_output_items(response: Response) -> list[dict[str, Any]]:
    """``response`` as input items, for a server that keeps no state (``store: false``), in the
    order they came: its reasoning items as they came, its text as an assistant message, its
    function calls. Reasoning models need the reasoning items back before the calls they led to
    (https://platform.openai.com/docs/guides/reasoning#keeping-reasoning-items-in-context); those
    of a response cut short stay out, as its calls do, since the API refuses a reasoning item
    without the item that followed it."""
    items: list[dict[str, Any]] = []
    for block in ordered_blocks(response):
        if isinstance(block, str):
            items.append({"role": "assistant", "content": block})
        elif isinstance(block, ToolCall):
            items.append(
                {"type": "function_call", "call_id": block.id, "name": block.name, "arguments": block.arguments}
            )
        elif block.item is not None and response.complete:
            items.append(orjson.loads(block.item))
    return items


def responses_tool_result(call_id: str, output: str) -> dict[str, Any]:
    """The input item that answers function call ``call_id`` with ``output``."""
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def responses_items(turn: Turn) -> list[dict[str, Any]]:
    """A turn as input items: a response's output items, or a tool turn's ``function_call_output`` items."""
    if turn.role == "tool":
        return [responses_tool_result(result.call_id, result.content) for result in turn.tool_results]
    return responses_output_items(turn.response)


def responses_continuation(turns: Sequence[Turn], input: Sequence[Message], *, stateful: bool = True) -> dict[str, Any]:
    """The fields that continue the conversation with ``input`` (new messages or tool results).

    ``stateful``: the server kept the last response, so ``previous_response_id`` names it and
    the input is only what is new: the results of the tool turns saved since, then ``input``
    (https://platform.openai.com/docs/guides/conversation-state); otherwise the whole
    conversation goes as input: the recorded input, each later turn's items, then ``input``.
    """
    new = [dict(item) for item in input]
    if stateful:
        for at in range(len(turns) - 1, -1, -1):
            if turns[at].role == "assistant":
                if turns[at].response.id is not None:
                    since = [item for turn in turns[at + 1 :] for item in responses_items(turn)]
                    return {"previous_response_id": turns[at].response.id, "input": since + new}
                break
    items, later = replayed(turns, "input")
    for turn in later:
        items += responses_items(turn)
    return {"input": items + new}
