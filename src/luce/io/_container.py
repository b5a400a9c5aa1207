"""The container of a model file: a safetensors file whose header's ``__metadata__`` holds the luce JSON
and its SHA-256. Reading checks everything before trusting anything, reads incrementally and never
more than the file's size (hostile files are the rule here, see docs/model-format.md).

Layout: an 8-byte little-endian header length, a JSON header, then the raw array bytes. The header's
``__metadata__`` (string -> string) holds ``format`` (``"luce-model"``), ``format_version``
(checked before anything else, so a file from a future luce is recognised as such), ``luce`` (the
JSON metadata) and ``luce_sha256``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import struct

import numpy as np

from ._atomic import atomic_write_bytes

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "ModelFormatError", "read_container", "write_container"]

FORMAT_NAME = "luce-model"
FORMAT_VERSION = 1
# safetensors itself refuses headers above 100 MB; a larger "length" means this is not safetensors.
_MAX_HEADER = 100_000_000
_SAFETENSORS_DTYPES = {
    "BOOL": "?", "U8": "u1", "I8": "i1", "U16": "<u2", "I16": "<i2", "F16": "<f2",
    "U32": "<u4", "I32": "<i4", "F32": "<f4", "U64": "<u8", "I64": "<i8", "F64": "<f8",
}  # fmt: skip


class ModelFormatError(ValueError):
    """A file that cannot be read as a luce model, with the reason.

    Attributes
    ----------
    path : str
        The file.
    reason : str
        One of ``"empty"``, ``"truncated"``, ``"corrupted"``, ``"foreign"``, ``"future-version"``,
        ``"unknown-estimator"``, ``"incompatible"``.
    """

    __module__ = "luce"  # shown as luce.ModelFormatError, where users import it from

    def __init__(self, path, reason: str, message: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path} {message}")


def _luce_version() -> str:
    from .. import __version__

    return __version__


def _sha256(a: np.ndarray) -> str:
    """SHA-256 of the array's C-ordered bytes, hashed in place (no copy for contiguous arrays)."""
    flat = np.ascontiguousarray(a).reshape(-1)
    return hashlib.sha256(flat.view(np.uint8)).hexdigest()


def write_container(path, text: str, tensors: dict):
    """Write the JSON metadata ``text`` and the arrays ``tensors`` to ``path`` atomically."""
    header = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "luce": text,
        "luce_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
    }
    from safetensors.numpy import save as _st_save  # lazily: keep `import luce` light

    return atomic_write_bytes(path, _st_save(tensors, metadata=header))


def _open_model_file(path):
    """An open binary file and its size; a folder, device, pipe or socket is refused before reading."""
    # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below); no effect on files.
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(f"{path} is a folder, not a luce model file")
        if not stat.S_ISREG(mode):
            raise ModelFormatError(
                path,
                "foreign",
                "is not a luce model file: it is not a regular file (a device, pipe or socket)",
            )
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    return f, os.fstat(f.fileno()).st_size


def _json_object(path, text: bytes | str, what: str) -> dict:
    try:
        value = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        reason = "it nests too deeply" if isinstance(e, RecursionError) else str(e)
        raise ModelFormatError(
            path, "corrupted", f"is corrupted: its {what} is not valid JSON ({reason})"
        ) from None
    if not isinstance(value, dict):
        raise ModelFormatError(path, "corrupted", f"is corrupted: its {what} is not a JSON object")
    return value


def _parse_header(path, f, size: int):
    """Read and check the safetensors framing and the luce header from ``f``, reading no more than the
    header's announced length, itself checked against the file's size first. Returns (meta, header)."""
    if size == 0:
        raise ModelFormatError(path, "empty", "is empty (0 bytes), not a luce model file")
    if size < 8:
        raise ModelFormatError(
            path, "truncated", f"is truncated: {size} bytes, too short for the 8-byte header length"
        )
    head = f.read(9)
    (n,) = struct.unpack("<Q", head[:8])
    if n > _MAX_HEADER or head[8:9] not in (b"{", b""):
        raise ModelFormatError(
            path,
            "foreign",
            "is not a luce model file: it is not in safetensors format (did you pass a data file or "
            "another library's file?)",
        )
    if 8 + n > size:
        raise ModelFormatError(
            path,
            "truncated",
            f"is truncated: its header announces {n} bytes but only {size - 8} follow the length field",
        )
    header = _json_object(path, head[8:] + f.read(n - 1) if n else b"", "header")
    info = header.get("__metadata__")
    if not isinstance(info, dict) or info.get("format") != FORMAT_NAME:
        found = info.get("format") if isinstance(info, dict) else None
        what = f"format {found!r}" if isinstance(found, str) else "no luce metadata"
        raise ModelFormatError(
            path,
            "foreign",
            f"is a safetensors file but not a luce model ({what}); it was not written by luce.save",
        )
    version = info.get("format_version")
    if not (isinstance(version, str) and version.isascii() and version.isdigit() and len(version) <= 6):
        raise ModelFormatError(path, "corrupted", f"is corrupted: bad format_version {version!r}")
    if int(version) > FORMAT_VERSION:
        raise ModelFormatError(
            path,
            "future-version",
            f"uses luce model format version {int(version)}, newer than this luce ({_luce_version()}) "
            f"reads (up to {FORMAT_VERSION}); upgrade luce to load it",
        )
    text = info.get("luce")
    digest = info.get("luce_sha256")
    if not isinstance(text, str) or hashlib.sha256(text.encode("utf-8")).hexdigest() != digest:
        raise ModelFormatError(path, "corrupted", "is corrupted: its metadata fails its SHA-256 checksum")
    meta = _json_object(path, text, "metadata")
    if type(meta.get("format_version")) is not int or meta["format_version"] != int(version):
        raise ModelFormatError(
            path, "corrupted", "is corrupted: metadata and header disagree on the format version"
        )
    return meta, header


def _array_table(path, header) -> tuple[dict, int]:
    """``{name: (dtype, shape, start, stop)}`` of the arrays and the data section's length; the arrays
    must tile the data section exactly (no gaps, no overlaps), as safetensors requires."""
    table = {}
    try:
        for key, entry in header.items():
            if key == "__metadata__":
                continue
            dtype = np.dtype(_SAFETENSORS_DTYPES[entry["dtype"]])
            shape = entry["shape"]
            lo, hi = entry["data_offsets"]
            if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
                raise ValueError(f"array {key!r} has a bad shape")
            if not (type(lo) is int and type(hi) is int and 0 <= lo <= hi):
                raise ValueError(f"array {key!r} has bad offsets")
            if hi - lo != dtype.itemsize * math.prod(shape):
                raise ValueError(f"array {key!r} has inconsistent offsets")
            table[key] = (dtype, tuple(shape), lo, hi)
        end = 0
        for _, _, lo, hi in sorted(table.values(), key=lambda e: (e[2], e[3])):
            if lo != end:
                raise ValueError("arrays overlap or leave gaps")
            end = hi
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFormatError(path, "corrupted", f"is corrupted: bad array table ({e})") from None
    return table, end


def read_container(path):
    """``(meta, arrays, file size)`` of a model file, every check done; reads each byte once and never
    more than the file's size."""
    path_str = os.fspath(path)
    f, size = _open_model_file(path_str)
    with f:
        meta, header = _parse_header(path_str, f, size)
        table, end = _array_table(path_str, header)
        available = size - f.tell()
        if available < end:
            raise ModelFormatError(
                path_str,
                "truncated",
                f"is truncated: its arrays need {end} bytes but only {available} remain "
                "(the file was cut short)",
            )
        if available > end:
            raise ModelFormatError(
                path_str, "corrupted", f"is corrupted: {available - end} unexpected bytes after its arrays"
            )
        data = bytearray(end)
        if f.readinto(data) != end:
            raise ModelFormatError(path_str, "truncated", "is truncated: it shrank while being read")
    # Views into one buffer: the arrays tile it without overlap, so no array aliases another.
    tensors = {key: _view(data, *entry) for key, entry in table.items()}
    _verify_tensors(path_str, meta, tensors)
    return meta, tensors, size


def _view(data: bytearray, dtype, shape, lo, hi) -> np.ndarray:
    if lo == hi:
        return np.zeros(shape, dtype=dtype)
    a = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=lo).reshape(shape)
    return a if a.flags.aligned else a.copy()


def _tensor_nodes(node):
    """Every {"type": "tensor"} node below ``node`` (iteratively: a hostile file may nest deeply)."""
    stack = [node]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") == "tensor":
                yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _verify_tensors(path, meta, tensors):
    verified = {}  # key -> (dtype, shape, sha256): each array is hashed once however often it is named
    for node in _tensor_nodes(meta.get("model")):
        key = node.get("key")
        a = tensors.get(key) if isinstance(key, str) else None
        if a is None:
            raise ModelFormatError(path, "corrupted", f"is corrupted: array {key!r} is missing")
        if key not in verified:
            verified[key] = (a.dtype.str, list(a.shape), _sha256(a))
        dtype, shape, digest = verified[key]
        if dtype != node.get("dtype") or shape != node.get("shape"):
            raise ModelFormatError(
                path,
                "corrupted",
                f"is corrupted: array {key!r} has dtype/shape {a.dtype}{a.shape}, expected "
                f"{node.get('dtype')}{tuple(node.get('shape') or ())}",
            )
        if digest != node.get("sha256"):
            raise ModelFormatError(
                path, "corrupted", f"is corrupted: array {key!r} fails its SHA-256 checksum"
            )
    extra = sorted(set(tensors) - set(verified))
    if extra:
        raise ModelFormatError(path, "corrupted", f"is corrupted: unexpected arrays {extra}")
