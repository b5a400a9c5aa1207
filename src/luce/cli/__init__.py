"""The ``luce`` command line (Typer + Rich): ``luce --help``; documented in docs/cli.md.

One module per command group: ``_softmax`` (softmax), ``_plot`` (plot temperature / activations),
``_train`` (train), ``_predict`` (predict, evaluate), ``_calibrate``, ``_export``, ``_info``, ``_demo``;
``_data`` reads and writes tables safely, ``_model`` loads a model file, ``_report`` prints metrics.
The table preprocessing itself is public: :mod:`luce.tables`.

Importing this package imports nothing heavy: :func:`main` first checks that the ``cli`` extra is
installed (one line naming it if not), and ``luce.cli.app`` builds the Typer application on first use.
"""

import importlib.util
import sys

__all__ = ["app", "main"]

# What the commands import: the cli extra, which includes the io extra (pyproject.toml).
REQUIRED = (
    "typer", "rich", "pandas", "pyarrow", "matplotlib", "safetensors", "onnx", "onnxruntime", "skl2onnx",
)  # fmt: skip
INSTALL_HINT = "pip install 'luce[cli]'"


def missing_modules() -> list[str]:
    """The modules of the ``cli`` extra that cannot be imported here."""
    return [name for name in REQUIRED if importlib.util.find_spec(name) is None]


def _load_app():
    from . import _calibrate, _demo, _export, _info, _plot, _predict, _softmax, _train  # noqa: F401
    from ._app import app

    return app


def main() -> None:
    """Entry point of the ``luce`` command (declared in pyproject.toml)."""
    missing = missing_modules()
    if missing:
        sys.stderr.write(
            f"luce: error: the luce command needs the 'cli' extra ({', '.join(missing)} missing): "
            f"{INSTALL_HINT}\n"
        )
        sys.exit(1)
    _load_app()()


def __getattr__(name):
    if name == "app":
        return _load_app()
    raise AttributeError(f"module 'luce.cli' has no attribute {name!r}")
