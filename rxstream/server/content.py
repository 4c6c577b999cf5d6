"""What the reference servers stream: a response text cut into chunk-sized pieces."""

from __future__ import annotations

import random
from pathlib import Path

_WORDS = (
    "stream chunk reorder window buffer demand socket frame final index partial response token "
    "latency backpressure observable operator 数据 流 顺序 窗口 缓冲 响应 分块 重连 背压 最终"
).split()


def generate(size: int, seed: int = 0) -> str:
    """About ``size`` characters of mixed English and Chinese words, the same for the same seed."""
    rng = random.Random(seed)
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:size]


def load(text: str | None = None, file: str | Path | None = None, size: int | None = None, seed: int = 0) -> str:
    """The response text: given, read from a file, or generated (2 KB by default)."""
    if text is not None:
        return text
    if file is not None:
        return Path(file).read_text(encoding="utf-8")
    return generate(2048 if size is None else size, seed)


def split(text: str, chunk_size: int) -> list[str]:
    """``text`` in pieces of ``chunk_size`` characters (one empty piece for an empty text)."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    return [text[i : i + chunk_size] for i in range(0, len(text), chunk_size)] or [""]
