"""Read TensorFlow checkpoints without TensorFlow.

A TF checkpoint (``tf.compat.v1.train.Saver`` or ``tf.train.Checkpoint``) is a *tensor
bundle*: ``PREFIX.index``, a LevelDB-format sorted table mapping each variable name to a
``BundleEntryProto`` (dtype, shape, shard, offset, size, CRC32C), and the data shards
``PREFIX.data-NNNNN-of-NNNNN`` holding the raw little-endian tensor bytes.  This module
parses both (table blocks, varints, the protobuf wire format) and verifies every block's and
every tensor's CRC32C.  ``PREFIX`` may also be a directory holding TF's ``checkpoint`` state
file, whose newest checkpoint is used (as ``tf.train.latest_checkpoint``).

Damaged, truncated, crafted or unsupported files are refused with a
:class:`TFCheckpointError` naming the file and what is wrong.  Only regular files are opened
(a FIFO would block, a device never end); every size a file declares (block handles, entry
offsets and sizes, shape times dtype size) is checked against the file's actual size before
anything is read, and only the bytes of the tensors asked for are read.

Partitioned (sliced) variables, which TF 1.x creates for ``LSTMCell(num_unit_shards=...)`` or
``get_variable(partitioner=...)``, are one entry for the full variable (its dtype, full shape
and ``TensorSliceProto`` slice specs) and one entry per slice, keyed by TF's
``EncodeTensorNameSlice`` (an ``OrderedCode`` of the name and the slice's extents).  As in TF,
:func:`list_variables` lists the full variable with its full shape and leaves the slice
entries out, and :func:`read_variables` reassembles the full array from its slices, each
CRC32C-checked; a slice that is missing, overlaps another, lies outside the variable, or
whose entry disagrees with its spec is refused naming the variable and the slice.

Values: numeric dtypes as their numpy dtype (native byte order); ``bfloat16`` as float32,
exactly (a bfloat16 is the top 16 bits of a float32); ``complex64``/``complex128`` as numpy
complex.  String tensors (every TF 2 checkpoint holds one, ``_CHECKPOINTABLE_OBJECT_GRAPH``)
are left out of :func:`read_variables` unless named, then refused; every other dtype
(resource, variant, quantized, float8, int4, codes TF does not define) is refused with the
variable's name, named or not.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np

try:  # a compiled CRC32C when one is installed
    from google_crc32c import value as _fast_crc32c
except ImportError:
    _fast_crc32c = None

__all__ = ["TFCheckpointError", "list_variables", "read_variables", "resolve_prefix"]

_MAGIC = struct.pack("<Q", 0xDB4775248B80FB57)  # a table footer's last 8 bytes
_FOOTER = 48  # two block handles padded to 40 bytes, then the magic number
_STRING, _BFLOAT16, _BOOL = 7, 14, 10
_NUMERIC = {1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 5: "<i2", 6: "i1", 8: "<c8", 9: "<i8",
            10: "u1", 14: "<u2", 17: "<u2", 18: "<c16", 19: "<f2", 22: "<u4", 23: "<u8"}
_OTHER = {0: "invalid", 7: "string", 11: "qint8", 12: "quint8", 13: "qint32", 15: "qint16",
          16: "quint16", 20: "resource", 21: "variant", 24: "float8_e5m2",
          25: "float8_e4m3fn", 26: "int4", 27: "uint4"}
_MAX_STATE_FILE = 1 << 20  # TF's 'checkpoint' state file is a few lines of text


class TFCheckpointError(ValueError):
    """A TF checkpoint is missing, damaged, truncated or uses a feature not supported."""


class _Malformed(Exception):
    """Raised inside the parser; reported as a TFCheckpointError naming the file."""


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
    """The CRC32C of ``data``."""
    if _fast_crc32c is not None:
        return _fast_crc32c(data)
    crc = 0xFFFFFFFF
    table = _TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _unmask(masked: int) -> int:
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# -- protobuf wire format -----------------------------------------------------------------
def _varint(buf: bytes, pos: int, end: int | None = None) -> tuple[int, int]:
    """The unsigned varint at ``buf[pos:end]`` and the position after it."""
    end = len(buf) if end is None else end
    result = shift = 0
    while True:
        if pos >= end:
            raise _Malformed("a varint runs past its end")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            if result >> 64:
                raise _Malformed("a varint is longer than 64 bits")
            return result, pos
        shift += 7
        if shift >= 70:
            raise _Malformed("a varint is longer than 64 bits")


def _signed(value: int) -> int:
    """A varint as the int64/int32/enum it encodes."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _fields(buf: bytes, wires: dict[int, int]) -> list[tuple[int, int | bytes]]:
    """``(field number, value)`` of a serialised message; ``wires`` gives the wire type of
    each field the caller reads (others are skipped, as protobuf does)."""
    out, pos = [], 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire in (1, 5):
            n = 8 if wire == 1 else 4
            if pos + n > len(buf):
                raise _Malformed("a fixed-size field runs past its end")
            value, pos = int.from_bytes(buf[pos:pos + n], "little"), pos + n
        elif wire == 2:
            n, pos = _varint(buf, pos)
            if pos + n > len(buf):
                raise _Malformed("a length-delimited field runs past its end")
            value, pos = buf[pos:pos + n], pos + n
        else:
            raise _Malformed(f"protobuf wire type {wire} is not supported")
        if num in wires:
            if wire != wires[num]:
                raise _Malformed(f"field {num} has wire type {wire}, not {wires[num]}")
            out.append((num, value))
    return out


#: One dimension of a slice, ``(start, length)``; length ``-1`` is the whole dimension
#: (TF's ``kFullExtent``, a ``TensorSliceProto.Extent`` without a length).
Extent = tuple[int, int]


class _Entry:
    """A decoded ``BundleEntryProto``, its fields checked (defaults as proto3's).  ``slices``:
    the extents of each slice of a sliced (partitioned) variable's full entry."""

    def __init__(self, raw: bytes, shards: int):
        self.dtype, self.shard, self.offset, self.size, self.crc = 0, 0, 0, 0, 0
        self.shape: list[int] = []
        self.slices: list[list[Extent]] = []
        for num, value in _fields(raw, {1: 0, 2: 2, 3: 0, 4: 0, 5: 0, 6: 5, 7: 2}):
            if num == 1:
                self.dtype = _signed(value)
            elif num == 2:
                self.shape = _shape(value)
            elif num == 3:
                self.shard = _signed(value)
            elif num == 4:
                self.offset = _signed(value)
            elif num == 5:
                self.size = _signed(value)
            elif num == 6:
                self.crc = value
            else:
                self.slices.append(_slice(value))
        if self.offset < 0 or self.size < 0:
            raise _Malformed(f"a negative offset or size ({self.offset}, {self.size})")
        if not 0 <= self.shard < shards:
            raise _Malformed(f"shard {self.shard} of a bundle of {shards}")
        self.count = 1
        for d in self.shape:  # stops at once: a crafted shape could hold many huge dims
            self.count *= d
            if self.count >= 1 << 63:
                raise _Malformed(f"the element count of its shape overflows int64 "
                                 f"(rank {len(self.shape)})")


def _slice(raw: bytes) -> list[Extent]:
    """The extents of a ``TensorSliceProto`` (``repeated Extent extent = 1``, each ``int64
    start = 1``, ``oneof has_length { int64 length = 2 }``)."""
    extents = []
    for _, extent in _fields(raw, {1: 2}):
        start, length = 0, -1
        for num, value in _fields(extent, {1: 0, 2: 0}):
            if num == 1:
                start = _signed(value)
            else:
                length = _signed(value)
                if length < 0:
                    raise _Malformed(f"a slice extent of negative length {length}")
        if start < 0:
            raise _Malformed(f"a slice extent of negative start {start}")
        extents.append((start, length))
    return extents


def _spec(extents: list[Extent]) -> str:
    """A slice as TF writes its spec (``SaveSliceInfo.spec``): ``start,length`` per
    dimension, ``-`` for a whole one, joined by ``:``."""
    return ":".join("-" if n == -1 else f"{s},{n}" for s, n in extents)


# -- OrderedCode, as TF's EncodeTensorNameSlice keys a slice's entry ------------------------
_SIGNED_HEADER = {1: (0x80, 0), 2: (0xC0, 0), 3: (0xE0, 0), 4: (0xF0, 0), 5: (0xF8, 0),
                  6: (0xFC, 0), 7: (0xFE, 0), 8: (0xFF, 0), 9: (0xFF, 0x80),
                  10: (0xFF, 0xC0)}


def _num_increasing(value: int) -> bytes:
    """``OrderedCode::WriteNumIncreasing``: a length byte, then big-endian bytes."""
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return bytes([len(raw)]) + raw


def _signed_num_increasing(value: int) -> bytes:
    """``OrderedCode::WriteSignedNumIncreasing``: the sign-extended big-endian value, its
    first bits replaced by a unary length header."""
    n = (~value if value < 0 else value).bit_length() // 7 + 1
    raw = bytearray((value & ((1 << 80) - 1)).to_bytes(10, "big")[-n:])
    raw[0] ^= _SIGNED_HEADER[n][0]
    if n > 1:
        raw[1] ^= _SIGNED_HEADER[n][1]
    return bytes(raw)


def _slice_key(name: str, extents: list[Extent]) -> bytes:
    """TF's ``EncodeTensorNameSlice``: the table key of one slice's entry (its name escaped
    as ``OrderedCode::WriteString`` does: ``\\x00`` as ``\\x00\\xff``, ``\\xff`` as
    ``\\xff\\x00``, then ``\\x00\\x01``)."""
    escaped = bytearray()
    for b in name.encode("utf-8"):
        escaped += {0: b"\x00\xff", 0xFF: b"\xff\x00"}.get(b, bytes([b]))
    out = [_num_increasing(0), bytes(escaped), b"\x00\x01", _num_increasing(len(extents))]
    for start, length in extents:
        out += [_signed_num_increasing(start), _signed_num_increasing(length)]
    return b"".join(out)


def _slice_owner(key: bytes) -> str:
    """The variable name in a slice entry's key (for messages)."""
    name, pos = bytearray(), 1
    while pos < len(key) and key[pos:pos + 2] != b"\x00\x01":
        name.append(key[pos])
        pos += 2 if key[pos:pos + 2] in (b"\x00\xff", b"\xff\x00") else 1
    return name.decode("utf-8", "replace")


def _shape(raw: bytes) -> list[int]:
    """The dimensions of a ``TensorShapeProto``: known and non-negative."""
    dims = []
    for num, value in _fields(raw, {2: 2, 3: 0}):
        if num == 3:
            if value:
                raise _Malformed("its shape has unknown rank")
            continue
        size = 0
        for _, d in _fields(value, {1: 0}):
            size = _signed(d)
        if size < 0:
            raise _Malformed(f"a negative dimension {size}")
        dims.append(size)
    return dims


# -- files: regular ones only, read where a checked size says ------------------------------
def _open(path: Path) -> BinaryIO:
    """``path`` opened for reading, if it is a regular file."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # before open: a FIFO would block there
            raise TFCheckpointError(f"{path} is not a regular file")
        fd = os.open(path, flags)
    except OSError as e:
        raise TFCheckpointError(f"{path} cannot be read: {e.strerror}") from None
    f = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced since os.stat
        f.close()
        raise TFCheckpointError(f"{path} is not a regular file")
    return f


def _size(f: BinaryIO) -> int:
    return os.fstat(f.fileno()).st_size


def _read(f: BinaryIO, path: Path, offset: int, size: int, what: str) -> bytes:
    """``size`` bytes at ``offset``, which the caller has checked against the file size."""
    try:
        f.seek(offset)
        data = f.read(size)
    except OSError as e:
        raise TFCheckpointError(f"{path} cannot be read: {e.strerror}") from None
    if len(data) != size:
        raise TFCheckpointError(f"{path} is truncated ({what} runs past its end)")
    return data


# -- the sorted table (LevelDB format) ----------------------------------------------------
def _block(f: BinaryIO, path: Path, handle: tuple[int, int], limit: int) -> bytes:
    """The contents of the block at ``handle`` (offset, size), CRC32C-verified; the block
    and its 5-byte trailer must end by ``limit``."""
    offset, size = handle
    if offset + size + 5 > limit:
        raise _Malformed(f"a block handle ({offset}, {size}) points past the file's end")
    raw = _read(f, path, offset, size + 5, "a block")
    contents, kind = raw[:size], raw[size]
    if crc32c(raw[:size + 1]) != _unmask(struct.unpack_from("<I", raw, size + 1)[0]):
        raise TFCheckpointError(f"{path} is damaged (a block fails its CRC32C check)")
    if kind != 0:
        raise TFCheckpointError(f"{path} uses block compression {kind}, which is not "
                                "supported (TF writes bundles uncompressed)")
    return contents


def _handle(raw: bytes) -> tuple[int, int]:
    offset, pos = _varint(raw, 0)
    size, pos = _varint(raw, pos)
    if pos != len(raw):
        raise _Malformed("a block handle has trailing bytes")
    return offset, size


def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    """The ``(key, value)`` entries of a block, its restart array checked."""
    if len(block) < 4:
        raise _Malformed("a block is shorter than its restart count")
    (restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    if not 1 <= restarts <= (len(block) - 4) // 4:
        raise _Malformed(f"a block's restart count {restarts} is out of range")
    limit = len(block) - 4 - 4 * restarts
    points = set(struct.unpack_from(f"<{restarts}I", block, limit))
    out, pos, key, fresh = [], 0, b"", set()
    while pos < limit:
        start = pos
        shared, pos = _varint(block, pos, limit)
        unshared, pos = _varint(block, pos, limit)
        length, pos = _varint(block, pos, limit)
        if shared > len(key) or pos + unshared + length > limit:
            raise _Malformed("a block entry runs past its end or its key's prefix")
        if shared == 0:
            fresh.add(start)
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        out.append((key, block[pos:pos + length]))
        pos += length
    if not points <= (fresh or {0}):
        raise _Malformed("a block's restart points are not where its keys restart")
    return out


def _table(path: Path) -> list[tuple[bytes, bytes]]:
    """The ``(key, value)`` entries of the table at ``path``, keys strictly increasing."""
    with _open(path) as f:
        size = _size(f)
        footer = _read(f, path, size - _FOOTER, _FOOTER, "the footer") if size >= _FOOTER \
            else b""
        if footer[40:] != _MAGIC:
            raise TFCheckpointError(f"{path} is not a TF checkpoint index (bad magic number; "
                                    "truncated or another file)")
        try:
            _, pos = _varint(footer, 0, 40)  # the metaindex block's handle, not used
            _, pos = _varint(footer, pos, 40)
            index_offset, pos = _varint(footer, pos, 40)
            index_size, _ = _varint(footer, pos, 40)
            limit, items, end = size - _FOOTER, [], 0
            index = _block(f, path, (index_offset, index_size), limit)
            for _, raw in _block_entries(index):
                handle = _handle(raw)
                if handle[0] < end:
                    raise _Malformed("its data blocks overlap or are out of order")
                end = sum(handle) + 5
                for key, value in _block_entries(_block(f, path, handle, limit)):
                    if items and key <= items[-1][0]:
                        raise _Malformed(f"its keys are not sorted ({key[:80]!r} after "
                                         f"{items[-1][0][:80]!r})")
                    items.append((key, value))
        except _Malformed as e:
            raise TFCheckpointError(f"{path} is damaged ({e})") from None
    return items


# -- checkpoints ---------------------------------------------------------------------------
def _path(ckpt: str | os.PathLike) -> Path:
    path = os.fspath(ckpt) if isinstance(ckpt, os.PathLike) else ckpt
    if isinstance(path, str):
        return Path(path)
    raise TypeError("ckpt must be a checkpoint path (str or os.PathLike: a prefix or a "
                    f"directory), not {type(path).__name__}")


_ESCAPE = re.compile(rb"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))", re.S)
_SIMPLE = dict(zip(b"nrtabfv\"'\\?", b"\n\r\t\a\b\f\v\"'\\?", strict=True))


def _unescape(text: str, state: Path) -> str:
    """A text-format string's contents (C escapes, as TF writes them) as a file name."""
    def one(m: re.Match) -> bytes:
        if m[1] or m[2]:
            code = int(m[1], 8) if m[1] else int(m[2], 16)
            if code > 0xFF:
                raise TFCheckpointError(f"{state}: a bad escape \\{m[1].decode()}")
            return bytes([code])
        if m[3][0] not in _SIMPLE:
            raise TFCheckpointError(f"{state}: a bad escape \\{m[3].decode(errors='replace')}")
        return bytes([_SIMPLE[m[3][0]]])

    return os.fsdecode(_ESCAPE.sub(one, text.encode("utf-8")))


def _latest(folder: Path) -> Path:
    """The ``model_checkpoint_path`` of ``folder``'s ``checkpoint`` state file."""
    state = folder / "checkpoint"
    if not state.exists():
        raise TFCheckpointError(f"{folder} is a directory without TF's 'checkpoint' file; "
                                "pass the checkpoint prefix (.../model-1000)")
    with _open(state) as f:
        if _size(f) > _MAX_STATE_FILE:
            raise TFCheckpointError(f"{state} is not a TF 'checkpoint' state file (over "
                                    f"{_MAX_STATE_FILE} bytes)")
        raw = _read(f, state, 0, _size(f), "the state")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TFCheckpointError(f"{state} is not a TF 'checkpoint' state file (not UTF-8 "
                                "text)") from None
    match = re.search(r'^\s*model_checkpoint_path:\s*"((?:[^"\\\n]|\\.)*)"', text, re.M)
    if match is None or not match[1]:
        raise TFCheckpointError(f"{state} names no model_checkpoint_path")
    name = Path(_unescape(match[1], state))
    return name if name.is_absolute() else folder / name


def resolve_prefix(ckpt: str | os.PathLike) -> Path:
    """The checkpoint prefix: ``ckpt`` itself (``.index`` dropped), or the newest checkpoint
    named in the ``checkpoint`` state file of directory ``ckpt``."""
    path = _path(ckpt)
    if path.is_dir():
        path = _latest(path)
    if path.suffix == ".index":
        path = path.with_suffix("")
    if not Path(f"{path}.index").exists():
        raise TFCheckpointError(f"no TF checkpoint at {path} ({path}.index is missing)")
    return path


class _Bundle:
    """A checkpoint's index: ``entries`` by variable name, ``slices`` (the entries of sliced
    variables' slices) by their table key, and the number of data ``shards``."""

    def __init__(self, entries: dict[str, _Entry], slices: dict[bytes, _Entry], shards: int):
        self.entries, self.slices, self.shards = entries, slices, shards


def _entries(prefix: Path) -> _Bundle:
    """The entries of ``prefix``'s index."""
    index = Path(f"{prefix}.index")
    items = _table(index)
    if not items or items[0][0] != b"":
        raise TFCheckpointError(f"{index} is damaged (it has no bundle header)")
    shards, what = 1, "its header"
    try:
        for num, value in _fields(items[0][1], {1: 0, 2: 0}):  # BundleHeaderProto
            if num == 1:
                shards = _signed(value)
            elif value != 0:
                raise TFCheckpointError(f"{index}: big-endian bundles are not supported")
        if shards < 1:
            raise _Malformed(f"{shards} shards")
        entries, slices = {}, {}
        for key, value in items[1:]:
            if key[:1] == b"\x00":  # EncodeTensorNameSlice: no variable name starts so
                what = f"a slice entry of {_slice_owner(key)!r}"
                slices[key] = _Entry(value, shards)
                continue
            what = f"a key {key[:80]!r}"
            name = key.decode("utf-8")
            what = f"entry {name!r}"
            entries[name] = _Entry(value, shards)
    except UnicodeDecodeError:
        raise TFCheckpointError(f"{index} is damaged ({what} is not UTF-8)") from None
    except _Malformed as e:
        raise TFCheckpointError(f"{index} is damaged ({what}: {e})") from None
    return _Bundle(entries, slices, shards)


def _dtype_name(code: int) -> str:
    if code in _OTHER:
        return _OTHER[code]
    if code == _BFLOAT16:
        return "bfloat16"
    if code == _BOOL:
        return "bool"
    return np.dtype(_NUMERIC[code]).name if code in _NUMERIC else f"dtype {code}"


def _array(raw: bytes, dtype: int) -> np.ndarray:
    """The tensor bytes ``raw`` as a flat native-order array."""
    if dtype == _BFLOAT16:  # the top 16 bits of a float32
        return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
    if dtype == _BOOL:
        return np.frombuffer(raw, np.uint8) != 0
    little = np.dtype(_NUMERIC[dtype])
    return np.frombuffer(raw, little).astype(little.newbyteorder("="))


def list_variables(ckpt: str | os.PathLike) -> list[tuple[str, list[int]]]:
    """``[(name, shape), ...]`` sorted by name, as ``tf.train.list_variables`` prints them:
    a sliced (partitioned) variable once, with its full shape, its slices left out."""
    bundle = _entries(resolve_prefix(ckpt))
    return [(name, list(e.shape)) for name, e in sorted(bundle.entries.items())]


def _names(names: Iterable[str] | None) -> list[str] | None:
    if names is None:
        return None
    if not isinstance(names, (str, bytes)) and isinstance(names, Iterable):
        names = list(names)
        if all(isinstance(n, str) for n in names):
            return names
    raise TypeError(f"names must be a list of variable names (str), not {names!r}")


class _Reader:
    """Reads entries' tensors from a checkpoint's data shards, each shard opened once (the
    caller's ``stack`` closes them)."""

    def __init__(self, prefix: Path, bundle: _Bundle, stack: contextlib.ExitStack):
        self.prefix, self.bundle, self.stack = prefix, bundle, stack
        self.files: dict[int, BinaryIO] = {}

    def check(self, what: str, e: _Entry) -> None:
        """Checks ``e``'s size against its shape and dtype, and that its bytes lie inside its
        shard, before anything is read."""
        if e.count * np.dtype(_NUMERIC[e.dtype]).itemsize != e.size:
            raise TFCheckpointError(f"{self.prefix}.index: {what} has {e.size} bytes for "
                                    f"shape {e.shape} of {_dtype_name(e.dtype)}")
        shard, f = self._file(e)
        if e.offset + e.size > _size(f):
            raise TFCheckpointError(f"{shard} is truncated ({what} runs past its end)")

    def _file(self, e: _Entry) -> tuple[Path, BinaryIO]:
        shard = Path(f"{self.prefix}.data-{e.shard:05d}-of-{self.bundle.shards:05d}")
        if e.shard not in self.files:
            self.files[e.shard] = self.stack.enter_context(_open(shard))
        return shard, self.files[e.shard]

    def flat(self, what: str, e: _Entry) -> np.ndarray:
        """``e``'s tensor as a flat array, CRC32C-verified (:meth:`check` first)."""
        shard, f = self._file(e)
        raw = _read(f, shard, e.offset, e.size, what)
        if crc32c(raw) != _unmask(e.crc):
            raise TFCheckpointError(f"{shard} is damaged: {what} fails its CRC32C check")
        return _array(raw, e.dtype)

    def array(self, name: str, e: _Entry) -> np.ndarray:
        """The variable ``name`` (entry ``e``, numeric), reassembled from its slices when it
        is sliced."""
        if e.slices:
            return self._assemble(name, e)
        self.check(name, e)
        return _reshaped(self.prefix, name, self.flat(name, e), e.shape)

    def _assemble(self, name: str, e: _Entry) -> np.ndarray:
        """A sliced variable from its slices: every slice's geometry and entry checked, and
        the slices tiling the full shape exactly, before the array is made."""
        index = f"{self.prefix}.index"
        parts, total = [], 0
        for extents in e.slices:
            what = f"{name} (slice {_spec(extents)})"
            if len(extents) != len(e.shape):
                raise TFCheckpointError(f"{index}: {what} has rank {len(extents)}, the "
                                        f"variable's shape {e.shape} rank {len(e.shape)}")
            region, shape = [], []
            for (start, length), dim in zip(extents, e.shape, strict=True):
                if length == -1 and start != 0:
                    raise TFCheckpointError(f"{index}: {what} starts at {start} with no "
                                            "length")
                stop = dim if length == -1 else start + length
                if stop > dim:
                    raise TFCheckpointError(f"{index}: {what} lies outside the variable's "
                                            f"shape {e.shape}")
                region.append(slice(start, stop))
                shape.append(stop - start)
            part = self.bundle.slices.get(_slice_key(name, extents))
            if part is None:
                raise TFCheckpointError(f"{index}: {what} is missing (the variable lists "
                                        "it, the index has no entry for it)")
            if part.slices:
                raise TFCheckpointError(f"{index}: {what} is itself sliced")
            if part.dtype != e.dtype:
                raise TFCheckpointError(f"{index}: {what} has {_dtype_name(part.dtype)} "
                                        f"values, the variable {_dtype_name(e.dtype)}")
            if part.shape != shape:
                raise TFCheckpointError(f"{index}: {what} has shape {part.shape}, its spec "
                                        f"{shape}")
            self.check(what, part)
            parts.append((what, part, tuple(region)))
            total += part.count
        if total != e.count:
            raise TFCheckpointError(f"{index}: {name}'s slices hold {total} elements, its "
                                    f"shape {e.shape} {e.count}: "
                                    + ("some are missing" if total < e.count
                                       else "they overlap"))
        try:
            out = np.empty(e.shape, _array(b"", e.dtype).dtype)
            filled = np.zeros(e.shape, bool)
        except ValueError as err:  # see _reshaped
            raise TFCheckpointError(f"{self.prefix}: {name}'s shape {e.shape} cannot be a "
                                    f"numpy array ({err})") from None
        for what, part, region in parts:
            if filled[region].any():
                raise TFCheckpointError(f"{index}: {what} overlaps another slice of {name}")
            filled[region] = True
            out[region] = self.flat(what, part).reshape(out[region].shape)
        return out


def _reshaped(prefix: Path, name: str, flat: np.ndarray, shape: list[int]) -> np.ndarray:
    try:
        return flat.reshape(shape)
    except ValueError as err:  # an empty shape of more dims than numpy's limit, or
        raise TFCheckpointError(  # whose non-zero dims overflow its index type
            f"{prefix}: {name}'s shape {shape} cannot be a numpy array ({err})"
        ) from None


def read_variables(ckpt: str | os.PathLike, names: Iterable[str] | None = None
                   ) -> dict[str, np.ndarray]:
    """``{name: array}`` of the numeric variables (all, or ``names``), CRC32C-verified.

    A sliced (partitioned) variable is reassembled from its slices, under its own name.
    String tensors (TF 2's ``_CHECKPOINTABLE_OBJECT_GRAPH``) are left out unless named,
    then refused; other dtypes are refused by name.
    """
    prefix = resolve_prefix(ckpt)
    wanted = _names(names)
    bundle = _entries(prefix)
    entries = bundle.entries
    out: dict[str, np.ndarray] = {}
    with contextlib.ExitStack() as stack:
        reader = _Reader(prefix, bundle, stack)
        for name in sorted(entries) if wanted is None else wanted:
            if name not in entries:
                raise TFCheckpointError(f"{prefix}: no variable {name!r}")
            e = entries[name]
            if e.dtype == _STRING and wanted is None:
                continue
            if e.dtype not in _NUMERIC:
                raise TFCheckpointError(f"{prefix}: {name} has {_dtype_name(e.dtype)} values,"
                                        " which are not supported")
            out[name] = reader.array(name, e)
    return out
