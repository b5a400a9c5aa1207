"""Reading and writing tables for the commands, and the rules that keep a command from harming its inputs.

Reading goes through :func:`luce.tables.read_table` (typed, the same for CSV, TSV and Parquet); this
module turns its failures into one-line :class:`DataError` messages. Writing escapes formula-like cells
of CSV/TSV output and never replaces a file the command reads (:func:`check_outputs`).
"""

from __future__ import annotations

import difflib
import io
import os
import sys
from pathlib import Path

import numpy as np

from ._app import DataError

__all__ = [
    "check_outputs",
    "conform_features",
    "missing_column",
    "model_columns",
    "read_table",
    "target_values",
    "write_table",
]

_MAX_LISTED = 5
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection): such text cells
# are written with a leading apostrophe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def table_format(path) -> str:
    from ..tables import table_format as fmt

    try:
        return fmt(path)
    except ValueError as e:
        raise DataError(str(e)) from None


def read_table(path, *, sep=None):
    """Read a table (see luce.tables.read_table) with one-line errors; never returns an empty one."""
    import pyarrow as pa

    from .. import tables

    p = Path(path)
    fmt = table_format(p)
    if not p.exists():
        raise DataError(f"no such file: {path}")
    if p.is_dir():
        raise DataError(f"{path} is a folder, not a data file")
    if p.stat().st_size == 0:
        raise DataError(f"{path} is empty (0 bytes)")
    try:
        df = tables.read_table(p, sep=sep)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, ValueError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "Empty CSV file" in first:
            raise DataError(f"{path} is empty: no header and no rows") from None
        raise DataError(f"cannot read {path} as {fmt.upper()}: {first}") from None
    if df.shape[1] == 0:
        raise DataError(f"{path} is empty: no columns")
    if len(df) == 0:
        raise DataError(f"{path} has a header but no data rows")
    if fmt != "parquet" and df.shape[1] == 1 and sep is None:
        header = df.columns[0]
        for other in (";", "\t", "|", ","):
            if other in header:
                raise DataError(
                    f"{path} has a single column {header[:60]!r}: it looks separated by {other!r}; "
                    f"pass --sep {_shell_quote(other)}"
                )
    return df


def _shell_quote(text: str) -> str:
    import shlex

    return "$'\\t'" if text == "\t" else shlex.quote(text)


def _escape_formulas(df):
    """Text cells that a spreadsheet would run as formulas, prefixed with an apostrophe."""
    import pandas as pd

    out = None
    for c in df.columns:
        col = df[c]
        if pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
            continue
        if pd.api.types.is_datetime64_any_dtype(col.dtype):
            continue
        text = col.astype(object)
        risky = text.map(lambda v: isinstance(v, str) and v.startswith(_FORMULA_START))
        if risky.any():
            out = df.copy() if out is None else out
            out[c] = text.where(~risky, "'" + text.astype(str))
    return df if out is None else out


def write_table(df, path) -> None:
    """Write ``df`` to ``path`` (format from its name), or as CSV to stdout when ``path`` is None or '-'."""
    if path is None or str(path) == "-":
        sys.stdout.write(_escape_formulas(df).to_csv(index=False))
        return
    from ..io import atomic_write_bytes

    fmt = table_format(path)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    if fmt == "parquet":
        df.to_parquet(buffer, index=False)
    else:
        suffix = Path(path).suffix.lower()
        method = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".lz4": None}.get(suffix)
        if suffix == ".lz4":
            raise DataError(f"cannot write {path}: use .csv, .csv.gz, .csv.bz2 or .parquet")
        _escape_formulas(df).to_csv(
            buffer, sep="," if fmt == "csv" else "\t", index=False, encoding="utf-8",
            compression={"method": method} if method else None,
        )  # fmt: skip
    atomic_write_bytes(os.fspath(path), buffer.getvalue())


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_outputs(outputs: dict[str, Path | None], inputs: list[Path]) -> None:
    """Refuse, before any work, an output that is a folder or one of the command's input files.

    ``outputs`` maps an option name (for the message) to the path it was given (None: not given).
    """
    for option, out in outputs.items():
        if out is None or str(out) == "-":
            continue
        out = Path(out)
        if out.is_dir():
            raise DataError(f"{option} {out} is a folder; give a file name inside it")
        for source in inputs:
            if _same_file(out, source) or out.resolve() == Path(source).resolve():
                raise DataError(
                    f"{option} {out} is one of this command's inputs; write to another file "
                    "(luce never overwrites its inputs)"
                )


def _quote_list(items, limit=_MAX_LISTED) -> str:
    shown = [repr(str(i)) for i in items[:limit]]
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(shown) + more


def rows_text(mask) -> str:
    """1-based data-row numbers (the first row after the header is row 1) of the True entries."""
    rows = (np.flatnonzero(np.asarray(mask)) + 1).tolist()
    word = "row" if len(rows) == 1 else "rows"
    shown = ", ".join(map(str, rows[:_MAX_LISTED]))
    more = f" and {len(rows) - _MAX_LISTED} more" if len(rows) > _MAX_LISTED else ""
    return f"{word} {shown}{more}"


def missing_column(name: str, columns, source) -> DataError:
    close = difflib.get_close_matches(name, list(columns), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return DataError(f"no column {name!r} in {source} (columns: {_quote_list(list(columns), 12)}){hint}")


def target_values(df, target: str, source):
    """The target column as a NumPy array, checked for missing values."""
    if target not in df.columns:
        raise missing_column(target, df.columns, source)
    y = df[target]
    missing = y.isna().to_numpy()
    if missing.any():
        raise DataError(
            f"target column {target!r} has missing values in {rows_text(missing)} of {source}; "
            "drop or fill those rows"
        )
    values = y.to_numpy()
    if values.dtype.kind not in "biuf":
        values = np.array(y.astype(str).tolist(), dtype=object)
    return values


def conform_features(model, df, source):
    """``df`` checked for the columns a table Pipeline reads: each present, a number column holding
    numbers (not '1_000' where training had 1000), and a column with no value at all (which a file
    cannot type) given the type the model expects."""
    import pandas as pd

    numeric, categorical, text = model_columns(model)
    missing = [c for c in [*numeric, *categorical, *text] if c not in df.columns]
    if missing:
        raise DataError(
            f"{source} lacks the column(s) {_quote_list(missing)} the model was trained on "
            f"(it reads {_quote_list([*numeric, *categorical, *text], 12)})"
        )
    empty = [c for c in [*numeric, *categorical] if df[c].isna().all() and df[c].dtype == object]
    if empty:
        df = df.assign(**{c: np.nan if c in numeric else None for c in empty})
        df = df.astype(dict.fromkeys([c for c in empty if c in numeric], np.float64))
    for c in numeric:
        dtype = df[c].dtype
        if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
            example = df[c].dropna()
            shown = repr(example.iloc[0]) if len(example) else "?"
            raise DataError(
                f"column {c!r} was numeric in training but holds non-numbers in {source} (e.g. {shown}); "
                "numbers are parsed strictly (no '_' separators, only ASCII digits)"
            )
    check_finite(df, numeric, source)
    return df


def check_finite(df, numeric, source) -> None:
    """An infinite value in a numeric column is an error naming the column and its rows (missing values
    are imputed; an infinity has no meaning to impute)."""
    for c in numeric:
        values = df[c].to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.isinf(values)
        if bad.any():
            raise DataError(f"column {c!r} of {source} has infinite values in {rows_text(bad)}")


def model_columns(model):
    """(numeric, categorical, text) raw columns of a table Pipeline, or None for another model; text
    columns hold documents (a ``text_<k>`` transformer of luce.tables.table_pipeline)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if not isinstance(model, Pipeline) or not isinstance(model.steps[0][1], ColumnTransformer):
        return None
    numeric, categorical, text = [], [], []
    for name, _, cols in model.steps[0][1].transformers_:  # as luce.tables.table_pipeline names them
        if name == "remainder":
            continue
        cols = [cols] if isinstance(cols, str) else cols  # a column of documents is named alone
        kind = categorical if name == "onehot" else text if name.startswith("text_") else numeric
        kind.extend(str(c) for c in cols)
    return numeric, categorical, text
