"""luce.tables: typed reading identical across CSV, TSV and Parquet, the column plan, the Pipeline.

References: pandas' own typed DataFrames written to each format, and a Pipeline assembled by hand
from scikit-learn's transformers.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import luce
from luce.tables import plan_columns, read_table, table_pipeline


@pytest.fixture
def frame():
    return pd.DataFrame({
        "day": pd.to_datetime(["2024-01-01", "2024-02-29", None, "2023-12-31"]),
        "n": [1, 2, 3, 4],
        "x": [1.5, np.nan, -2.25, 1e-300],
        "city": ["Paris", None, "Rome", "Oslo"],
        "flag": [True, False, True, True],
    })  # fmt: skip


@pytest.mark.parametrize("name", ["t.csv", "t.tsv", "t.csv.gz", "t.parquet"])
def test_every_format_reads_the_same_typed_table(frame, tmp_path, name):
    path = tmp_path / name
    if name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False, sep="\t" if ".tsv" in name else ",")
    df = read_table(path)
    assert df["day"].dtype == "datetime64[ns]" and df["n"].dtype == "int64" and df["x"].dtype == "float64"
    assert df["flag"].dtype == bool and pd.api.types.is_string_dtype(df["city"].dtype)
    pd.testing.assert_series_equal(df["day"], frame["day"].astype("datetime64[ns]"))
    np.testing.assert_array_equal(df["x"].to_numpy(), frame["x"].to_numpy())
    assert df["city"].isna().tolist() == [False, True, False, False]
    assert df["city"].dropna().tolist() == ["Paris", "Rome", "Oslo"]


def test_parquet_timestamps_and_csv_dates_are_the_same_values(tmp_path):
    days = pd.to_datetime(["2024-01-01", "2024-01-02"])
    pd.DataFrame({"d": days}).to_parquet(tmp_path / "a.parquet")  # timestamp[ns] in the file
    pd.DataFrame({"d": days.date}).to_parquet(tmp_path / "b.parquet")  # date32 in the file
    (tmp_path / "c.csv").write_text("d\n2024-01-01\n2024-01-02\n")
    tables = [read_table(tmp_path / f) for f in ("a.parquet", "b.parquet", "c.csv")]
    for t in tables:
        pd.testing.assert_frame_equal(t, tables[0])


@pytest.mark.parametrize("text", ["1_000", "\u0663", "1,5", "0x10", " 7e"])
def test_numbers_are_parsed_strictly(tmp_path, text):
    (tmp_path / "t.csv").write_text(f'v\n1\n"{text}"\n')
    df = read_table(tmp_path / "t.csv")
    assert not pd.api.types.is_numeric_dtype(df["v"].dtype)
    assert df["v"].tolist() == ["1", text]


def test_sep_reads_a_semicolon_file(tmp_path):
    (tmp_path / "t.csv").write_text("a;b\n1;x\n2;y\n")
    assert read_table(tmp_path / "t.csv", sep=";").columns.tolist() == ["a", "b"]
    assert read_table(tmp_path / "t.csv").columns.tolist() == ["a;b"]


def test_plan_leaves_out_ids_and_dates(rng):
    n = 30
    df = pd.DataFrame({
        "row": np.arange(n),
        "userId": rng.integers(0, 5, n),
        "order_no": [f"A{i}" for i in range(n)],
        "signup": pd.date_range("2024-01-01", periods=n),
        "paid": rng.normal(size=n),
        "valid": rng.integers(0, 2, n),
        "colour": rng.choice(["r", "g"], n),
    })  # fmt: skip
    plan = plan_columns(df)
    assert plan.numeric == ["paid", "valid"] and plan.categorical == ["colour"]
    assert plan.left_out == {
        "row": "ID-like: distinct increasing integers",
        "userId": "ID-like",
        "order_no": "ID-like: all values distinct",
        "signup": "date",
    }
    assert plan.notice().startswith("left out 'row' (ID-like: distinct increasing integers), 'userId'")
    chosen = plan_columns(df, features=["row", "colour"], drop=["colour"])
    assert chosen.columns == ["row"] and chosen.left_out == {"colour": "dropped"} and chosen.notice() is None
    with pytest.raises(ValueError, match="features: column 'signup' holds dates"):
        plan_columns(df, features=["signup"])
    with pytest.raises(ValueError, match="drop: no column 'nope'"):
        plan_columns(df, drop=["nope"])


def test_pipeline_matches_one_assembled_by_hand(rng):
    n = 80
    df = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n) * 5 + 3,
                       "c": rng.choice(["a", "b", "c"], n).astype(object)})  # fmt: skip
    df.loc[::7, "x"] = np.nan
    df.loc[::5, "c"] = None
    y = np.where(df["z"] + rng.normal(size=n) > 3, "hi", "lo")
    ours = table_pipeline(luce.SoftmaxRegression(tol=1e-10, max_iter=1000), df).fit(df, y)
    numeric = Pipeline([("i", SimpleImputer(strategy="median")), ("s", StandardScaler())])
    onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    theirs = Pipeline([
        ("ct", ColumnTransformer([("n", numeric, ["x", "z"]), ("c", onehot, ["c"])])),
        ("m", luce.SoftmaxRegression(tol=1e-10, max_iter=1000)),
    ]).fit(df, y)  # fmt: skip
    new = pd.DataFrame({"x": [np.nan, 0.5], "z": [1.0, 9.0], "c": ["unseen", None], "extra": [1, 2]})
    np.testing.assert_allclose(ours.predict_proba(new), theirs.predict_proba(new), atol=1e-7)
    assert ours[:-1].transform(new)[0, 2:].sum() == 0  # an unseen category: all zeros
    unscaled = table_pipeline(luce.SoftmaxRegression(), df, scale=False, impute="mean").fit(df, y)
    np.testing.assert_allclose(unscaled[:-1].transform(new)[:, :2], [[np.nanmean(df.x), 1.0], [0.5, 9.0]])


def test_a_type_change_after_the_first_block_is_read_from_every_row(tmp_path):
    # 200 000 integer rows (more than the 1 MiB the reader parses at a time), then a decimal and a
    # hexadecimal-looking cell: the columns are a float column and a text column, as for a small file.
    n = 200_000
    lines = ["a,b", *(f"{i},{i}" for i in range(n)), "1.5,0x10"]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    df = read_table(tmp_path / "t.csv")
    assert df["a"].dtype == "float64" and df["a"].iloc[-1] == 1.5 and df["a"].iloc[n - 1] == n - 1
    assert pd.api.types.is_string_dtype(df["b"].dtype) and df["b"].iloc[-1] == "0x10"


def test_an_empty_string_is_missing_in_every_format(tmp_path):
    df = pd.DataFrame({"note": ["gift", "", None, "rush"], "x": [1.0, 2.0, 3.0, 4.0]})
    df.to_csv(tmp_path / "t.csv", index=False)
    df.to_parquet(tmp_path / "t.parquet", index=False)
    from_csv, from_parquet = read_table(tmp_path / "t.csv"), read_table(tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(from_csv, from_parquet)
    assert from_parquet["note"].isna().tolist() == [False, True, True, False]


def test_text_cells_in_parquet_read_as_the_same_cells_in_csv(tmp_path):
    """Dates, numbers and booleans stored as Parquet text are typed as the CSV reader types them."""
    df = pd.DataFrame(
        {
            "joined": ["2024-01-01", "2024-01-02", None, "2024-01-01"],
            "amount": ["1.5", "2", "", "7"],
            "count": ["1", "2", "3", "4"],
            "flag": ["true", "false", "true", None],
            "hex": ["0x10", "12", "7", "8"],
            "grouped": ["1_000", "2", "3", "4"],
            "city": ["Paris", "Lyon", "", "Paris"],
        },
        dtype="string",
    )
    df.to_csv(tmp_path / "t.csv", index=False)
    df.to_parquet(tmp_path / "t.parquet", index=False)
    from_csv, from_parquet = read_table(tmp_path / "t.csv"), read_table(tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(from_csv, from_parquet)
    assert str(from_parquet["joined"].dtype) == "datetime64[ns]"
    assert from_parquet["amount"].dtype == np.float64 and from_parquet["count"].dtype == np.int64
    assert from_parquet["hex"].dtype != np.int64 and from_parquet["grouped"].dtype != np.int64
