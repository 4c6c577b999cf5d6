"""The mutants of one module: each a small change to one node of its syntax tree, written back as text.

A mutant replaces one span of the source (found from the node's position) with the mutated
node unparsed, so every other line keeps its number and the per-test coverage of the
original says which tests can notice it.
"""

from __future__ import annotations

import ast
import copy
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace

# Each operator swapped for the nearest one that changes the result (a boundary, a sign, a negation).
_COMPARE_SWAPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
_BINARY_SWAPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
    ast.BitAnd: ast.BitOr,
    ast.BitOr: ast.BitAnd,
    ast.BitXor: ast.BitAnd,
    ast.LShift: ast.RShift,
    ast.RShift: ast.LShift,
}


@dataclass(frozen=True)
class Mutant:
    """One change to a module: bytes ``start:end`` of its source become ``replacement``."""

    path: str
    line: int
    start: int
    end: int
    replacement: str
    mutation: str  # what changed, e.g. "== -> !="
    code: str  # the original source line, stripped: with ``mutation``, names the mutant across edits elsewhere
    statement_line: (
        int  # where the statement holding it starts: what coverage reports for a statement over several lines
    )
    occurrence: int = 0  # how many mutants before it in the module have its code and mutation (a `break` written twice)

    def apply(self, source: bytes) -> bytes:
        return source[: self.start] + self.replacement.encode() + source[self.end :]


def mutants(path: str, source: bytes) -> list[Mutant]:
    """Every mutant of ``source`` (the text of the module at ``path``), in source order."""
    tree = ast.parse(source)
    line_starts = [0]
    for line in source.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    lines = source.decode().splitlines()
    skipped = _skipped(tree)
    statement_of: dict[int, int] = {}  # node id -> the line of the innermost statement holding it
    for statement in ast.walk(tree):  # breadth first: an inner statement comes later and wins
        if isinstance(statement, ast.stmt):
            for inner in ast.walk(statement):
                statement_of[id(inner)] = statement.lineno
    found: list[Mutant] = []
    for node in ast.walk(tree):
        if id(node) in skipped or not isinstance(node, ast.expr | ast.stmt):
            continue
        for mutation, replacement in _changes(node):
            assert (
                node.end_lineno is not None and node.end_col_offset is not None
            )  # parsed from text: every node has them
            start = line_starts[node.lineno - 1] + node.col_offset
            end = line_starts[node.end_lineno - 1] + node.end_col_offset
            code = lines[node.lineno - 1].strip()
            statement_line = statement_of.get(id(node), node.lineno)
            found.append(Mutant(path, node.lineno, start, end, replacement, mutation, code, statement_line))
    found.sort(key=lambda mutant: (mutant.start, mutant.end, mutant.mutation))
    seen: Counter[tuple[str, str]] = Counter()
    for number, mutant in enumerate(found):
        found[number] = replace(mutant, occurrence=seen[mutant.code, mutant.mutation])
        seen[mutant.code, mutant.mutation] += 1
    return found


def _skipped(tree: ast.Module) -> set[int]:
    """Nodes no mutant may touch: docstrings, annotations, f-strings, imports, ``__all__`` and
    ``TYPE_CHECKING`` blocks (changing them changes no behaviour a test could see, or breaks the text)."""
    roots: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                roots.append(first)
        if isinstance(node, ast.arg) and node.annotation is not None:
            roots.append(node.annotation)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns is not None:
            roots.append(node.returns)
        if isinstance(node, ast.AnnAssign):
            roots.append(node.annotation)
        if isinstance(node, ast.JoinedStr | ast.Import | ast.ImportFrom):
            roots.append(node)
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            roots.append(node)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            roots.append(node)
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("Literal", "TypeAlias")
        ):
            roots.append(node)
    return {id(inner) for root in roots for inner in ast.walk(root)}


def _changes(node: ast.AST) -> Iterator[tuple[str, str]]:
    """``(what changed, the node's new text)`` for each mutant of ``node`` itself."""
    if isinstance(node, ast.Compare):
        for index, op in enumerate(node.ops):
            if type(op) in _COMPARE_SWAPS:
                changed = copy.deepcopy(node)
                changed.ops[index] = _COMPARE_SWAPS[type(op)]()
                yield f"{_symbol(op)} -> {_symbol(changed.ops[index])}", f"({ast.unparse(changed)})"
    elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY_SWAPS:
        changed_binary = copy.deepcopy(node)
        changed_binary.op = _BINARY_SWAPS[type(node.op)]()
        yield f"{_symbol(node.op)} -> {_symbol(changed_binary.op)}", f"({ast.unparse(changed_binary)})"
    elif isinstance(node, ast.AugAssign) and type(node.op) in _BINARY_SWAPS:
        changed_augmented = copy.deepcopy(node)
        changed_augmented.op = _BINARY_SWAPS[type(node.op)]()
        yield f"{_symbol(node.op)}= -> {_symbol(changed_augmented.op)}=", ast.unparse(changed_augmented)
    elif isinstance(node, ast.BoolOp):
        changed_boolean = copy.deepcopy(node)
        changed_boolean.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        yield f"{_symbol(node.op)} -> {_symbol(changed_boolean.op)}", f"({ast.unparse(changed_boolean)})"
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield "not x -> x", f"({ast.unparse(node.operand)})"
    elif isinstance(node, ast.Constant):
        yield from _constant_changes(node.value)
    elif isinstance(node, ast.Return) and node.value is not None and not _is_none(node.value):
        yield "return x -> return None", "return None"
    elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call | ast.Await):
        yield "call removed", "pass"
    elif isinstance(node, ast.Break):
        yield "break -> continue", "continue"
    elif isinstance(node, ast.Continue):
        yield "continue -> break", "break"


def _constant_changes(value: object) -> Iterator[tuple[str, str]]:
    if isinstance(value, bool):
        yield f"{value} -> {not value}", repr(not value)
    elif isinstance(value, int | float):
        yield f"{value!r} -> {value + 1!r}", f"({value + 1!r})"
    elif isinstance(value, str):
        yield f"{_short(value)} -> {_short(f'XX{value}XX')}", repr(f"XX{value}XX")
    elif isinstance(value, bytes):
        yield f"{_short(value)} -> {_short(b'XX' + value + b'XX')}", repr(b"XX" + value + b"XX")


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _short(value: str | bytes) -> str:
    text = repr(value)
    return text if len(text) <= 24 else text[:20] + "..." + text[-1]


def _symbol(op: ast.AST) -> str:
    probe = ast.unparse(ast.BoolOp(op=op, values=[ast.Name("a"), ast.Name("b")])) if isinstance(op, ast.boolop) else ""
    if isinstance(op, ast.cmpop):
        probe = ast.unparse(ast.Compare(left=ast.Name("a"), ops=[op], comparators=[ast.Name("b")]))
    if isinstance(op, ast.operator):
        probe = ast.unparse(ast.BinOp(left=ast.Name("a"), op=op, right=ast.Name("b")))
    return probe[2:-2]
