"""Reading a table: luce.read_table (pyarrow, typed) beside pandas.read_csv — peak memory and time.

A table of N rows (default 600 000 and 1 800 000: an integer ID, two float columns, an integer column, a
4-category text column, a timestamp and a 2-class label; about 40 and 120 MB of CSV) is written as CSV and
Parquet. Each
reader runs in a fresh process; the peak is the rise of that process's maximum resident set size over
the baseline after its imports (ru_maxrss), shown in MB and as a multiple of the file's size (the CLI's
target is at most 2.5x a CSV's size; a Parquet file is compressed, so its multiple is larger by the
compression ratio). About 20-25 MB of the peak is fixed (code paths loaded on first use), so the multiple
falls as files grow. The machine is shared, so times and peaks vary by about 10 % between runs.

Run: python benchmarks/tables.py [--rows 600000 1800000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = """
import resource, sys, time
import numpy, pandas, pyarrow, pyarrow.csv, pyarrow.parquet
import luce.tables
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
if sys.argv[1] == "pandas":
    df = pandas.read_csv(sys.argv[2])
else:
    df = luce.tables.read_table(sys.argv[2])
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((peak - base) * 1024, seconds, df.memory_usage(deep=True).sum())
"""


def make_table(rows: int, folder: Path) -> tuple[Path, Path]:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    df = pd.DataFrame({
        "id": np.arange(rows),
        "a": rng.normal(size=rows),
        "b": rng.normal(size=rows).round(3),
        "c": rng.integers(0, 1000, rows),
        "city": rng.choice(["Paris", "Rome", "Oslo", "Berlin"], rows),
        "when": pd.date_range("2020-01-01", periods=rows, freq="min"),
        "y": rng.choice(["yes", "no"], rows),
    })  # fmt: skip
    csv, parquet = folder / "table.csv", folder / "table.parquet"
    df.to_csv(csv, index=False)
    df.to_parquet(parquet, index=False)
    return csv, parquet


def measure(reader: str, path: Path) -> tuple[float, float, float]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, reader, str(path)], capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), float(out[1]), float(out[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[600_000, 1_800_000])
    for rows in parser.parse_args().rows:
        run(rows)


def run(rows: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        # In a child process: a child's peak-memory mark starts at its parent's resident size (fork),
        # so this process must stay small.
        code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import tables; "
        code += f"tables.make_table({rows}, tables.Path({tmp!r}))"
        subprocess.run([sys.executable, "-c", code], check=True)
        csv, parquet = Path(tmp) / "table.csv", Path(tmp) / "table.parquet"
        sizes = os.path.getsize(csv) / 1e6, os.path.getsize(parquet) / 1e6
        print(f"{rows} rows: CSV {sizes[0]:.1f} MB, Parquet {sizes[1]:.1f} MB")
        print(f"{'reader':<26} {'file':<9} {'peak MB':>8} {'x file':>7} {'frame MB':>9} {'seconds':>8}")
        for reader, path in (
            ("luce.read_table", csv),
            ("pandas.read_csv", csv),
            ("luce.read_table", parquet),
        ):
            peak, seconds, frame = measure("pandas" if reader.startswith("pandas") else "luce", path)
            size = os.path.getsize(path)
            print(
                f"{reader:<26} {path.suffix:<9} {peak / 1e6:>8.1f} {peak / size:>7.2f} {frame / 1e6:>9.1f} "
                f"{seconds:>8.2f}"
            )


if __name__ == "__main__":
    main()
