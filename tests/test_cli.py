"""The command line, run as a real subprocess."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

import rxstream
from rxstream.server import Faults, ReferenceResponsesServer, ReferenceServer, generate

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
    assert generate(600, seed=3) in result.stdout
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
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("rxstream connect: error:")
    assert "Traceback" not in result.stderr and "FrameError" in result.stderr
    assert result.stdout.startswith(text[:200])  # the partial text was rendered live


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
        assert response.text == generate(800, seed=8) and response.stats.out_of_order > 0
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
            f"rxstream {command[0]}: error: session id must be valid Unicode text (surrogates not allowed at position 0), "
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
