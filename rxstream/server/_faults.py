"""Faults the reference servers inject, seeded so that every run of a test sees the same ones.

A ``Faults`` value describes what goes wrong; ``plan`` turns the chunks of a response into
the ``Send`` steps one connection performs. Both the WebSocket and the SSE endpoint
play the same plan, each in its own framing.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Literal, NamedTuple

SendKind = Literal["chunk", "malformed", "oversize", "abort", "stall"]


@dataclass(frozen=True, slots=True)
class Faults:
    """What a reference server does wrong. All default to nothing wrong.

    The faults that break a connection (``drop``, ``abort_after``, ``malformed_at``,
    ``oversize_at``, ``stall_after``) hit the first ``repeat`` connections only, so a client
    that recovers gets a clean stream next time; ``repeat=0`` makes them hit every one.
    """

    seed: int = 0
    reorder: int = 0  # shuffle chunks within windows of this many (0 or 1: in order)
    duplicate: float = 0.0  # probability that a chunk is sent twice
    drop: int = 0  # how many chunks (never the first) are not sent at all: a gap
    delay: float = 0.0  # seconds between frames
    jitter: float = 0.0  # up to this many seconds more, at random
    abort_after: int | None = None  # frames sent before the connection is cut without a close frame
    malformed_at: int | None = None  # position of a frame that is not valid JSON
    oversize_at: int | None = None  # position of a frame of `oversize_bytes`
    oversize_bytes: int = 2**24 + 1
    stall_after: int | None = None  # frames sent before the server goes silent, connection open
    reject_first: int = 0  # handshakes answered 429 before any is accepted
    repeat: int = 1

    def __post_init__(self) -> None:
        """Every value in its range, so that a typo fails here, named, and not as an odd stream."""
        if not 0.0 <= self.duplicate <= 1.0:
            raise ValueError(f"fault duplicate={self.duplicate:g}: a probability, from 0 to 1")
        for name in ("delay", "jitter"):
            value = getattr(self, name)
            if not 0.0 <= value < float("inf"):
                raise ValueError(f"fault {name}={value:g}: seconds, 0 or more")
        for name in (
            "reorder",
            "drop",
            "reject_first",
            "repeat",
            "abort_after",
            "malformed_at",
            "oversize_at",
            "stall_after",
        ):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"fault {name}={value}: a count, 0 or more")
        if self.oversize_bytes < 1:
            raise ValueError(f"fault oversize_bytes={self.oversize_bytes}: 1 or more")

    @classmethod
    def parse(cls, spec: str) -> Faults:
        """From ``"reorder=8,duplicate=0.1,drop=1"``, as the ``--faults`` option takes them."""
        types = {f.name: f.type for f in fields(cls)}
        values: dict[str, int | float] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            name, equals, value = (part.strip() for part in item.partition("="))
            name = name.replace("-", "_")
            if name not in types:
                raise ValueError(f"unknown fault {item!r}; faults are: {', '.join(types)} (as name=value)")
            if not equals or not value:
                raise ValueError(f"fault {name} needs a value, as {name}=N")
            whole = "float" not in str(types[name])
            try:
                values[name] = int(value) if whole else float(value)
            except ValueError:
                raise ValueError(
                    f"fault {item!r}: {value!r} is not {'a whole number' if whole else 'a number'}"
                ) from None
        return cls(**values)  # type: ignore[arg-type]

    def cut_short(self, connection: int) -> bool:
        """Whether connection number ``connection`` will miss chunks: dropped ones, or an end before the last."""
        positioned = (self.abort_after, self.malformed_at, self.oversize_at, self.stall_after)
        return self.hits(connection) and bool(self.drop or any(position is not None for position in positioned))

    def hits(self, connection: int) -> bool:
        """Whether the connection-breaking faults apply to connection number ``connection`` (from 0)."""
        return self.repeat == 0 or connection < self.repeat


class Send(NamedTuple):
    """One step of a connection: send chunk ``index``, or do the fault ``kind``.

    A named tuple: a plan has a step per chunk, and a named tuple costs a third of a frozen
    dataclass to build.
    """

    kind: SendKind
    index: int = -1  # type: ignore[assignment]  # shadows tuple.index, which a step has no use for
    delay: float = 0.0


def plan(count: int, faults: Faults, connection: int, start: int = 0) -> Iterable[Send]:
    """The steps that send chunks ``start``..``count - 1`` on connection ``connection``.

    Without a fault that needs the whole plan (jitter, duplicates, a fault at a position),
    the steps are made as they are sent: a list of 100,000 of them took ~50 ms to build,
    all before the first frame.
    """
    rng = random.Random(f"{faults.seed}/{connection}")
    order = list(range(start, count))
    breaking = faults.hits(connection)
    if breaking and faults.drop and len(order) > 1:
        for index in rng.sample(order[1:], min(faults.drop, len(order) - 1)):
            order.remove(index)
    if faults.reorder > 1:
        order = _shuffle_within(order, faults.reorder, rng)
    positioned = (
        (faults.malformed_at, "malformed"),
        (faults.oversize_at, "oversize"),
        (faults.abort_after, "abort"),
        (faults.stall_after, "stall"),
    )
    if not (
        faults.jitter or faults.duplicate or (breaking and any(position is not None for position, _ in positioned))
    ):
        return (Send("chunk", index, faults.delay) for index in order)
    steps: list[Send] = []
    for index in order:
        steps.append(Send("chunk", index, faults.delay + rng.uniform(0, faults.jitter)))
        if rng.random() < faults.duplicate:
            steps.append(Send("chunk", index, faults.delay))
    if breaking:
        for position, kind in positioned[:2]:
            if position is not None and position <= len(steps):
                steps.insert(position, Send(kind))  # type: ignore[arg-type]
        for position, kind in positioned[2:]:
            if position is not None and position < len(steps):
                del steps[position:]
                steps.append(Send(kind))  # type: ignore[arg-type]
    return steps


def _shuffle_within(order: Sequence[int], window: int, rng: random.Random) -> list[int]:
    """Shuffle so that no chunk moves ``window`` or more places: sort by position plus an offset below it."""
    keys = {index: position + rng.uniform(0, window - 1) for position, index in enumerate(order)}
    return sorted(order, key=keys.__getitem__)
