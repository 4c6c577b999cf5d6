"""The command line, run as a real subprocess."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from websockets.asyncio.client import connect

import rxstream
from rxstream.server import Faults, ReferenceResponsesServer, ReferenceServer, ReferenceSSEServer, generate

from .support import loopback, read_request

pytestmark = pytest.mark.network

TOKEN = "cli-token"


def rxstream_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rxstream", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def test_demo_exits_zero_and_prints_the_text(tmp_path: Path) -> None:
    result = rxstream_cli("demo", "--size", "600", "--delay", "0", "--seed", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = generate(600, seed=3, whole_words=True)  # the demo's text ends at a word, not in one
    assert result.stdout.startswith(text + "\n") and len(text) < 600
    assert "retries" in result.stdout and "reordered" in result.stdout


async def test_connect_json_against_a_faulty_server() -> None:
    text = generate(1500, seed=4)
    async with ReferenceServer(
        text, chunk_size=20, token=TOKEN, faults=Faults.parse("reorder=5,duplicate=0.3,seed=2")
    ) as server:
        result = await asyncio.to_thread(
            rxstream_cli, "connect", server.uri, "--token-env", "RX_TOKEN", "--json", env={"RX_TOKEN": TOKEN}
        )
    assert result.returncode == 0, result.stderr
    response = orjson.loads(result.stdout)
    assert response["text"] == text and response["complete"] and response["stats"]["duplicates"] > 0


async def test_connect_responses_resumes_a_background_response() -> None:
    text = generate(1500, seed=6)
    faults = Faults.parse("reorder=5,duplicate=0.3,abort_after=40,seed=2")
    async with ReferenceResponsesServer(text, chunk_size=20, token=TOKEN, faults=faults) as server:
        args = ("connect", server.url, "--responses", "--model", "m", "--prompt", "hi", "--token-env", "RX_TOKEN")
        result = await asyncio.to_thread(rxstream_cli, *args, "--background", "--json", env={"RX_TOKEN": TOKEN})
        assert server.stats.created == 1
    assert result.returncode == 0, result.stderr
    response = orjson.loads(result.stdout)
    assert response["text"] == text and response["complete"] and response["id"] == "resp_ref0"
    assert response["finish_reason"] == "completed" and response["stats"]["retries"] == 1


async def test_connect_live_renders_the_text() -> None:
    text = generate(500, seed=5)
    async with ReferenceServer(text, chunk_size=20, token=TOKEN) as server:
        result = await asyncio.to_thread(
            rxstream_cli, "connect", server.uri, "--token-env", "RX_TOKEN", env={"RX_TOKEN": TOKEN}
        )
    assert result.returncode == 0 and text in result.stdout


async def test_failing_connect_prints_one_line_and_keeps_the_partial() -> None:
    text = generate(1000, seed=6)
    async with ReferenceServer(text, chunk_size=20, token=TOKEN, faults=Faults.parse("malformed_at=10")) as server:
        result = await asyncio.to_thread(
            rxstream_cli, "connect", server.uri, "--token-env", "RX_TOKEN", env={"RX_TOKEN": TOKEN}
        )
    assert result.returncode == 1
    interrupted, error = result.stderr.splitlines()
    assert re.fullmatch(r"rxstream connect: interrupted after \d+ chunks", interrupted)
    assert error.startswith("rxstream connect: error:") and "FrameError" in error
    assert "Traceback" not in result.stderr
    assert result.stdout.startswith(text[:200]) and result.stdout.endswith("\n")  # the partial text, its line ended


async def test_bad_token_is_one_line_without_the_token() -> None:
    async with ReferenceServer("x", token=TOKEN) as server:
        result = await asyncio.to_thread(
            rxstream_cli, "connect", server.uri, "--token-env", "RX_TOKEN", env={"RX_TOKEN": "leak-me-not"}
        )
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "rejected the credentials" in result.stderr and "leak-me-not" not in result.stderr + result.stdout


async def test_serve_runs_the_reference_server() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rxstream",
        "serve",
        "--port",
        "0",
        "--size",
        "800",
        "--seed",
        "8",
        "--faults",
        "reorder=4,duplicate=0.2",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        banner = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        uri = banner.split(" on ")[1].split(" ")[0]
        response = await rxstream.stream(uri, request={"prompt": "hi"})
        assert response.text == generate(800, seed=8, whole_words=True) and response.stats.out_of_order > 0
    finally:
        process.terminate()
        await process.wait()


def test_an_undecodable_session_id_is_one_typed_line(tmp_path: Path) -> None:
    asyncio.run(save_one(tmp_path / "rxstream.db"))
    for command in (
        ("history", "\udcff"),
        ("demo", "--size", "20", "--delay", "0", "--session", "\udcff"),
    ):  # b"\xff" in argv
        result = rxstream_cli(*command, cwd=tmp_path)
        assert result.returncode == 1
        assert result.stderr.splitlines()[-1] == (
            f"rxstream {command[0]}: error: InvalidSessionError: session id must be valid Unicode text (surrogates not allowed at position 0), "
            "not '\\udcff'; name the conversation."
        )


async def save_one(path: Path) -> None:
    async with rxstream.SQLiteStore(path) as store:
        await store.save("chat", rxstream.Response("x", True, 1))


def test_the_cli_needs_no_test_only_package() -> None:
    # openai and anthropic are the test suite's oracles, not dependencies: a fresh `pip install -e .` has neither
    blocked = "import sys; sys.modules['openai'] = sys.modules['anthropic'] = None; from rxstream.cli import main; sys.exit(main(['--help']))"
    result = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "demo" in result.stdout and "bench" in result.stdout


UNSET = "RXSTREAM_TEST_UNSET_VARIABLE"
USAGE_ERRORS = [
    (("connect", "ws://127.0.0.1:1", "--request", "[1,2]"), "--request"),
    (("connect", "ws://127.0.0.1:1", "--request", "42"), "--request"),
    (("connect", "ws://127.0.0.1:1", "--request", '"hi"'), "--request"),
    (("connect", "ws://127.0.0.1:1", "--request", "{bad"), "--request"),
    (("connect", "ws://127.0.0.1:1", "--token-env", UNSET), UNSET),
    (("connect", "ws://127.0.0.1:1", "--timeout", "0"), "--timeout"),
    (("connect", "ws://127.0.0.1:1", "--timeout", "soon"), "--timeout"),
    (("connect", "http://127.0.0.1:1", "--sse"), "--model"),
    (("connect", "http://127.0.0.1:1", "--sse", "--request", "{}", "--content-timeout", "-1"), "--content-timeout"),
    (("demo", "--faults", "reorder"), "reorder=N"),
    (("demo", "--faults", "drop=x"), "drop=x"),
    (("demo", "--faults", "duplicate=1.5"), "duplicate=1.5"),
    (("demo", "--faults", "duplicate=-0.1"), "duplicate=-0.1"),
    (("demo", "--faults", "jitter=-1"), "jitter=-1"),
    (("demo", "--faults", "nonsense=1"), "nonsense"),
    (("demo", "--delay", "-1"), "--delay"),
    (("demo", "--delay", "nan"), "--delay"),
    (("demo", "--size", "-5"), "--size"),
    (("demo", "--size", str(10**15)), "--size"),  # refused before a byte of it is built
    (("demo", "--chunk-size", "0"), "--chunk-size"),
    (("demo", "--timeout", "-3"), "--timeout"),
    (("serve", "--port", "70000"), "--port"),
    (("serve", "--port", "-1"), "--port"),
    (("history", "chat", "--limit", "0"), "--limit"),
]


@pytest.mark.parametrize(("args", "named"), USAGE_ERRORS, ids=[" ".join(args) for args, _ in USAGE_ERRORS])
def test_a_bad_option_is_one_line_naming_it_and_exit_2_before_connecting(
    args: tuple[str, ...], named: str, tmp_path: Path
) -> None:
    result = rxstream_cli(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"rxstream {args[0]}: error: ") and named in line
    assert result.stdout == "" and not list(tmp_path.iterdir())  # nothing streamed, no database made


def test_version() -> None:
    result = rxstream_cli("--version")
    assert (result.returncode, result.stdout) == (0, f"rxstream {rxstream.__version__}\n")


async def test_debug_is_accepted_before_or_after_the_command() -> None:
    async with ReferenceServer("x", token=TOKEN) as server:
        for where in ("before", "after"):
            args = ["connect", server.uri, "--token-env", "RX_TOKEN"]
            args = ["--debug", *args] if where == "before" else [*args, "--debug"]
            result = await asyncio.to_thread(rxstream_cli, *args, env={"RX_TOKEN": "wrong"})
            assert result.returncode == 1 and "Traceback" in result.stderr, where


def test_output_piped_into_head_ends_quietly(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "rxstream", "demo", "--size", "200000", "--delay", "0", "--chunk-size", "64"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.read(100)  # as `head -c 100` does, then leaves
    process.stdout.close()
    assert process.wait(timeout=60) == 141  # 128 + SIGPIPE, as a shell reports a command whose reader left
    stderr = process.stderr.read().decode()
    assert "Traceback" not in stderr and "Broken pipe" not in stderr and "Exception ignored" not in stderr


async def test_retries_are_shown_live_on_stderr() -> None:
    text = generate(400, seed=1)
    async with ReferenceServer(text, chunk_size=20, token=TOKEN, faults=Faults.parse("abort_after=5")) as server:
        result = await asyncio.to_thread(
            rxstream_cli, "connect", server.uri, "--token-env", "RX_TOKEN", env={"RX_TOKEN": TOKEN}
        )
    assert result.returncode == 0, result.stderr
    assert (
        result.stderr.splitlines()[0]
        == "rxstream connect: reconnecting in 1.0 s (1/3): connection lost (close code 1006)"
    )
    assert result.stdout.startswith(text)


async def test_a_hint_names_the_cli_flag_not_the_python_parameter() -> None:
    faults = Faults.parse("abort_after=12")
    async with ReferenceResponsesServer(generate(500, seed=2), chunk_size=10, faults=faults) as server:
        args = ("connect", server.url, "--responses", "--model", "m", "--prompt", "hi")
        result = await asyncio.to_thread(rxstream_cli, *args)
    assert result.returncode == 1
    assert "pass --background" in result.stderr and '"background": true to' not in result.stderr


# A job a non-interactive shell starts in the background (CI's, often) inherits SIGINT ignored, and
# so would the CLI; Ctrl-C at a terminal reaches a program that has the default handler.
WITH_CTRL_C = "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); runpy.run_module('rxstream', run_name='__main__')"


def test_ctrl_c_saves_the_partial_turn_ends_the_line_and_exits_130(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", WITH_CTRL_C, "demo", "--size", "20000", "--delay", "0.01", "--session", "cut"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    assert process.stdout is not None
    shown = process.stdout.read(40)  # the text is streaming
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert (shown + out).endswith("\n") and "Traceback" not in err
    match = re.search(r"rxstream demo: interrupted after (\d+) chunks, saved as turn 1 of session 'cut'", err)
    assert match is not None, err
    chunks = int(match[1])
    history = rxstream_cli("history", "cut", cwd=tmp_path)
    assert f"INCOMPLETE · {chunks} chunks" in history.stdout
    assert history.stdout.split("\n", 1)[1].startswith(shown)


async def test_json_on_failure_prints_the_partial_response_and_the_error(tmp_path: Path) -> None:
    text = generate(1000, seed=6)
    async with ReferenceServer(text, chunk_size=20, token=TOKEN, faults=Faults.parse("malformed_at=10")) as server:
        args = ("connect", server.uri, "--token-env", "RX_TOKEN", "--json", "--session", "s")
        result = await asyncio.to_thread(rxstream_cli, *args, env={"RX_TOKEN": TOKEN}, cwd=tmp_path)
    assert result.returncode == 1
    partial = orjson.loads(result.stdout)
    assert partial["complete"] is False and partial["error"]["type"] == "FrameError"
    assert partial["error"]["message"].startswith("frame 11: invalid JSON")
    assert partial["chunks"] == 10 and text.startswith(partial["text"]) and partial["text"]
    history = rxstream_cli("history", "s", cwd=tmp_path)
    assert "INCOMPLETE · 10 chunks" in history.stdout


async def test_connect_sse_shows_what_matters_for_chat() -> None:
    async with ReferenceSSEServer(generate(300, seed=1), chunk_size=10) as server:
        args = ("connect", server.url, "--sse", "--model", "m", "--prompt", "hi")
        result = await asyncio.to_thread(rxstream_cli, *args)
    assert result.returncode == 0, result.stderr
    table = dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in result.stderr.strip().splitlines())
    assert table["finish reason"] == "stop" and "completion_tokens 30" in table["usage"]
    assert table["time to first token"].endswith(" ms") and "tokens/s" in table and "reordered" not in table


async def test_the_reference_server_streams_at_once_to_a_client_that_sends_no_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Were it to wait for the optional request, this wait would be an hour.
    monkeypatch.setattr("rxstream.server._websocket.REQUEST_WAIT", 3600.0)
    async with ReferenceServer("no request needed", token=TOKEN) as server:
        response = await asyncio.wait_for(rxstream.stream(server.uri, token=TOKEN), 30)
    assert response.text == "no request needed"


# The CLI's error line is the cause first: the typed error a program would catch, with the server's
# words (OpenAI's 401 body, https://platform.openai.com/docs/guides/error-codes), not "stream incomplete".
async def test_a_refused_stream_is_one_line_naming_the_error_and_the_servers_message() -> None:
    body = b'{"error": {"message": "Incorrect API key provided: leak-me-not.", "type": "invalid_request_error", "code": "invalid_api_key"}}'

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (len(body), body)
        )
        await writer.drain()

    async with loopback(refuse) as origin:
        args = (
            "connect",
            origin + "/v1/chat/completions",
            "--sse",
            "--model",
            "m",
            "--prompt",
            "hi",
            "--token-env",
            "RX_TOKEN",
        )
        result = await asyncio.to_thread(rxstream_cli, *args, env={"RX_TOKEN": "leak-me-not"})
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("rxstream connect: error: AuthenticationError: http://127.0.0.1:")
    assert "(HTTP 401 invalid_api_key: Incorrect API key provided: [redacted].)" in result.stderr
    assert "leak-me-not" not in result.stderr + result.stdout and "incomplete" not in result.stderr


def test_an_http_url_without_sse_is_one_line_with_the_hint_and_no_retries() -> None:
    result = rxstream_cli("connect", "http://127.0.0.1:9/v1/chat/completions")
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(
        "rxstream connect: error: InvalidEndpointError: 'http://127.0.0.1:9/v1/chat/completions'"
    )
    assert "--sse" in result.stderr and "reconnecting" not in result.stderr


async def test_the_reference_server_takes_a_late_request_before_it_closes() -> None:
    # It streams at once; a plain websockets client that sends its request a moment after the
    # handshake must still find the connection open to send it, and then read the whole stream.
    async with ReferenceServer("short", token=TOKEN) as server:
        async with connect(server.uri, additional_headers={"Authorization": f"Bearer {TOKEN}"}) as websocket:
            await asyncio.sleep(0.1)  # the stream is all sent by now
            await websocket.send("{}")
            frames = [orjson.loads(message) async for message in websocket]
    assert [frame["chunk"]["data"] for frame in frames] == ["short"]
