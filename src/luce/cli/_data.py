"""Reading and writing tables (CSV, TSV, Parquet) and turning columns into the model's features.

The encoding chosen at training time (which columns, one-hot categories, imputation values) is a
:class:`Features` object stored in the model file's user metadata, so ``predict`` and ``evaluate``
apply exactly the same steps and can name every column that differs.
"""

from __future__ import annotations

import difflib
import io
import math
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ._app import DataError

__all__ = ["Features", "read_table", "table_format", "write_table"]

_FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet"}
_COMPRESSION_METHODS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip"}
_COMPRESSED = tuple(_COMPRESSION_METHODS)
_MAX_CATEGORIES = 1000
_MAX_LISTED = 5


def table_format(path) -> str:
    """``"csv"``, ``"tsv"`` or ``"parquet"`` from the file name (compressed CSV/TSV included)."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes = suffixes[:-1]
    fmt = _FORMATS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        shown = "".join(Path(path).suffixes) or "(none)"
        raise DataError(
            f"unknown data format {shown!r} for {path}: use .csv, .tsv or .parquet "
            "(CSV and TSV may be compressed: .gz, .bz2, .xz, .zip)"
        )
    return fmt


def read_table(path):
    """Read a CSV/TSV/Parquet file into a DataFrame with string column names; never returns an empty one."""
    import pandas as pd

    p = Path(path)
    fmt = table_format(p)
    if not p.exists():
        raise DataError(f"no such file: {path}")
    if p.is_dir():
        raise DataError(f"{path} is a folder, not a data file")
    if p.stat().st_size == 0:
        raise DataError(f"{path} is empty (0 bytes)")
    try:
        if fmt == "parquet":
            df = pd.read_parquet(p)
        else:
            df = pd.read_csv(p, sep="," if fmt == "csv" else "\t")
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty: no header and no rows") from None
    except pd.errors.ParserError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "parse error"
        raise DataError(f"cannot parse {path} as {fmt.upper()}: {first}") from None
    except UnicodeDecodeError:
        raise DataError(f"cannot read {path} as {fmt.upper()}: it is not UTF-8 text") from None
    except (OSError, ValueError) as e:  # pyarrow's errors derive from these
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"cannot read {path} as {fmt.upper()}: {first}") from None
    df.columns = [str(c) for c in df.columns]
    if df.shape[1] == 0:
        raise DataError(f"{path} is empty: no columns")
    if len(df) == 0:
        raise DataError(f"{path} has a header but no data rows")
    return df


def write_table(df, path) -> None:
    """Write ``df`` to ``path`` (format from its name), or as CSV to stdout when ``path`` is None or '-'."""
    if path is None or str(path) == "-":
        sys.stdout.write(df.to_csv(index=False))
        return
    from ..io import atomic_write_bytes

    fmt = table_format(path)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        buffer = io.BytesIO()
        df.to_parquet(buffer, index=False)
        data = buffer.getvalue()
    else:
        method = _COMPRESSION_METHODS.get(Path(path).suffix.lower())
        buffer = io.BytesIO()
        df.to_csv(buffer, sep="," if fmt == "csv" else "\t", index=False, encoding="utf-8",
                  compression={"method": method} if method else None)  # fmt: skip
        data = buffer.getvalue()
    atomic_write_bytes(os.fspath(path), data)


def _quote_list(items, limit=_MAX_LISTED) -> str:
    shown = [repr(str(i)) for i in items[:limit]]
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(shown) + more


def _rows(mask) -> str:
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


def _is_numeric(series) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype)


def target_values(df, target: str, source):
    """The target column as a NumPy array, checked for missing values."""
    if target not in df.columns:
        raise missing_column(target, df.columns, source)
    y = df[target]
    missing = y.isna().to_numpy()
    if missing.any():
        raise DataError(
            f"target column {target!r} has missing values in {_rows(missing)} of {source}; "
            "drop or fill those rows"
        )
    values = y.to_numpy()
    if values.dtype.kind == "O" or str(y.dtype) in ("str", "string"):
        values = np.array(y.astype(str).tolist(), dtype=object)
    return values


@dataclass
class Features:
    """How the feature columns of a table become the model's numeric input."""

    columns: list[str]  # input columns, in training order
    categories: dict[str, list[str]] = field(default_factory=dict)  # one-hot columns -> categories
    impute: str | None = None  # "mean" | "median" | None
    fill: dict[str, float] = field(default_factory=dict)  # numeric column -> value for NaN
    target: str | None = None

    # ------------------------------------------------------------------ training
    @classmethod
    def fit(cls, df, target, *, one_hot: bool, impute: str | None, source, fit_rows=None) -> Features:
        """Check the feature columns of ``df`` and learn the encoding (statistics from ``fit_rows``)."""
        features = [c for c in df.columns if c != target]
        if not features:
            raise DataError(f"{source} has no feature columns besides the target {target!r}")
        text = [c for c in features if not _is_numeric(df[c])]
        if text and not one_hot:
            described = ", ".join(f"{c!r} (e.g. {_example(df[c])!r})" for c in text[:_MAX_LISTED])
            raise DataError(
                f"non-numeric feature columns in {source}: {described}; pass --one-hot to one-hot encode "
                "categorical columns, or convert them to numbers"
            )
        categories = {}
        for c in text:
            values = sorted({str(v) for v in df[c].dropna().tolist()})
            if len(values) > _MAX_CATEGORIES:
                raise DataError(
                    f"column {c!r} has {len(values)} distinct values, too many to one-hot encode "
                    f"(at most {_MAX_CATEGORIES}); drop it or encode it yourself"
                )
            categories[c] = values
        numeric = [c for c in features if c not in categories]
        _check_infinite(df, numeric, source)
        nan_cols = [c for c in numeric if df[c].isna().any()]
        if nan_cols and impute is None:
            raise DataError(
                f"{_describe_nan(df, nan_cols)} in {source}; pass --impute mean|median to fill them"
            )
        fill = {}
        if impute is not None:
            fit_df = df if fit_rows is None else df.iloc[fit_rows]
            for c in numeric:
                values = fit_df[c].astype("float64")
                stat = values.mean() if impute == "mean" else values.median()
                if not math.isfinite(stat):
                    raise DataError(f"column {c!r} has no values to compute the {impute} from")
                fill[c] = float(stat)
        return cls(columns=features, categories=categories, impute=impute, fill=fill, target=target)

    # ------------------------------------------------------------------ applying
    @property
    def output_columns(self) -> list[str]:
        out = []
        for c in self.columns:
            if c in self.categories:
                out += [f"{c}={v}" for v in self.categories[c]]
            else:
                out.append(c)
        return out

    def check_columns(self, df, source, *, ignore=()) -> None:
        present = [c for c in df.columns if c not in ignore and c != self.target]
        missing = [c for c in self.columns if c not in df.columns]
        extra = [c for c in present if c not in self.columns]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {_quote_list(missing)}")
            if extra:
                parts.append(f"extra {_quote_list(extra)}")
            raise DataError(
                f"the columns of {source} differ from training: {'; '.join(parts)} "
                f"(the model was trained on {_quote_list(self.columns, 12)})"
            )

    def transform(self, df, source, *, ignore=(), warn=None):
        """The model input for ``df`` as a float64 DataFrame with :attr:`output_columns`."""
        import pandas as pd

        self.check_columns(df, source, ignore=ignore)
        numeric = [c for c in self.columns if c not in self.categories]
        text = [c for c in numeric if not _is_numeric(df[c])]
        if text:
            c = text[0]
            raise DataError(
                f"column {c!r} was numeric in training but holds text in {source} (e.g. {_example(df[c])!r})"
            )
        _check_infinite(df, numeric, source)
        nan_cols = [c for c in numeric if df[c].isna().any()]
        if nan_cols and self.impute is None:
            raise DataError(
                f"{_describe_nan(df, nan_cols)} in {source}; the model was trained without --impute, so "
                "fill or drop those rows"
            )
        parts = {}
        for c in self.columns:
            if c in self.categories:
                values = df[c].astype(object).where(df[c].notna(), None).tolist()
                strings = [None if v is None else str(v) for v in values]
                known = set(self.categories[c])
                unseen = sorted({s for s in strings if s is not None and s not in known})
                if unseen and warn is not None:
                    n = sum(s is not None and s not in known for s in strings)
                    warn(
                        f"column {c!r}: {n} row(s) with categories not seen in training "
                        f"({_quote_list(unseen)}) are encoded as all zeros"
                    )
                for v in self.categories[c]:
                    parts[f"{c}={v}"] = np.array([s == v for s in strings], dtype=np.float64)
            else:
                col = df[c].astype("float64")
                if c in self.fill:
                    col = col.fillna(self.fill[c])
                parts[c] = col.to_numpy(dtype=np.float64)
        return pd.DataFrame(parts, columns=self.output_columns, index=df.index)

    # ------------------------------------------------------------------ storage
    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Features:
        return cls(**{k: data[k] for k in ("columns", "categories", "impute", "fill", "target") if k in data})

    @classmethod
    def from_model(cls, model, df, source, *, ignore=()) -> Features:
        """For models saved from Python: their feature names, or all numeric columns in file order."""
        names = getattr(model, "feature_names_in_", None)
        if names is not None:
            return cls(columns=[str(n) for n in np.asarray(names).tolist()])
        columns = [c for c in df.columns if c not in ignore]
        n = getattr(model, "n_features_in_", None)
        if n is not None and len(columns) != n:
            raise DataError(
                f"{source} has {len(columns)} feature columns but the model expects {n} (it was saved "
                "without feature names, so the columns are taken in file order)"
            )
        return cls(columns=columns)


def _example(series):
    values = series.dropna()
    return values.iloc[0] if len(values) else None


def _check_infinite(df, numeric, source) -> None:
    for c in numeric:
        values = df[c].to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.isinf(values)
        if bad.any():
            raise DataError(f"column {c!r} of {source} has infinite values in {_rows(bad)}")


def _describe_nan(df, columns) -> str:
    described = "; ".join(f"{c!r} ({_rows(df[c].isna().to_numpy())})" for c in columns[:_MAX_LISTED])
    more = f"; and {len(columns) - _MAX_LISTED} more columns" if len(columns) > _MAX_LISTED else ""
    return f"missing values (NaN) in feature columns {described}{more}"
