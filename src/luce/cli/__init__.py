"""The ``luce`` command line (Typer + Rich): ``luce --help``; documented in docs/cli.md.

One module per command group: ``_softmax`` (softmax), ``_plot`` (plot temperature / activations),
``_train`` (train), ``_predict`` (predict, evaluate), ``_export`` (export), ``_demo`` (demo); ``_data``
reads and encodes tables, ``_report`` prints metrics. Importing this package imports Typer and Rich
(never done by ``import luce``).
"""

from . import _calibrate, _demo, _export, _plot, _predict, _softmax, _train  # noqa: F401  (register the commands)
from ._app import app, main

__all__ = ["app", "main"]
