"""The public API: listed once, documented once, importable, and `import luce` stays light."""

import inspect
import re
import subprocess
import sys
from pathlib import Path

import luce

DOCS = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def documented_names():
    return set(re.findall(r"^- `luce\.([A-Za-z_][A-Za-z0-9_]*)`", DOCS.read_text(), flags=re.M))


def test_all_equals_documented_api():
    public = set(luce.__all__) - {"__version__"}
    assert public == documented_names()
    assert len(luce.__all__) == len(set(luce.__all__)), "a name is listed twice in __all__"


def test_every_public_name_resolves_and_has_a_full_docstring():
    for name in luce.__all__:
        obj = getattr(luce, name)
        if name == "__version__":
            continue
        doc = inspect.getdoc(obj) or ""
        assert doc, f"luce.{name} has no docstring"
        if inspect.isfunction(obj):
            assert "Examples" in doc, f"luce.{name} has no Examples section"


def test_unknown_attribute_is_an_attribute_error():
    try:
        luce.not_a_function
    except AttributeError as err:
        assert "not_a_function" in str(err)
    else:
        raise AssertionError("expected AttributeError")


def test_import_is_light():
    heavy = [
        "numba",
        "dask",
        "distributed",
        "onnx",
        "onnxruntime",
        "torch",
        "matplotlib",
        "sklearn",
        "pandas",
    ]
    code = (
        "import sys, time; t = time.perf_counter(); import luce; dt = time.perf_counter() - t; "
        f"print(dt); print([m for m in {heavy!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    seconds, loaded = out.splitlines()
    assert loaded == "[]", f"import luce loaded {loaded}"
    assert float(seconds) < 1.0
