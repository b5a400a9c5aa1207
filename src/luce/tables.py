"""From a raw table to a model that takes it: typed reading and a scikit-learn Pipeline.

Two public functions, used by ``luce train`` and open to Python users:

- :func:`read_table` reads CSV, TSV and Parquet with pyarrow into typed columns, the same way for every
  format: numbers are parsed strictly (``1_000`` or Arabic-Indic digits stay text), ``YYYY-MM-DD`` dates
  and timestamps become ``datetime64`` columns whatever the file format, empty cells are missing.
- :func:`table_pipeline` wraps a luce estimator in a :class:`sklearn.pipeline.Pipeline` whose first step,
  a ``ColumnTransformer``, selects the feature columns by name, imputes and standardises the numeric ones
  and one-hot encodes the text ones. ID-like and date columns are left out unless named in ``features``.
  Columns of documents (free text) named in ``text`` become TF-IDF (or hashed) bags of words.
  The Pipeline is what ``luce.save`` stores, so ``luce.load(path).predict(raw_table)`` works.

Layering: this module sits above ``luce.models`` and below ``luce.cli``; it imports pandas and pyarrow
on first use only (scikit-learn's base classes at import, as ``luce.models`` does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

__all__ = ["ColumnPlan", "TextColumn", "plan_columns", "read_table", "table_pipeline", "text_vectorizer"]

_FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet"}
_COMPRESSED = {".gz", ".bz2", ".zst", ".lz4"}  # what pyarrow's CSV reader decompresses from the name

# A column whose name says it identifies rows: "id", "ID", "user_id", "row id", "customerId", "uuid".
_ID_NAME = re.compile(r"(?i:(^|[_ \-])(id|uuid|guid|key)$)|[a-z]Id$|[a-z]ID$")
_ID_MIN_ROWS = 20  # below this, "all values distinct" says nothing
MAX_CATEGORIES = 1000  # a text column with more distinct values is left out as ID-like
MISSING = "(missing)"  # the category of a missing text value
VOCABULARY_SIZE = 50_000  # default cap on the words (TF-IDF) or hash buckets (hashing) of a text column
_BLOCK = 1 << 20  # bytes of CSV text parsed at a time


def table_format(path) -> str:
    """``"csv"``, ``"tsv"`` or ``"parquet"`` from the file name (``.gz``/``.bz2``/... CSV included)."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes = suffixes[:-1]
    fmt = _FORMATS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        shown = "".join(Path(path).suffixes) or "(none)"
        raise ValueError(
            f"unknown table format {shown!r} for {path}: use .csv, .tsv or .parquet "
            f"(CSV and TSV may be compressed: {', '.join(sorted(_COMPRESSED))})"
        )
    return fmt


def read_table(path, *, sep=None):
    """Read a CSV, TSV or Parquet file into a pandas DataFrame with typed columns.

    The same table gives the same columns from every format: integers and floats as numbers, text as
    strings, ``YYYY-MM-DD`` dates and ISO timestamps as ``datetime64[ns]``, booleans as ``bool``. Numbers
    are parsed strictly: ``1_000``, ``1,5``, ``0x10`` or Arabic-Indic digits make a column text, never a
    number. Empty cells, ``NA``, ``NaN`` and ``null`` are missing values; so is an empty string in a
    Parquet file (a CSV file cannot tell the two apart). A Parquet text column is typed as the CSV reader
    types the same cells: dates or numbers stored as text read as dates or numbers from either file.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.csv``, ``.tsv`` (``.tab``) or ``.parquet`` (``.pq``) file; CSV and TSV may be compressed.
    sep : str, optional
        The field separator of a CSV/TSV file (default ``,`` for CSV and a tab for TSV).

    Returns
    -------
    pandas.DataFrame
        Column names are strings.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from luce.tables import read_table
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = path.write_text("day,n,x\\n2024-01-02,1_000,1.5\\n2024-01-03,7,\\n")
    >>> df = read_table(path)
    >>> [str(t) for t in df.dtypes]
    ['datetime64[ns]', 'str', 'float64']
    """
    import pyarrow as pa

    fmt = table_format(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        table = _text_typed_as_in_csv(_uniform_types(pq.read_table(path), pa), pa)
    else:
        import pyarrow.csv as pc

        delimiter = sep if sep is not None else ("," if fmt == "csv" else "\t")
        if len(delimiter) != 1:
            raise ValueError(f"sep must be one character, got {sep!r}")
        parse = pc.ParseOptions(delimiter=delimiter)
        table = _read_csv(path, parse, pa, pc)
        table = _no_hex_integers(table, path, parse, pa, pc)
    table = _empty_text_is_missing(_uniform_types(table, pa), pa)
    # split_blocks + self_destruct free each Arrow column once converted: peak memory stays near
    # one copy of the data.
    df = table.to_pandas(split_blocks=True, self_destruct=True, date_as_object=False)
    del table
    df.columns = [str(c) for c in df.columns]
    return df


def _read_csv(path, parse, pa, pc):
    """The whole CSV file as an Arrow table, read in 1 MiB blocks to keep the peak memory near one
    copy of the data (pyarrow's one-shot reader holds about three)."""
    # Empty text cells are missing, as they are in Parquet files written by pandas.
    convert = pc.ConvertOptions(strings_can_be_null=True)
    try:
        # One block in flight at a time (use_threads=False): the reader's read-ahead would hold several.
        options = pc.ReadOptions(block_size=_BLOCK, use_threads=False)
        with pc.open_csv(path, read_options=options, parse_options=parse, convert_options=convert) as reader:
            return pa.Table.from_batches(list(reader), schema=reader.schema)
    except pa.ArrowInvalid:
        # The streaming reader takes its column types from the first block; when a later block does
        # not fit them (a number column with a decimal or text further down), read it all at once,
        # which infers the types from every row.
        return pc.read_csv(path, parse_options=parse, convert_options=convert)


def _text_typed_as_in_csv(table, pa):
    """A Parquet file's text columns typed as the CSV reader types the same cells (numbers, dates,
    booleans), so that the same rows read the same from either format. The text columns go through
    pyarrow's own CSV reader, written and read back in memory: one inference rule, not a second copy."""
    import pyarrow.compute as pac
    import pyarrow.csv as pc

    names = [f.name for f in table.schema if pa.types.is_string(f.type)]
    if not names or table.num_rows == 0:
        return table
    sink = pa.BufferOutputStream()
    pc.write_csv(table.select(names), sink, write_options=pc.WriteOptions(quoting_style="needed"))
    convert = pc.ConvertOptions(strings_can_be_null=True)
    typed = pc.read_csv(pa.BufferReader(sink.getvalue()), convert_options=convert)
    for name, column in zip(typed.column_names, typed.columns, strict=True):
        if pa.types.is_string(column.type):
            continue
        text = table.column(name)
        # As for CSV files: pyarrow reads 0x10 as the integer 16; such a column stays text.
        hexadecimal = pac.any(pac.match_substring(text, "x", ignore_case=True)).as_py()
        if pa.types.is_integer(column.type) and hexadecimal:
            continue
        table = table.set_column(table.schema.get_field_index(name), name, column)
    return table


def _mentions_hex(path) -> bool:
    """Whether the file holds "0x" or "0X" anywhere (read in blocks; compressed files are decoded)."""
    import pyarrow as pa

    tail = b""
    with pa.input_stream(str(path), compression="detect") as stream:
        while block := stream.read(_BLOCK):
            if b"0x" in (tail + block).lower():
                return True
            tail = block[-1:]
    return False


def _no_hex_integers(table, path, parse, pa, pc):
    """pyarrow reads ``0x10`` as the integer 16: integer columns holding such cells become text."""
    import pyarrow.compute as pac

    integers = [f.name for f in table.schema if pa.types.is_integer(f.type)]
    if not integers or not _mentions_hex(path):
        return table
    convert = pc.ConvertOptions(include_columns=integers, column_types=dict.fromkeys(integers, pa.string()))
    hexadecimal = set()
    with pc.open_csv(
        path, read_options=pc.ReadOptions(block_size=_BLOCK), parse_options=parse, convert_options=convert
    ) as reader:
        for batch in reader:  # one block of these columns' text at a time
            for name in integers:
                if (
                    name not in hexadecimal
                    and pac.any(pac.match_substring(batch.column(name), "x", ignore_case=True)).as_py()
                ):
                    hexadecimal.add(name)
    for name in hexadecimal:  # rare: read those columns again, as text
        text = pc.read_csv(path, parse_options=parse, convert_options=convert).column(name)
        table = table.set_column(table.schema.get_field_index(name), name, text)
    return table


def _uniform_types(table, pa):
    """Dates and timestamps as timestamp[ns] without time zone; large strings as strings."""
    fields = []
    for f in table.schema:
        t = f.type
        if pa.types.is_date(t) or pa.types.is_timestamp(t):
            t = pa.timestamp("ns")
        elif pa.types.is_large_string(t):
            t = pa.string()
        elif pa.types.is_dictionary(t) and pa.types.is_string(t.value_type):
            t = pa.string()
        fields.append(pa.field(f.name, t))
    schema = pa.schema(fields)
    if schema.equals(table.schema, check_metadata=False):
        return table
    columns = []
    for f, column in zip(fields, table.columns, strict=True):
        if pa.types.is_timestamp(column.type) and column.type.tz is not None:
            column = column.cast(pa.timestamp(column.type.unit))  # the UTC instant, as a naive time
        columns.append(column.cast(f.type))
    return pa.table(columns, names=[f.name for f in fields])


def _empty_text_is_missing(table, pa):
    """An empty text cell is missing, as in a CSV file (which cannot tell "" from missing)."""
    import pyarrow.compute as pac

    for k, f in enumerate(table.schema):
        if pa.types.is_string(f.type):
            empty = pac.equal(table.column(k), "")
            if pac.any(empty).as_py():
                column = pac.if_else(empty, pa.scalar(None, f.type), table.column(k))
                table = table.set_column(k, f.name, column)
    return table


@dataclass(frozen=True)
class ColumnPlan:
    """Which columns of a table feed the model, and how.

    Attributes
    ----------
    numeric : list of str
        Numeric (and boolean) columns: imputed, then standardised.
    categorical : list of str
        Text columns: one-hot encoded.
    left_out : dict of str to str
        Columns not used, each with the reason (``"ID-like"``, ``"date"``, ``"dropped"``, ...).
    """

    numeric: list[str]
    categorical: list[str]
    left_out: dict[str, str] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def notice(self) -> str | None:
        """One line naming the columns left out automatically (None when there are none)."""
        auto = {c: r for c, r in self.left_out.items() if r != "dropped"}
        if not auto:
            return None
        named = ", ".join(f"{c!r} ({r})" for c, r in auto.items())
        return f"left out {named}; name them in features (--features) to use them"


def _kind(series) -> str:
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype) or isinstance(dtype, pd.PeriodDtype):
        return "date"
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    return "text"


def _id_like(name: str, series, kind: str) -> str | None:
    """Why ``series`` looks like a row identifier, or None."""
    values = series.dropna()
    n = len(values)
    if _ID_NAME.search(name) and (kind != "numeric" or series.dtype.kind in "iu"):
        return "ID-like"
    if kind == "text":
        distinct = values.nunique()
        if n >= _ID_MIN_ROWS and distinct == n:
            return "ID-like: all values distinct"
        if distinct > MAX_CATEGORIES:
            return f"ID-like: {distinct} distinct values"
    if kind == "numeric" and n >= _ID_MIN_ROWS and series.dtype.kind in "iu":
        if values.is_monotonic_increasing and values.is_unique:
            return "ID-like: distinct increasing integers"
    return None


def plan_columns(X, *, features=None, drop=()) -> ColumnPlan:
    """Choose the feature columns of a table and their encoding.

    Parameters
    ----------
    X : pandas.DataFrame
        The table without its target column(s).
    features : list of str, optional
        Use exactly these columns (ID-like columns included when named; a date column is refused:
        derive numbers from it first). Default: every column, less ``drop`` and the ID-like and date
        columns.
    drop : list of str
        Columns never to use.

    Returns
    -------
    ColumnPlan

    Examples
    --------
    >>> import pandas as pd
    >>> from luce.tables import plan_columns
    >>> df = pd.DataFrame({"user_id": [1, 2, 3], "age": [30.0, None, 41.0], "city": ["a", "b", None]})
    >>> plan = plan_columns(df)
    >>> plan.numeric, plan.categorical, plan.left_out
    (['age'], ['city'], {'user_id': 'ID-like'})
    """
    columns = [str(c) for c in X.columns]
    for name, given in (("features", features or ()), ("drop", drop)):
        unknown = [c for c in given if c not in columns]
        if unknown:
            raise ValueError(f"{name}: no column {unknown[0]!r} in the table (columns: {columns[:12]})")
    left_out = {c: "dropped" for c in drop}
    chosen = [c for c in (features if features is not None else columns) if c not in left_out]
    numeric, categorical = [], []
    for c in chosen:
        if X[c].isna().all():
            if features is not None:
                raise ValueError(f"features: column {c!r} has no values")
            left_out[c] = "empty"
            continue
        kind = _kind(X[c])
        if kind == "date":
            if features is not None:
                raise ValueError(
                    f"features: column {c!r} holds dates, which a linear model cannot use directly; "
                    "add a numeric column derived from it (e.g. days since a reference date)"
                )
            left_out[c] = "date"
            continue
        if features is None:
            reason = _id_like(c, X[c], kind)
            if reason is not None:
                left_out[c] = reason
                continue
        if kind == "text" and X[c].nunique() > MAX_CATEGORIES:
            raise ValueError(
                f"features: column {c!r} has {X[c].nunique()} distinct values, too many to one-hot encode "
                f"(at most {MAX_CATEGORIES}); drop it or encode it yourself"
            )
        (numeric if kind == "numeric" else categorical).append(c)
    if not numeric and not categorical:
        raise ValueError(f"no feature columns left (left out: {left_out})")
    return ColumnPlan(numeric=numeric, categorical=categorical, left_out=left_out)


class TextColumn(TransformerMixin, BaseEstimator):
    """One column of documents as the 1-D array of strings a text vectorizer takes; a missing document
    (None, NaN) is the empty string, so it adds no words rather than stopping a prediction.

    A stateless scikit-learn transformer: :func:`table_pipeline` puts it before the vectorizer of each
    ``text`` column. It takes a pandas Series, a 1-D array or an ``(n, 1)`` array, as a
    ``ColumnTransformer`` gives one column selected by name; a value that is not a string (a number in
    a column of documents) becomes its ``str``. In an ONNX export it is the identity: a missing string
    arrives there as ``""`` already.

    Examples
    --------
    >>> import pandas as pd
    >>> from luce.tables import TextColumn
    >>> TextColumn().fit_transform(pd.Series(["a cat", None, float("nan")])).tolist()
    ['a cat', '', '']
    """

    def __sklearn_is_fitted__(self):
        return True  # nothing to learn

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        values = np.asarray(getattr(X, "values", X), dtype=object)
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.ndim != 1:
            raise ValueError(f"TextColumn takes one column of documents, got shape {values.shape}")
        out = np.empty(values.shape, dtype=object)
        out[:] = [_document(v) for v in values.tolist()]
        return out

    def get_feature_names_out(self, input_features=None):
        return np.asarray(input_features if input_features is not None else ["text"], dtype=object)


def _document(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return ""
    except ImportError:  # pragma: no cover - pandas comes with the tables extra
        pass
    return value if isinstance(value, str) else str(value)


def text_vectorizer(vectorizer="tfidf", *, vocabulary_size=VOCABULARY_SIZE):
    """The steps that turn one column of documents into a sparse bag of words.

    ``"tfidf"`` (the default): ``TfidfVectorizer(max_features=vocabulary_size)``, the
    ``vocabulary_size`` most frequent words of the fitted documents, each a column; the vocabulary is
    stored in the model file and an ONNX export can carry it. ``"hashing"``: ``HashingVectorizer``
    into ``vocabulary_size`` buckets (no vocabulary kept, so any number of distinct words costs the
    same memory) then ``TfidfTransformer``; no ONNX export (ONNX has no operator for its MurmurHash3).
    Both: lowercase, words of two or more letters or digits (scikit-learn's default token pattern),
    rows scaled to unit L2 norm.

    Returns
    -------
    sklearn.pipeline.Pipeline
        ``TextColumn`` (a missing document is ``""``) followed by the vectorizer step(s).
    """
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer, TfidfVectorizer
    from sklearn.pipeline import Pipeline

    if isinstance(vocabulary_size, bool) or not isinstance(vocabulary_size, int) or vocabulary_size < 1:
        raise ValueError(f"vocabulary_size must be an int >= 1, got {vocabulary_size!r}")
    if vectorizer == "tfidf":
        steps = [("tfidf", TfidfVectorizer(max_features=vocabulary_size))]
    elif vectorizer == "hashing":
        hashing = HashingVectorizer(n_features=vocabulary_size, alternate_sign=False, norm=None)
        steps = [("hash", hashing), ("tfidf", TfidfTransformer())]
    else:
        raise ValueError(f"vectorizer must be 'tfidf' or 'hashing', got {vectorizer!r}")
    return Pipeline([("fill", TextColumn()), *steps])


def check_text_columns(X, text) -> list[str]:
    """``text`` (a column name or a list of them) as a list of columns of ``X`` that hold documents;
    ValueError naming the column otherwise."""
    text = [text] if isinstance(text, str) else [str(c) for c in text]
    columns = [str(c) for c in X.columns]
    for c in text:
        if c not in columns:
            raise ValueError(f"text: no column {c!r} in the table (columns: {columns[:12]})")
        kind = _kind(X[c])
        if kind != "text" and not X[c].isna().all():
            raise ValueError(
                f"text: column {c!r} holds {'dates' if kind == 'date' else 'numbers'}, not documents; "
                "name it in features to use it"
            )
    if len(set(text)) != len(text):
        raise ValueError(f"text: a column is named twice in {text}")
    return text


def table_pipeline(
    estimator,
    X,
    *,
    features=None,
    drop=(),
    scale=True,
    impute="median",
    text=(),
    vectorizer="tfidf",
    vocabulary_size=VOCABULARY_SIZE,
):
    """A scikit-learn Pipeline that takes the raw table ``X`` and ends in ``estimator``.

    The first step, ``"columns"``, is a ``ColumnTransformer`` that selects the columns chosen by
    :func:`plan_columns` by name (any other column, such as an ID or the target, is ignored):

    - numeric columns: ``SimpleImputer(strategy=impute)`` then, unless ``scale=False``,
      ``StandardScaler()`` (statistics of the rows the Pipeline is fitted on);
    - text columns: ``SimpleImputer(strategy="constant", fill_value="(missing)")`` then
      ``OneHotEncoder(handle_unknown="ignore")`` with the categories of the fitted rows only: a missing
      value is a category of its own, and a category never seen in fitting (``handle_unknown="ignore"``)
      encodes as all zeros, so the model falls back on its intercept for that column;
    - ``text`` columns (documents): :func:`text_vectorizer`, a sparse TF-IDF bag of words per column (a
      missing document is ``""``). With ``text``, the other columns are used only when named in
      ``features``: a table of documents mostly carries IDs, dates and titles besides them.

    The second step, ``"model"``, is ``estimator``. Nothing is fitted here. Fit it on
    ``X[plan_columns(X).columns]`` to make the used columns its only inputs (what an ONNX export of it
    then takes); fitted on the whole table it still reads only those columns.

    Parameters
    ----------
    estimator : luce estimator
        For example ``SoftmaxRegression()`` or ``SigmoidRegression()``.
    X : pandas.DataFrame
        The table (without the target) whose columns the Pipeline will take.
    features, drop
        See :func:`plan_columns`.
    scale : bool, default True
        Standardise the numeric columns.
    impute : {"median", "mean"}, default "median"
        How missing numbers are filled.
    text : str or list of str, optional
        Columns of documents (free text).
    vectorizer : {"tfidf", "hashing"}, default "tfidf"
        How documents become features; see :func:`text_vectorizer`.
    vocabulary_size : int
        The most frequent words kept (``"tfidf"``) or the hash buckets (``"hashing"``), per text column.

    Returns
    -------
    sklearn.pipeline.Pipeline

    Examples
    --------
    >>> import pandas as pd
    >>> from luce import SoftmaxRegression
    >>> from luce.tables import table_pipeline
    >>> df = pd.DataFrame({"x": [0.0, 1.0, None, 3.0], "color": ["red", "blue", "red", None]})
    >>> model = table_pipeline(SoftmaxRegression(), df).fit(df, ["a", "b", "a", "b"])
    >>> model.predict(pd.DataFrame({"x": [0.5], "color": ["green"]})).shape
    (1,)
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if impute not in ("median", "mean"):
        raise ValueError(f"impute must be 'median' or 'mean', got {impute!r}")
    text = check_text_columns(X, text)
    if text and not features:
        plan = ColumnPlan(numeric=[], categorical=[])
    else:
        plan = plan_columns(X.drop(columns=text), features=features, drop=drop)
    transformers = []
    if plan.numeric:
        steps = [("impute", SimpleImputer(strategy=impute))]
        if scale:
            steps.append(("scale", StandardScaler()))
        transformers.append(("numeric", Pipeline(steps), plan.numeric))
    if plan.categorical:
        steps = [
            # A missing value is a category of its own, under a name ONNX can carry too (its string
            # tensors have no NaN: a missing string arrives there as "").
            ("impute", SimpleImputer(strategy="constant", fill_value=MISSING)),
            ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype="float64")),
        ]
        transformers.append(("onehot", Pipeline(steps), plan.categorical))
    for k, c in enumerate(text):
        # One column named alone (not in a list): the vectorizer takes a 1-D column of documents.
        transformers.append((f"text_{k}", text_vectorizer(vectorizer, vocabulary_size=vocabulary_size), c))
    columns = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=True)
    return Pipeline([("columns", columns), ("model", estimator)])
