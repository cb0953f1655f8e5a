"""Arithmetic expressions of a config's ``expr`` factors: checked once, evaluated on NumPy arrays.

An expression combines numeric columns, earlier factors and numbers with
``+ - * / // % **``, parentheses and the functions in :data:`FUNCTIONS`,
e.g. ``monthlycharges * tenure / totalcharges - 1``. Anything else (an
attribute, a subscript, a comparison, another function) is rejected when the
config is loaded, naming the part that is not allowed, so a config can never
run arbitrary code.

Evaluation is plain NumPy over float64 arrays: a division by zero gives
inf or NaN (the factor's ``fill`` or the factor check deals with it), never an
exception. ``pandas.eval`` is not used: its fixed cost per call (resolving
every column of the frame) would dominate the scoring of a single customer
in the HTTP API.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import CodeType

import numpy as np

FUNCTIONS = {
    "abs": np.abs,
    "exp": np.exp,
    "log": np.log,
    "log1p": np.log1p,
    "sqrt": np.sqrt,
    "minimum": np.minimum,
    "maximum": np.maximum,
}
_OPERATORS = (
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.FloorDiv,
    ast.Mod,
    ast.Pow,
    ast.UAdd,
    ast.USub,
)
_NODES = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.Call,
    *_OPERATORS,
)


@dataclass(frozen=True)
class Expression:
    """A checked arithmetic expression: its text, the names it reads and its compiled code."""

    text: str
    names: tuple[str, ...]
    code: CodeType

    def evaluate(self, values: Mapping[str, np.ndarray], n_rows: int) -> np.ndarray:
        """The expression over ``values`` (a float64 array per name), shape ``(n_rows,)``."""
        namespace = {
            **FUNCTIONS,
            **{name: np.asarray(values[name], dtype="float64") for name in self.names},
        }
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            result = eval(self.code, {"__builtins__": {}}, namespace)
        return np.broadcast_to(np.asarray(result, dtype="float64"), (n_rows,)).copy()


@lru_cache(maxsize=256)
def _shown(node: ast.AST) -> str:
    return ast.unparse(node) if isinstance(node, ast.expr) else type(node).__name__


@lru_cache(maxsize=1024)
def parse_expression(text: str) -> Expression:
    """Check and compile ``text`` (once per text: factors are evaluated on every scoring call).

    Raises
    ------
    ValueError
        When it is not valid syntax, or uses anything but numbers, names,
        arithmetic operators and the functions in :data:`FUNCTIONS`.
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not a valid expression: {text!r} ({exc.msg})") from exc
    names: dict[str, None] = {}
    for node in ast.walk(tree):
        if not isinstance(node, _NODES):
            raise ValueError(
                f"{text!r}: {_shown(node)!r} "
                "is not allowed (only numbers, column/factor names, + - * / // % ** and "
                f"{', '.join(FUNCTIONS)})"
            )
        if isinstance(node, ast.Constant) and not isinstance(node.value, int | float):
            raise ValueError(f"{text!r}: only numbers are allowed as constants, not {node.value!r}")
        if isinstance(node, ast.Call):
            if (
                not isinstance(node.func, ast.Name)
                or node.func.id not in FUNCTIONS
                or node.keywords
            ):
                raise ValueError(
                    f"{text!r}: {ast.unparse(node.func)!r} is not an allowed function "
                    f"({', '.join(FUNCTIONS)}, positional arguments only)"
                )
        elif isinstance(node, ast.Name):
            names.setdefault(node.id, None)
    called = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call)}
    return Expression(
        text, tuple(n for n in names if n not in called), compile(tree, "<expr>", "eval")
    )
