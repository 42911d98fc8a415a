"""Queries over result stores that read only what they need: ``--where`` filters and the
``omasgan results`` summary, both pushed down to the Parquet scan (pyarrow.dataset) so that a
study of thousands of trials is summarised from a few columns, never loaded whole into pandas.

``--where`` takes the pandas query syntax (as ``DataFrame.query`` did before) restricted to what a
scan can evaluate: comparisons of a column with a literal (``==``, ``!=``, ``<``, ``<=``, ``>``,
``>=``, chained ``0.5 < auroc < 0.9``), ``in`` / ``not in`` a list, ``col.isna()`` / ``col.notna()``
(also ``isnull`` / ``notnull``), combined with ``and`` / ``or`` / ``not`` (or ``&`` / ``|`` / ``~``)
and parentheses.  Missing values compare as pandas does: ``x != v`` and ``x not in [...]`` are true
for a missing ``x``, every other comparison false.
"""

from __future__ import annotations

import ast
from typing import Any, Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from omasgan.errors import ConfigError

from .result_store import ResultStore, dataset_schema

WHERE_HELP = ("comparisons of a column with a value (== != < <= > >=), 'in' / 'not in' a list, col.isna() / "
              "col.notna(), joined with and / or / not, e.g. \"stage == 'j' and seed in [0, 1]\"")
_COMPARE = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_NULL_TESTS = {"isna": True, "isnull": True, "notna": False, "notnull": False}


def parse_where(text: str, schema: pa.Schema | None = None) -> pc.Expression:
    """The ``--where`` text as a pyarrow expression over the columns of ``schema`` (default: the
    results table with its partition columns).  Raises a one-line ConfigError naming the bad part
    and what is allowed."""
    schema = schema or dataset_schema()
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ConfigError(f"--where {text!r} is not a valid expression ({exc.msg}); use {WHERE_HELP}") from None
    return _Translator(text, schema).expression(tree.body)


class _Translator:
    def __init__(self, text: str, schema: pa.Schema) -> None:
        self.text, self.schema = text, schema

    def fail(self, node: ast.AST, why: str) -> ConfigError:
        part = ast.get_source_segment(self.text.strip(), node) or ast.dump(node)
        return ConfigError(f"--where {self.text!r}: {part} {why}; use {WHERE_HELP}")

    def column(self, node: ast.AST) -> str:
        name = node.id if isinstance(node, ast.Name) else None
        if name is None:
            raise self.fail(node, "is not a column name")
        if name not in self.schema.names:
            raise ConfigError(f"--where {self.text!r}: {name!r} is not a column; columns include "
                              f"{', '.join(n for n in self.schema.names if not n.startswith('cfg_'))} "
                              f"and the config columns cfg_<section>_<key>")
        return name

    def value(self, node: ast.AST) -> Any:
        try:
            value = ast.literal_eval(node)
        except ValueError:
            raise self.fail(node, "is not a literal value (a number, a quoted string, True/False/None)") from None
        if isinstance(value, (list, tuple, set, dict)):
            raise self.fail(node, "is a collection; compare a column with one value, or use 'in'")
        return value

    def values(self, node: ast.AST) -> list[Any]:
        if not isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            raise self.fail(node, "is not a list of values")
        return [self.value(element) for element in node.elts]

    def expression(self, node: ast.AST) -> pc.Expression:
        if isinstance(node, ast.BoolOp):
            parts = [self.expression(v) for v in node.values]
            out = parts[0]
            for part in parts[1:]:
                out = (out & part) if isinstance(node.op, ast.And) else (out | part)
            return out
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitAnd, ast.BitOr)):
            left, right = self.expression(node.left), self.expression(node.right)
            return (left & right) if isinstance(node.op, ast.BitAnd) else (left | right)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.Invert)):
            return ~self.expression(node.operand)
        if isinstance(node, ast.Compare):
            out, left = None, node.left
            for op, right in zip(node.ops, node.comparators):
                term = self.compare(left, op, right)
                out = term if out is None else (out & term)
                left = right
            return out
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _NULL_TESTS:
            if node.args or node.keywords:
                raise self.fail(node, "takes no arguments")
            field = ds.field(self.column(node.func.value))
            return field.is_null(nan_is_null=True) if _NULL_TESTS[node.func.attr] else ~field.is_null(nan_is_null=True)
        raise self.fail(node, "is not a supported condition")

    def compare(self, left: ast.AST, op: ast.cmpop, right: ast.AST) -> pc.Expression:
        if isinstance(op, (ast.In, ast.NotIn)):
            field = ds.field(self.column(left))
            inside = pc.coalesce(field.isin(self.values(right)), pa.scalar(False))
            return inside if isinstance(op, ast.In) else ~inside
        if type(op) not in _COMPARE:
            raise self.fail(right, f"follows an operator that is not allowed ({type(op).__name__})")
        symbol = _COMPARE[type(op)]
        if isinstance(left, ast.Name) and left.id in self.schema.names:
            name, other = self.column(left), right
        elif isinstance(right, ast.Name) and right.id in self.schema.names:
            name, other, symbol = self.column(right), left, _FLIP[symbol]
        else:
            for side in (left, right):
                if isinstance(side, ast.Name):
                    self.column(side)  # an unknown column: say so
            raise self.fail(left, "is not compared with a column")
        field = ds.field(name)
        if isinstance(other, (ast.List, ast.Tuple, ast.Set)) and symbol in ("==", "!="):  # pandas: == [...] is isin
            inside = pc.coalesce(field.isin(self.values(other)), pa.scalar(False))
            return inside if symbol == "==" else ~inside
        value = self.value(other)
        if value is None:
            if symbol not in ("==", "!="):
                raise self.fail(other, f"cannot be compared with {symbol}")
            return field.is_null() if symbol == "==" else ~field.is_null()
        result = {"==": field == value, "!=": field != value, "<": field < value, "<=": field <= value,
                  ">": field > value, ">=": field >= value}[symbol]
        return pc.coalesce(result, pa.scalar(symbol == "!="))


def read_rows(stores: Iterable[ResultStore], columns: list[str], where: pc.Expression | None = None,
              table: str = "results", text: str = "") -> pa.Table:
    """The ``columns`` of the rows matching ``where`` from every store, concatenated.  A filter the
    data cannot evaluate (e.g. a string compared with a number) is a one-line ConfigError."""
    pieces = []
    for store in stores:
        try:
            pieces.append(store.read(table, filter=where, columns=columns))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise ConfigError(f"--where {text!r} cannot be evaluated on the rows: "
                              f"{str(exc).splitlines()[0]}") from None
    return pa.concat_tables(pieces) if pieces else pa.schema([dataset_schema().field(c) for c in columns]).empty_table()


SUMMARY_KEYS = ["study", "study_kind", "method", "detector", "split"]


def summary(stores: list[ResultStore], by: list[str] | None = None, where: pc.Expression | None = None,
            text: str = "") -> tuple[int, pd.DataFrame]:
    """``omasgan results``: (rows matched, the summary table).  The table is what
    ``tables.summary_table`` computes from all rows in pandas: per study, method, detector and split
    (and ``by``) over ok rows with a split, the row count, mean and sample SD of AUROC, mean AUPRC,
    F1 and wall time; then one line per (study, stage) with its error rows.  Here only the key and
    metric columns of the matching rows are read, and grouped in Arrow."""
    by = list(by or [])
    keys = SUMMARY_KEYS + [c for c in by if c not in SUMMARY_KEYS]
    columns = list(dict.fromkeys(keys + ["status", "stage", "auroc", "auprc", "f1", "wall_time_s"]))
    rows = read_rows(stores, columns, where, text=text)
    ok = rows.filter(pc.and_(pc.equal(rows.column("status"), "ok"), pc.is_valid(rows.column("split"))))
    frame = pd.DataFrame()
    if ok.num_rows:
        grouped = ok.group_by(keys, use_threads=False).aggregate([
            ("auroc", "count", pc.CountOptions(mode="all")), ("auroc", "mean"),
            ("auroc", "stddev", pc.VarianceOptions(ddof=1)), ("auprc", "mean"), ("f1", "mean"),
            ("wall_time_s", "mean")])
        frame = grouped.to_pandas().rename(columns={
            "auroc_count": "rows", "auroc_mean": "auroc", "auroc_stddev": "auroc_sd", "auprc_mean": "auprc",
            "f1_mean": "f1", "wall_time_s_mean": "wall_s"})
        frame = frame[keys + ["rows", "auroc", "auroc_sd", "auprc", "f1", "wall_s"]]
        frame = frame.sort_values(keys, na_position="last", kind="stable").reset_index(drop=True)
        for column in ("auroc", "auroc_sd", "auprc", "f1", "wall_s"):
            frame[column] = frame[column].astype("float64")
    errors = rows.filter(pc.equal(rows.column("status"), "error"))
    if errors.num_rows:
        counts = errors.group_by(["study", "stage"], use_threads=False).aggregate([("status", "count")])
        counts = counts.to_pandas().rename(columns={"status_count": "errors", "stage": "detector"})
        counts = counts.sort_values(["study", "detector"], kind="stable").reset_index(drop=True)
        frame = pd.concat([frame, counts[["study", "detector", "errors"]]], ignore_index=True)
    return rows.num_rows, frame
