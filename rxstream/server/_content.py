"""What the reference servers stream: a response text cut into chunk-sized pieces."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

_SENTENCES = (
    "Chunks arrive out of order, twice, or not at all, and the pipeline puts them back.",
    "数据块可能乱序、重复或丢失，流水线会把它们重新排好。",
    "When the buffer is full, demand stops the socket and the server waits.",
    "缓冲区满了，背压让套接字停止读取，服务器随之等待。",
    "A dropped connection is resumed from the next index the reorder stage needs.",
    "连接断开后，客户端从重排序阶段需要的下一个序号继续。",
    "Every error says what went wrong, in which frame, and what to do next.",
    "每个错误都说明出了什么问题、在哪一帧、以及下一步该怎么做。",
)


def generate(size: int, seed: int = 0, *, whole_words: bool = False) -> str:
    """About ``size`` characters of English and Chinese sentences, the same for the same seed: exactly
    ``size``, or with ``whole_words`` up to the last space within them (no word cut in two)."""
    rng = random.Random(seed)
    sentences: list[str] = []
    length = 0
    while length < size:
        sentence = rng.choice(_SENTENCES)
        sentences.append(sentence)
        length += len(sentence) + 1
    text = " ".join(sentences)
    end = text.rfind(" ", 0, size + 1) if whole_words and len(text) > size else -1
    return text[:end] if end > 0 else text[:size]


def load(text: str | None = None, file: str | Path | None = None, size: int | None = None, seed: int = 0) -> str:
    """The response text: given, read from a file, or generated (2 KB by default, ending at a word)."""
    if text is not None:
        return text
    if file is not None:
        return Path(file).read_text(encoding="utf-8")
    return generate(2048 if size is None else size, seed, whole_words=True)


def split(text: str | Sequence[str], chunk_size: int) -> list[str]:
    """``text`` in pieces of ``chunk_size`` characters (one empty piece for an empty text);
    a sequence of strings is already the pieces, as a recording has them."""
    if not isinstance(text, str):
        return list(text)
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    return [text[i : i + chunk_size] for i in range(0, len(text), chunk_size)] or [""]
