"""Model files and export: ``save``/``load`` (safetensors + checksummed JSON, never pickle) and ONNX.

Importing this package loads only NumPy; safetensors and onnx are imported when a file is written
or read. The file layout is documented in docs/model-format.md.
"""

from ._atomic import atomic_write_bytes
from ._format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    ModelFormatError,
    load,
    read_metadata,
    register_estimator,
    save,
)
from ._onnx import export_onnx

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ModelFormatError",
    "atomic_write_bytes",
    "export_onnx",
    "load",
    "read_metadata",
    "register_estimator",
    "save",
]
