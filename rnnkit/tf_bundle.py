"""Read TensorFlow checkpoints without TensorFlow.

A TF checkpoint (``tf.compat.v1.train.Saver`` or ``tf.train.Checkpoint``) is a *tensor
bundle*: ``PREFIX.index``, a LevelDB-format sorted table mapping each variable name to a
``BundleEntryProto`` (dtype, shape, shard, offset, size, CRC32C), and the data shards
``PREFIX.data-NNNNN-of-NNNNN`` holding the raw little-endian tensor bytes.  This module
parses both (table blocks, varints, the protobuf wire format), verifies every block's and
every tensor's CRC32C, and refuses damaged, truncated or unsupported files with an error
naming the file.  ``PREFIX`` may also be a directory holding TF's ``checkpoint`` state file,
whose newest checkpoint is used (as ``tf.train.latest_checkpoint``).
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path

import numpy as np

__all__ = ["TFCheckpointError", "list_variables", "read_variables", "resolve_prefix"]

_MAGIC = 0xDB4775248B80FB57
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8,
           9: np.int64, 10: np.bool_, 17: np.uint16, 19: np.float16, 22: np.uint32,
           23: np.uint64}
_DTYPE_NAMES = {7: "string", 8: "complex64", 14: "bfloat16", 18: "complex128"}


class TFCheckpointError(ValueError):
    """A TF checkpoint is missing, damaged, truncated or uses a feature not supported."""


# -- CRC32C (Castagnoli), as LevelDB and the tensor bundle use it ------------------------
def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    try:  # a compiled implementation when one is installed
        import google_crc32c

        return google_crc32c.value(data)
    except ImportError:
        pass
    crc = 0xFFFFFFFF
    table = _TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _unmask(masked: int) -> int:
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# -- protobuf wire format -----------------------------------------------------------------
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise IndexError("varint runs past the end")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int, object]]:
    """``(field number, wire type, value)`` of a serialised message."""
    out, pos = [], 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.append((num, wire, value))
    return out


class _Entry:
    """A decoded ``BundleEntryProto``."""

    def __init__(self, raw: bytes):
        self.dtype, self.shard, self.offset, self.size, self.crc = 1, 0, 0, 0, None
        self.shape: list[int] = []
        self.sliced = False
        for num, _, value in _fields(raw):
            if num == 1:
                self.dtype = value
            elif num == 2:
                self.shape = [_dim(d) for n, _, d in _fields(value) if n == 2]
            elif num == 3:
                self.shard = value
            elif num == 4:
                self.offset = value
            elif num == 5:
                self.size = value
            elif num == 6:
                self.crc = value
            elif num == 7:
                self.sliced = True


def _dim(raw: bytes) -> int:
    for num, _, value in _fields(raw):
        if num == 1:
            return value - (1 << 64) if value >= 1 << 63 else value
    return 0


# -- the sorted table (LevelDB format) ----------------------------------------------------
def _block(data: bytes, offset: int, size: int, where: str) -> bytes:
    end = offset + size
    if end + 5 > len(data):
        raise TFCheckpointError(f"{where} is truncated (a block runs past its end)")
    contents, kind = data[offset:end], data[end]
    stored = struct.unpack_from("<I", data, end + 1)[0]
    if crc32c(contents + bytes([kind])) != _unmask(stored):
        raise TFCheckpointError(f"{where} is damaged (a block fails its CRC32C check)")
    if kind != 0:
        raise TFCheckpointError(f"{where} uses block compression {kind}, which is not "
                                "supported (TF writes bundles uncompressed)")
    return contents


def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    (restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    limit = len(block) - 4 - 4 * restarts
    out, pos, key = [], 0, b""
    while pos < limit:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        length, pos = _varint(block, pos)
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        out.append((key, block[pos:pos + length]))
        pos += length
    return out


def _table(path: Path) -> dict[str, bytes]:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise TFCheckpointError(f"{path} cannot be read: {e.strerror}") from None
    where = str(path)
    if len(data) < 48 or struct.unpack_from("<Q", data, len(data) - 8)[0] != _MAGIC:
        raise TFCheckpointError(f"{where} is not a TF checkpoint index (bad magic number; "
                                "truncated or another file)")
    try:
        footer = data[-48:]
        _, pos = _varint(footer, 0)
        _, pos = _varint(footer, pos)
        index_offset, pos = _varint(footer, pos)
        index_size, _ = _varint(footer, pos)
        entries: dict[str, bytes] = {}
        for _, handle in _block_entries(_block(data, index_offset, index_size, where)):
            offset, p = _varint(handle, 0)
            size, _ = _varint(handle, p)
            for key, value in _block_entries(_block(data, offset, size, where)):
                entries[key.decode("utf-8")] = value
    except (IndexError, struct.error, UnicodeDecodeError, ValueError) as e:
        if isinstance(e, TFCheckpointError):
            raise
        raise TFCheckpointError(f"{where} is damaged ({e})") from None
    return entries


# -- checkpoints ---------------------------------------------------------------------------
def resolve_prefix(ckpt: str | os.PathLike) -> Path:
    """The checkpoint prefix: ``ckpt`` itself, or the newest checkpoint named in the
    ``checkpoint`` state file of directory ``ckpt``."""
    path = Path(ckpt)
    if path.is_dir():
        state = path / "checkpoint"
        if not state.is_file():
            raise TFCheckpointError(f"{path} is a directory without TF's 'checkpoint' file; "
                                    "pass the checkpoint prefix (.../model-1000)")
        match = re.search(r'^model_checkpoint_path:\s*"([^"]*)"', state.read_text(), re.M)
        if match is None:
            raise TFCheckpointError(f"{state} names no model_checkpoint_path")
        name = Path(match.group(1))
        path = name if name.is_absolute() else path / name
    if path.suffix == ".index":
        path = path.with_suffix("")
    if not Path(f"{path}.index").is_file():
        raise TFCheckpointError(f"no TF checkpoint at {path} ({path}.index is missing)")
    return path


def _entries(prefix: Path) -> tuple[dict[str, _Entry], int]:
    table = _table(Path(f"{prefix}.index"))
    shards = 1
    for num, _, value in _fields(table.pop("", b"")):  # BundleHeaderProto
        if num == 1:
            shards = value
        elif num == 2 and value != 0:
            raise TFCheckpointError(f"{prefix}.index: big-endian bundles are not supported")
    return {k: _Entry(v) for k, v in table.items()}, shards


def _dtype_name(code: int) -> str:
    if code in _DTYPES:
        return np.dtype(_DTYPES[code]).name
    return _DTYPE_NAMES.get(code, f"dtype {code}")


def list_variables(ckpt: str | os.PathLike) -> list[tuple[str, list[int]]]:
    """``[(name, shape), ...]`` sorted by name, as ``tf.train.list_variables`` prints them."""
    entries, _ = _entries(resolve_prefix(ckpt))
    return [(name, list(e.shape)) for name, e in sorted(entries.items())]


def read_variables(ckpt: str | os.PathLike, names: list[str] | None = None
                   ) -> dict[str, np.ndarray]:
    """``{name: array}`` of the numeric variables (all, or ``names``), CRC32C-verified.

    String tensors (TF 2's ``_CHECKPOINTABLE_OBJECT_GRAPH``) are skipped unless named, then
    refused; sliced (partitioned) variables are refused with their name.
    """
    prefix = resolve_prefix(ckpt)
    entries, shards = _entries(prefix)
    wanted = sorted(entries) if names is None else list(names)
    out: dict[str, np.ndarray] = {}
    cache: dict[int, bytes] = {}
    for name in wanted:
        if name not in entries:
            raise TFCheckpointError(f"{prefix}: no variable {name!r}")
        e = entries[name]
        if e.sliced:
            raise TFCheckpointError(f"{prefix}: {name} is a sliced (partitioned) variable, "
                                    "which is not supported; save it unpartitioned")
        if e.dtype not in _DTYPES:
            if names is None:
                continue
            raise TFCheckpointError(f"{prefix}: {name} has {_dtype_name(e.dtype)} values, "
                                    "which are not supported")
        if e.shard not in cache:
            shard = Path(f"{prefix}.data-{e.shard:05d}-of-{shards:05d}")
            try:
                cache[e.shard] = shard.read_bytes()
            except OSError as err:
                raise TFCheckpointError(f"{shard} cannot be read: {err.strerror}") from None
        data = cache[e.shard]
        shard_name = f"{prefix}.data-{e.shard:05d}-of-{shards:05d}"
        raw = data[e.offset:e.offset + e.size]
        if len(raw) != e.size:
            raise TFCheckpointError(f"{shard_name} is truncated ({name} runs past its end)")
        if e.crc is not None and crc32c(raw) != _unmask(e.crc):
            raise TFCheckpointError(f"{shard_name} is damaged: {name} fails its CRC32C check")
        dtype = np.dtype(_DTYPES[e.dtype]).newbyteorder("<")
        count = int(np.prod(e.shape)) if e.shape else 1
        if count * dtype.itemsize != e.size:
            raise TFCheckpointError(f"{prefix}.index: {name} has {e.size} bytes for shape "
                                    f"{e.shape} of {dtype.name}")
        out[name] = np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="))\
            .reshape(e.shape)
    return out
