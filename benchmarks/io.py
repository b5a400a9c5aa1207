"""Model files and ONNX: luce.save / luce.load beside pickle, joblib and NumPy's .npz; predict_proba beside
the exported ONNX graph in onnxruntime — in one run.

The model is a SoftmaxRegression with ``coef_`` of shape (K, d) float64 (default K=1000 classes,
d=2048 features: 16 MiB), string class labels and feature names. Times are medians of ``--repeat`` runs
and also given as a ratio to ``np.copyto`` of ``coef_`` (the cost of touching the weights once).
luce.save writes atomically and fsyncs the file and its folder, so it is also shown beside pickle
with the same fsync ("pickle + fsync"); luce.load verifies a SHA-256 of every array and of the metadata.
Prediction: N=4000 rows of d features (float32 input for ONNX, float64 for luce), BLAS as configured.
A table Pipeline (ColumnTransformer: 20 number columns imputed and scaled, 5 string columns of 200
categories imputed and one-hot encoded, then SoftmaxRegression) is saved and loaded beside pickle too:
its load rebuilds each scikit-learn step by a one-row fit. The machine is shared, so timings are noisy.

Run: python benchmarks/io.py [--classes 1000 --features 2048 --rows 4000 --repeat 5]
"""

from __future__ import annotations

import argparse
import io
import os
import pickle
import tempfile
from pathlib import Path

import numpy as np

from _common import copyto_time, median_time


def make_model(k, d):
    import luce

    rng = np.random.default_rng(0)
    model = luce.SoftmaxRegression()
    model.coef_ = rng.standard_normal((k, d)) * 0.05
    model.intercept_ = rng.standard_normal(k) * 0.1
    model.classes_ = np.array([f"class_{i}" for i in range(k)], dtype=object)
    model.feature_names_in_ = np.array([f"f{j}" for j in range(d)], dtype=object)
    model.n_features_in_ = d
    model.temperature_ = 1.3
    model.n_iter_ = 100
    model.loss_curve_ = list(np.linspace(3.0, 0.5, 101))
    return model


def make_table_pipeline():
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    import luce

    rng = np.random.default_rng(2)
    n = 2000
    numbers = {f"n{j}": rng.standard_normal(n) for j in range(20)}
    strings = {f"s{j}": rng.choice([f"v{i}" for i in range(200)], n).astype(object) for j in range(5)}
    frame = pd.DataFrame({**numbers, **strings})
    pre = ColumnTransformer(
        [
            ("numbers", make_pipeline(SimpleImputer(), StandardScaler()), list(numbers)),
            (
                "strings",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                list(strings),
            ),
        ]
    )
    y = rng.integers(0, 10, n)
    return make_pipeline(pre, luce.SoftmaxRegression(max_iter=20)).fit(frame, y)


def write_fsync(path, data):
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--features", type=int, default=2048)
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import joblib
    import onnxruntime as ort

    import luce

    model = make_model(args.classes, args.features)
    base = copyto_time(model.coef_, args.repeat)
    folder = Path(tempfile.mkdtemp())
    paths = {name: folder / f"model.{name}" for name in ("luce", "pkl", "joblib", "npz")}

    def npz_bytes():
        buffer = io.BytesIO()
        np.savez(buffer, coef=model.coef_, intercept=model.intercept_)
        return buffer.getvalue()

    rows = []
    rows.append(
        (
            "save",
            "luce.save (atomic, fsync, checksums)",
            median_time(lambda: luce.save(model, paths["luce"]), args.repeat),
        )
    )
    rows.append(
        (
            "save",
            "pickle + fsync",
            median_time(lambda: write_fsync(paths["pkl"], pickle.dumps(model, 5)), args.repeat),
        )
    )
    rows.append(
        (
            "save",
            "pickle (no fsync)",
            median_time(lambda: paths["pkl"].write_bytes(pickle.dumps(model, 5)), args.repeat),
        )
    )
    rows.append(
        ("save", "joblib.dump", median_time(lambda: joblib.dump(model, paths["joblib"]), args.repeat))
    )
    rows.append(
        (
            "save",
            "np.savez (arrays only)",
            median_time(lambda: paths["npz"].write_bytes(npz_bytes()), args.repeat),
        )
    )
    rows.append(
        ("load", "luce.load (verifies SHA-256)", median_time(lambda: luce.load(paths["luce"]), args.repeat))
    )
    rows.append(
        (
            "load",
            "pickle.load (executes code)",
            median_time(lambda: pickle.loads(paths["pkl"].read_bytes()), args.repeat),
        )
    )
    rows.append(
        (
            "load",
            "joblib.load (executes code)",
            median_time(lambda: joblib.load(paths["joblib"]), args.repeat),
        )
    )
    rows.append(
        ("load", "np.load (arrays only)", median_time(lambda: dict(np.load(paths["npz"])), args.repeat))
    )

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter=20 does not converge: the weights do not matter here
        pipe = make_table_pipeline()
    pipe_path, pipe_pkl = folder / "pipe.luce", folder / "pipe.pkl"
    rows.append(
        (
            "pipeline",
            "luce.save of a table Pipeline",
            median_time(lambda: luce.save(pipe, pipe_path), args.repeat),
        )
    )
    rows.append(
        ("pipeline", "luce.load of a table Pipeline", median_time(lambda: luce.load(pipe_path), args.repeat))
    )
    pipe_pkl.write_bytes(pickle.dumps(pipe, 5))
    rows.append(
        (
            "pipeline",
            "pickle.load of the same (executes code)",
            median_time(lambda: pickle.loads(pipe_pkl.read_bytes()), args.repeat),
        )
    )

    loaded = luce.load(paths["luce"])
    assert np.array_equal(loaded.coef_, model.coef_)
    onnx_path = luce.export_onnx(model, folder / "model.onnx")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    X = np.random.default_rng(1).standard_normal((args.rows, args.features))
    X32 = X.astype(np.float32)
    frame = __import__("pandas").DataFrame(X, columns=list(model.feature_names_in_))
    rows.append(
        (
            "predict_proba",
            "luce predict_proba (float64)",
            median_time(lambda: model.predict_proba(frame), args.repeat),
        )
    )
    rows.append(
        (
            "predict_proba",
            "onnxruntime (float32 graph)",
            median_time(lambda: session.run(["probabilities"], {"X": X32}), args.repeat),
        )
    )
    diff = np.abs(session.run(["probabilities"], {"X": X32})[0] - model.predict_proba(frame)).max()

    size = {k: p.stat().st_size / 2**20 for k, p in paths.items()}
    print(
        f"model: coef_ ({args.classes}, {args.features}) float64 = {model.coef_.nbytes / 2**20:.1f} MiB; "
        f"files: luce {size['luce']:.1f} MiB, pickle {size['pkl']:.1f}, joblib {size['joblib']:.1f}, "
        f"npz {size['npz']:.1f}"
    )
    print(f"np.copyto(coef_) = {base * 1e3:.2f} ms (the unit of the ratios); repeat={args.repeat}; noisy")
    print(f"{'task':<14} {'method':<38} {'median ms':>10} {'× copyto':>9}")
    for task, name, t in rows:
        print(f"{task:<14} {name:<38} {t * 1e3:>10.2f} {t / base:>9.1f}")
    print(f"predict rows: {args.rows}; max |onnx - luce| probability difference: {diff:.2e}")


if __name__ == "__main__":
    main()
