"""What the options accept, checked while argparse reads them: a bad value is a usage error (exit 2)
naming its option, before anything is built or connected."""

from __future__ import annotations

import argparse
import math
import os
from typing import Any, NoReturn

import orjson

from ..server import Faults

# What a character of --size costs the demo at its peak: the text, its pieces, their JSON frames on
# the server, and the client's transcript (mixed Chinese makes each str 2 bytes a character).
BYTES_PER_CHARACTER = 10


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors are one line (the option and what is wrong with it), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def json_object(text: str) -> dict[str, Any]:
    """--request: a JSON object, as the first message or the body."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON ({error}): {text[:80]!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f'must be a JSON object such as \'{{"prompt": "hi"}}\', not {text[:80]!r}')
    return value


def faults(text: str) -> str:
    """--faults: names and values ``Faults`` accepts (kept as written: the commands add a seed to it)."""
    try:
        Faults.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def port(text: str) -> int:
    return _whole(text, low=0, high=65535, what="a port from 0 (any free one) to 65535")


def seconds(text: str) -> float:
    """A delay: 0 or more seconds."""
    return _real(text, low=0.0, what="0 or more seconds")


def timeout(text: str) -> float:
    return _real(text, low=0.0, above=True, what="more than 0 seconds")


def positive(text: str) -> int:
    return _whole(text, low=1, what="1 or more")


def rate(text: str) -> float:
    return _real(text, low=0.0, above=True, what="more than 0")


def size(text: str) -> int:
    """--size: characters to generate, refused when they could not fit in this machine's memory."""
    characters = _whole(text, low=0, what="0 or more characters")
    memory = physical_memory()
    if memory is not None and characters * BYTES_PER_CHARACTER > memory:
        raise argparse.ArgumentTypeError(
            f"{characters:,} characters would need about {characters * BYTES_PER_CHARACTER / 1e9:,.1f} GB, "
            f"more than this machine's {memory / 1e9:,.1f} GB"
        )
    return characters


def environment_token(name: str) -> str:
    """--token-env: the token in that environment variable, which must be set."""
    if name not in os.environ:
        raise argparse.ArgumentTypeError(f"environment variable {name} is not set")
    return os.environ[name]


def add_token_env(parser: argparse.ArgumentParser, help: str = "environment variable holding the bearer token") -> None:
    """``--token-env VAR``, read into ``args.token`` (checked set when the options are parsed)."""
    parser.add_argument("--token-env", dest="token", metavar="VAR", type=environment_token, help=help)


def physical_memory() -> int | None:
    """Bytes of RAM, where the system says."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _whole(text: str, *, low: int, high: float = math.inf, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}") from None
    _check(value, text, low=low, high=high, above=False, what=what)
    return value


def _real(text: str, *, low: float, above: bool = False, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}") from None
    _check(value, text, low=low, high=math.inf, above=above, what=what)
    return value


def _check(value: float, text: str, *, low: float, high: float, above: bool, what: str) -> None:
    if not math.isfinite(value) or value < low or (above and value == low) or value > high:
        raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}")
