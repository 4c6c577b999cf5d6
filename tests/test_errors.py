"""The exception tree drawn in rxstream/core/_errors.py's docstring is the real one."""

from __future__ import annotations

import re
from collections.abc import Iterator

import rxstream
from rxstream.core import _errors


def exception_tree(error: type[BaseException] = rxstream.StreamError, depth: int = 0) -> Iterator[str]:
    """Every rxstream class under ``error``, one a line, indented two spaces a level, in definition order."""
    yield "  " * depth + error.__name__
    for subclass in error.__subclasses__():
        if subclass.__module__.startswith("rxstream."):  # not the subclasses tests define
            yield from exception_tree(subclass, depth + 1)


def drawn_tree(text: str) -> list[str]:
    """The tree drawn in ``text``: the lines from the one that is ``StreamError`` alone to the
    first that is not a class name (a blank line, a code fence), less the first's indent."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "StreamError")
    indent = len(lines[start]) - len(lines[start].lstrip())
    block = []
    for line in lines[start:]:
        if not re.fullmatch(r" *[A-Z]\w*", line[indent:]):
            break
        block.append(line[indent:])
    return block


def test_the_module_docstring_draws_every_error_class_where_it_is() -> None:
    assert _errors.__doc__ is not None
    assert drawn_tree(_errors.__doc__) == list(exception_tree())


def test_every_error_class_is_in_the_tree_and_exported() -> None:
    defined = {
        name
        for name, value in vars(_errors).items()
        if isinstance(value, type) and issubclass(value, rxstream.StreamError)
    }
    assert {line.strip() for line in exception_tree()} == defined
    assert defined <= set(rxstream.__all__)
