"""``rxstream chat``, typed at in a pseudo-terminal: a conversation continued across runs, Ctrl-C."""

from __future__ import annotations

import asyncio
import codecs
import fcntl
import os
import re
import subprocess
import sys
import termios
from pathlib import Path
from typing import Any

import orjson
import pytest

from rxstream import SQLiteStore
from rxstream.server import Faults, ReferenceResponsesServer, ReferenceSSEServer, generate

from .test_conversations import validate_body

pytestmark = pytest.mark.network

WAIT = 10.0  # seconds for anything the terminal should show; a hang fails instead of blocking the suite
CTRL_C, CTRL_D = "\x03", "\x04"


class RecordingSSEServer(ReferenceSSEServer):
    """The reference server, keeping the body of each request it answers."""

    def __init__(self, text: str, **options: Any) -> None:
        super().__init__(text, **options)
        self.bodies: list[dict[str, Any]] = []

    async def _answer(
        self, writer: asyncio.StreamWriter, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> None:
        self.bodies.append(orjson.loads(body))
        await super()._answer(writer, method, target, headers, body)


class Terminal:
    """``rxstream ARGS`` on a pseudo-terminal it controls (so that Ctrl-C typed is SIGINT), read as it writes."""

    def __init__(self, *args: str, cwd: Path) -> None:
        self.master, slave = os.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rxstream", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        os.close(slave)
        self.shown = ""
        self.changed = asyncio.Event()
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        asyncio.get_running_loop().add_reader(self.master, self._read)

    def _read(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the process exited, the terminal has no writer left
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self.master)
        self.shown += self.decoder.decode(data).replace("\r\n", "\n")
        self.changed.set()

    async def wait_for(self, pattern: str, after: int = 0) -> re.Match[str]:
        """The first match of ``pattern`` in what was shown from ``after`` on, waiting for it."""
        try:
            async with asyncio.timeout(WAIT):
                while (match := re.compile(pattern).search(self.shown, after)) is None:
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            raise AssertionError(f"{pattern!r} not shown after {WAIT}s in {self.shown[after:]!r}") from None
        return match

    def type(self, keys: str) -> int:
        """Type ``keys``; where the output stood before them."""
        at = len(self.shown)
        os.write(self.master, keys.encode())
        return at

    async def exit_status(self) -> int:
        status = await asyncio.to_thread(self.process.wait, WAIT)
        asyncio.get_running_loop().remove_reader(self.master)
        os.close(self.master)
        return status


async def ask(terminal: Terminal, line: str, answer: str) -> None:
    """Type ``line`` at the prompt and wait for the whole ``answer``, then the next prompt."""
    await terminal.wait_for("> $")
    after = terminal.type(line + "\n")
    shown = await terminal.wait_for(re.escape(answer) + "\n> ", after)
    assert shown is not None


async def test_a_session_continues_across_runs_and_another_is_separate(tmp_path: Path) -> None:
    answer = generate(300, seed=3, whole_words=True)
    async with RecordingSSEServer(answer, chunk_size=16) as server:

        def chat(session: str) -> Terminal:
            return Terminal("chat", server.url, "--sse", "--model", "m", "--session", session, cwd=tmp_path)

        first = chat("A")
        await first.wait_for("session 'A', 0 turns in rxstream.db")
        await ask(first, "what is one?", answer)
        first.type(CTRL_D)
        assert await first.exit_status() == 0, first.shown

        second = chat("A")
        await second.wait_for("session 'A', 1 turns")
        await ask(second, "and two?", answer)
        second.type("/quit\n")
        assert await second.exit_status() == 0, second.shown

        other = chat("B")
        await other.wait_for("session 'B', 0 turns")
        await ask(other, "hello", answer)
        other.type(CTRL_C)  # at the prompt: the command ends
        assert await other.exit_status() == 130, other.shown

    assistant = {"role": "assistant", "content": answer}
    assert [body["messages"] for body in server.bodies] == [
        [{"role": "user", "content": "what is one?"}],
        [{"role": "user", "content": "what is one?"}, assistant, {"role": "user", "content": "and two?"}],
        [{"role": "user", "content": "hello"}],
    ]
    assert {body["model"] for body in server.bodies} == {"m"}
    async with SQLiteStore(tmp_path / "rxstream.db") as store:
        a, b = await store.history("A"), await store.history("B")
    assert [turn.request for turn in a] == server.bodies[:2] and [turn.request for turn in b] == server.bodies[2:]
    assert all(turn.response.text == answer and turn.response.complete for turn in a + b)
    for body in server.bodies:
        validate_body("chat", body)
    assert "Traceback" not in first.shown + second.shown + other.shown


async def interrupt(terminal: Terminal, line: str, answer: str) -> str:
    """Type ``line``, Ctrl-C once the answer is streaming, wait for the prompt: the chunks it says it kept."""
    await terminal.wait_for("> $")
    after = terminal.type(line + "\n")
    await terminal.wait_for(re.escape(answer[:40]), after)  # the answer is streaming
    after = terminal.type(CTRL_C)
    kept = await terminal.wait_for(
        r"rxstream chat: interrupted after (\d+) chunks, saved as turn \d+ of session", after
    )
    await terminal.wait_for("> $", kept.end())  # back at the prompt, still running
    return kept[1]


async def test_ctrl_c_during_an_answer_keeps_the_partial_turn_which_the_next_question_sends_back(
    tmp_path: Path,
) -> None:
    answer = generate(6000, seed=4, whole_words=True)
    async with RecordingSSEServer(answer, chunk_size=8, faults=Faults(delay=0.02)) as server:

        def chat() -> Terminal:
            return Terminal("chat", server.url, "--model", "m", "--session", "cut", "--db", "cut.db", cwd=tmp_path)

        first = chat()
        kept = [await interrupt(first, "tell me everything", answer)]
        assert "saved as turn 1 of session 'cut' in cut.db" in first.shown
        kept.append(await interrupt(first, "go on", answer))
        first.type(CTRL_D)
        assert await first.exit_status() == 0, first.shown

        second = chat()
        await second.wait_for("session 'cut', 2 turns")
        kept.append(await interrupt(second, "and then?", answer))
        second.type(CTRL_D)
        assert await second.exit_status() == 0, second.shown

    async with SQLiteStore(tmp_path / "cut.db") as store:
        turns = await store.history("cut")
    assert [turn.request for turn in turns] == server.bodies
    assert [turn.response.chunks for turn in turns] == [int(chunks) for chunks in kept]
    for turn in turns:
        assert not turn.response.complete and 40 <= len(turn.response.text) < len(answer)
        assert answer.startswith(turn.response.text)
    # each partial answer goes back as the assistant's message before the next question
    partial = [{"role": "assistant", "content": turn.response.text} for turn in turns]
    asked = [{"role": "user", "content": line} for line in ("tell me everything", "go on", "and then?")]
    assert [body["messages"] for body in server.bodies] == [
        asked[:1],
        [asked[0], partial[0], asked[1]],
        [asked[0], partial[0], asked[1], partial[1], asked[2]],
    ]
    for body in server.bodies:
        validate_body("chat", body)
    assert "Traceback" not in first.shown + second.shown


class RecordingResponsesServer(ReferenceResponsesServer):
    """The Responses reference server, keeping the body of each request it answers."""

    def __init__(self, text: str, **options: Any) -> None:
        super().__init__(text, **options)
        self.bodies: list[dict[str, Any]] = []

    async def _answer(
        self, writer: asyncio.StreamWriter, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> None:
        self.bodies.append(orjson.loads(body))
        await super()._answer(writer, method, target, headers, body)


async def test_a_responses_chat_continues_by_previous_response_id_across_runs(tmp_path: Path) -> None:
    # The server keeps each response: the next request names the last one and sends only the new
    # message (https://platform.openai.com/docs/guides/conversation-state).
    answer = generate(200, seed=5, whole_words=True)
    async with RecordingResponsesServer(answer, chunk_size=16) as server:

        def chat() -> Terminal:
            return Terminal("chat", server.url, "--responses", "--model", "gpt-5", "--session", "r", cwd=tmp_path)

        first = chat()
        await ask(first, "what is one?", answer)
        first.type(CTRL_D)
        assert await first.exit_status() == 0, first.shown
        second = chat()
        await second.wait_for("session 'r', 1 turns")
        await ask(second, "and two?", answer)
        second.type(CTRL_D)
        assert await second.exit_status() == 0, second.shown

    async with SQLiteStore(tmp_path / "rxstream.db") as store:
        turns = await store.history("r")
    assert [turn.response.text for turn in turns] == [answer, answer] and turns[0].response.id is not None
    assert server.bodies == [
        {"model": "gpt-5", "input": [{"role": "user", "content": "what is one?"}], "stream": True},
        {
            "model": "gpt-5",
            "input": [{"role": "user", "content": "and two?"}],
            "stream": True,
            "previous_response_id": turns[0].response.id,
        },
    ]
    for body in server.bodies:
        validate_body("responses", body)
