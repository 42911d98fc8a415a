"""A small reader for the IDX format of MNIST-style files (raw or gzip-compressed).

An IDX file starts with the magic number ``0x00 0x00 <dtype code> <ndim>``, then ``ndim``
big-endian uint32 dimension sizes, then the array in C order. Every check here raises a one-line
:class:`~omasgan.errors.DataError` naming the file.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError, DataMissingError

IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _describe(shape: tuple[int, ...]) -> str:
    """Words for an IDX shape: ``60000 images of 28x28``, ``60000 labels`` or ``shape (..)``."""
    if len(shape) == 3:
        return f"{shape[0]} images of {shape[1]}x{shape[2]}"
    if len(shape) == 1:
        return f"{shape[0]} labels"
    return f"shape {shape}"


def _open(path: Path):
    """Open ``path`` for binary reading, transparently decompressing a ``.gz`` file."""
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx_header(path: str | os.PathLike, ndim: int | None = None) -> tuple[np.dtype, tuple[int, ...], int]:
    """Read and check an IDX header; return ``(dtype, shape, header_bytes)``.

    Raises DataError when the magic number is not an IDX one, its dtype code is unknown, the
    dimension count differs from ``ndim`` (when given), or the header itself is cut short.
    """
    path = Path(path)
    try:
        with _open(path) as f:
            magic = f.read(4)
            if len(magic) < 4:
                raise DataError(f"{path} is truncated: it ends inside the 4-byte IDX magic number")
            zero, code, nd = struct.unpack(">HBB", magic)
            if zero != 0 or code not in IDX_DTYPES:
                raise DataError(
                    f"{path} is not an IDX file: magic number 0x{magic.hex()} "
                    f"(expected 0x0000 then a dtype code in {sorted(hex(c) for c in IDX_DTYPES)})"
                )
            if ndim is not None and nd != ndim:
                raise DataError(f"{path} holds a {nd}-d IDX array but a {ndim}-d one was expected "
                                f"(magic number 0x{magic.hex()})")
            dims = f.read(4 * nd)
            if len(dims) < 4 * nd:
                raise DataError(f"{path} is truncated: it ends inside the IDX header")
    except (OSError, EOFError, zlib.error) as exc:
        if isinstance(exc, FileNotFoundError):
            raise DataMissingError(f"{path} is missing") from exc
        raise DataError(f"{path} is truncated or not readable: {exc}") from exc
    shape = tuple(int(d) for d in struct.unpack(f">{nd}I", dims))
    return IDX_DTYPES[code], shape, 4 + 4 * nd


def _expected_bytes(dtype: np.dtype, shape: tuple[int, ...], header: int) -> int:
    """Total size in bytes that a complete IDX file with this header must have."""
    return header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize


def check_idx_file(path: str | os.PathLike, ndim: int | None = None) -> tuple[int, ...]:
    """Check an IDX file's header and that its size matches the header; return the shape.

    For a raw file the on-disk size must equal the header-implied size. For a ``.gz`` file the
    decompressed size recorded in the gzip trailer (ISIZE, modulo 2**32) must match it. Raises a
    DataError whose message says ``truncated`` when the file is short (or a gzip trailer disagrees).
    """
    path = Path(path)
    dtype, shape, header = read_idx_header(path, ndim)
    expected = _expected_bytes(dtype, shape, header)
    if path.suffix == ".gz":
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() < 18:
                raise DataError(f"{path} is truncated: too short to be a gzip file")
            f.seek(-4, os.SEEK_END)
            isize = struct.unpack("<I", f.read(4))[0]
        if isize != expected % 2**32:
            raise DataError(
                f"{path} is truncated or corrupt: header says {_describe(shape)} ({expected} bytes) "
                f"but the gzip trailer records {isize} decompressed bytes"
            )
        return shape
    actual = path.stat().st_size
    if actual < expected:
        raise DataError(f"{path} is truncated: header says {_describe(shape)} ({expected} bytes) "
                        f"but the file has {actual} bytes")
    if actual > expected:
        raise DataError(f"{path} does not match its header: header says {_describe(shape)} "
                        f"({expected} bytes) but the file has {actual} bytes")
    return shape


def read_idx(path: str | os.PathLike, ndim: int | None = None) -> np.ndarray:
    """Read a whole IDX file (raw or ``.gz``) into a native-endian numpy array of the header's shape.

    Raises DataError (message says ``truncated``) when the data is shorter than the header
    implies, and when there are bytes beyond it.
    """
    path = Path(path)
    dtype, shape, header = read_idx_header(path, ndim)
    expected = _expected_bytes(dtype, shape, header)
    try:
        with _open(path) as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path} is truncated or corrupt: {exc}") from exc
    if len(data) < expected:
        raise DataError(f"{path} is truncated: header says {_describe(shape)} ({expected} bytes) "
                        f"but the file has {len(data)} bytes")
    if len(data) > expected:
        raise DataError(f"{path} does not match its header: header says {_describe(shape)} "
                        f"({expected} bytes) but the file has {len(data)} bytes")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` (uint8, int8, int16, int32, float32 or float64) as an IDX file; a path
    ending in ``.gz`` is gzip-compressed. The inverse of :func:`read_idx`, used by tests and tools."""
    path = Path(path)
    array = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("=").str: k for k, v in IDX_DTYPES.items()}
    key = array.dtype.newbyteorder("=").str
    if key not in codes:
        raise DataError(f"cannot write dtype {array.dtype} as IDX; "
                        "allowed: uint8, int8, int16, int32, float32, float64")
    code = codes[key]
    payload = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
