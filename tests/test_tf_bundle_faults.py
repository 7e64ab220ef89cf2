"""The TF checkpoint reader against damaged, crafted and hostile files: special files, sizes
that a file declares but does not hold, malformed tables and entries, every TF dtype, bad
arguments, and a seeded fuzz loop.  Every outcome is a correct read or a TFCheckpointError
naming the file; never another exception, a hang or a large allocation."""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import struct
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES

from rnnkit.compat.bundle import TFCheckpointError, list_variables, read_variables

DTYPES = FIXTURES / "tf_ckpt_faults" / "dtypes"  # TF 2.15 wrote it (make_fixture.py there)
TFA = FIXTURES / "tf_ckpt" / "tfa_attention"
SEED003 = FIXTURES / "tf_ckpt" / "seed003"
SHARDS = FIXTURES / "tf_ckpt_faults" / "shards"  # three data shards
SLICED = FIXTURES / "tf_ckpt" / "sharded_vars"  # TF 1.x partitioned variables
STRING_NAMES = {"_CHECKPOINTABLE_OBJECT_GRAPH", "text/.ATTRIBUTES/VARIABLE_VALUE"}


# -- writing tensor bundles (LevelDB table + data shard), independent of the reader ------
def _crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def _mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative numbers as protobuf writes int64
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _field(num: int, value: int | bytes, wire: int | None = None) -> bytes:
    if wire is None:
        wire = 2 if isinstance(value, bytes) else 0
    if wire == 2:
        return _varint(num << 3 | 2) + _varint(len(value)) + value
    if wire == 5:
        return _varint(num << 3 | 5) + struct.pack("<I", value)
    return _varint(num << 3) + _varint(value)


def _entry(dtype: int, shape: list[int], offset: int, size: int, crc: int | None,
           shard: int = 0) -> bytes:
    dims = b"".join(_field(2, _field(1, d)) for d in shape)
    out = _field(1, dtype) + _field(2, dims) + _field(3, shard) + _field(4, offset)
    out += _field(5, size)
    return out + (_field(6, crc, wire=5) if crc is not None else b"")


def _block(items: list[tuple[bytes, bytes]], restarts: int | None = None) -> bytes:
    """Block contents, a restart point at every entry (no shared key prefixes)."""
    body = b"".join(_varint(0) + _varint(len(k)) + _varint(len(v)) + k + v for k, v in items)
    points, pos = [], 0
    for k, v in items:
        points.append(pos)
        pos += len(_varint(0) + _varint(len(k)) + _varint(len(v))) + len(k) + len(v)
    points = points or [0]
    body += b"".join(struct.pack("<I", p) for p in points)
    return body + struct.pack("<I", len(points) if restarts is None else restarts)


def _with_trailer(contents: bytes) -> bytes:
    return contents + b"\0" + struct.pack("<I", _mask(_crc32c(contents + b"\0")))


def _header(shards: int = 1) -> bytes:
    return _field(1, shards) + _field(3, _field(1, 1))  # num_shards, version {producer: 1}


def write_bundle(prefix: Path, items: list[tuple[str | bytes, bytes]], data: bytes,
                 shards: int = 1, restarts: int | None = None, header: bool = True) -> Path:
    """``prefix.index`` with ``items`` (name or key, BundleEntryProto) in the order given,
    after the header, in one data block; ``prefix.data-00000-of-NNNNN`` holding ``data``."""
    keys = [(b"", _header(shards))] * header + [
        (k if isinstance(k, bytes) else k.encode(), v) for k, v in items]
    block = _with_trailer(_block(keys, restarts))
    meta = _with_trailer(_block([]))
    index = _with_trailer(_block([(b"\xff", _varint(0) + _varint(len(block) - 5))]))
    footer = (_varint(len(block)) + _varint(len(meta) - 5)  # metaindex handle
              + _varint(len(block) + len(meta)) + _varint(len(index) - 5))  # index handle
    footer = footer.ljust(40, b"\0") + struct.pack("<Q", 0xDB4775248B80FB57)
    Path(f"{prefix}.index").write_bytes(block + meta + index + footer)
    Path(f"{prefix}.data-00000-of-{shards:05d}").write_bytes(data)
    return prefix


def one_tensor(prefix: Path, name: str, array: np.ndarray, dtype: int = 1,
               shape: list[int] | None = None) -> Path:
    raw = array.tobytes()
    entry = _entry(dtype, list(array.shape) if shape is None else shape, 0, len(raw),
                   _mask(_crc32c(raw)))
    return write_bundle(prefix, [(name, entry)], raw)


# -- sliced (partitioned) variables, written as TF's BundleWriter::AddSlice does -----------
def _ordered_signed(value: int) -> bytes:
    """OrderedCode's signed encoding: the fewest bytes ``n`` whose low ``7n`` bits hold the
    value in two's complement, the top ``n`` bits (all sign bits) inverted."""
    n = next(n for n in range(1, 11) if -(1 << (7 * n - 1)) <= value < 1 << (7 * n - 1))
    code = (value & ((1 << 8 * n) - 1)) ^ (((1 << n) - 1) << 7 * n)
    return code.to_bytes(n, "big")


def _slice_key(name: str, extents: list[tuple[int, int]]) -> bytes:
    """TF's EncodeTensorNameSlice(name, slice): OrderedCode of 0, the name, the rank, then
    each extent's start and length (-1: the whole dimension)."""
    raw = name.encode()
    assert b"\0" not in raw and b"\xff" not in raw  # no escapes needed
    return (b"\0" + raw + b"\0\x01" + bytes([1, len(extents)])
            + b"".join(_ordered_signed(s) + _ordered_signed(n) for s, n in extents))


def _slice_proto(extents: list[tuple[int, int]]) -> bytes:
    """A TensorSliceProto; a whole dimension (-1) has no length, as TF writes it."""
    return b"".join(_field(1, (_field(1, s) if s else b"") + (_field(2, n) if n != -1 else b""))
                    for s, n in extents)


def sliced_bundle(prefix: Path, name: str, array: np.ndarray,
                  slices: list[list[tuple[int, int]]], stored: list | None = None,
                  first=None, others: tuple[tuple[str, np.ndarray], ...] = ()) -> Path:
    """A bundle holding ``array`` as the sliced variable ``name``: its full entry listing
    ``slices``, and an entry per slice in ``stored`` (default: ``slices``) holding that part
    of ``array``; ``first(part bytes, offset)``, if given, writes the first one's entry.
    ``others``: unsliced variables beside it."""
    data, items = b"", []
    for i, extents in enumerate(slices if stored is None else stored):
        region = tuple(slice(s, None if n == -1 else s + n) for s, n in extents)
        raw = np.ascontiguousarray(array[region]).tobytes()
        value = (first(raw, len(data)) if first is not None and i == 0 else
                 _entry(1, list(array[region].shape), len(data), len(raw), _mask(_crc32c(raw))))
        items.append((_slice_key(name, extents), value))
        data += raw
    full = _field(1, 1) + _field(2, b"".join(_field(2, _field(1, d)) for d in array.shape))
    items.append((name, full + b"".join(_field(7, _slice_proto(x)) for x in slices)))
    for other, value in others:
        raw = value.tobytes()
        items.append((other, _entry(1, list(value.shape), len(data), len(raw),
                                    _mask(_crc32c(raw)))))
        data += raw
    return write_bundle(prefix, sorted(items, key=lambda kv: kv[0] if isinstance(kv[0], bytes)
                                       else kv[0].encode()), data)


def _copy(src: Path, dst: Path) -> Path:
    """A copy of the checkpoint in folder ``src``: its prefix in ``dst``."""
    (index,) = src.glob("*.index")
    return Path(shutil.copytree(src, dst)) / index.stem


@contextlib.contextmanager
def bounded_memory(limit: int = 256 << 20):
    """Fails the block if it allocates more than ``limit`` bytes: on Linux the address space
    is capped, so a huge allocation is a MemoryError at once (not a swapping machine);
    elsewhere the Python heap's peak is measured (tracemalloc, slower)."""
    if not sys.platform.startswith("linux"):
        tracemalloc.start()
        try:
            yield
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < limit, f"allocated {peak} bytes"
        return
    import resource

    saved = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    hard = saved[1]
    resource.setrlimit(resource.RLIMIT_AS, (used + limit if hard == resource.RLIM_INFINITY
                                            else min(used + limit, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, saved)


def _same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> bool:
    return got.keys() == want.keys() and all(
        got[k].dtype == want[k].dtype and got[k].shape == want[k].shape
        and got[k].tobytes() == want[k].tobytes() for k in want)


# -- special files: refused at once, never blocking ---------------------------------------
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
@pytest.mark.parametrize("which", ["index", "data", "state"])
def test_fifo_is_refused_without_blocking(tmp_path, which):
    prefix = _copy(DTYPES, tmp_path / "ck")
    target = {"index": Path(f"{prefix}.index"), "data": Path(f"{prefix}.data-00000-of-00001"),
              "state": prefix.parent / "checkpoint"}[which]
    target.unlink(missing_ok=True)
    os.mkfifo(target)
    if which == "state":
        prefix = prefix.parent
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            read_variables(prefix)
            outcome.append(None)
        except BaseException as e:  # noqa: B036 - reported to the test's thread
            outcome.append(e)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(5)
    if thread.is_alive():  # a reader blocked in open(): give it a writer and EOF
        os.close(os.open(target, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(5)
        pytest.fail(f"reading a checkpoint whose {which} file is a FIFO blocked")
    assert isinstance(outcome[0], TFCheckpointError), outcome
    assert str(target) in str(outcome[0]) and "not a regular file" in str(outcome[0])


# -- sizes a file declares, checked against the file before anything is read ---------------
def test_sparse_6gib_data_file_reads_only_its_entries(tmp_path):
    prefix = _copy(DTYPES, tmp_path / "ck")
    want = read_variables(prefix)
    with open(f"{prefix}.data-00000-of-00001", "r+b") as f:
        f.truncate(6 << 30)  # a hole after the tensors: no disk space, 6 GiB of size
    with bounded_memory():
        assert _same(read_variables(prefix), want)


def test_sparse_4gib_index_reads_only_its_blocks(tmp_path):
    prefix = _copy(DTYPES, tmp_path / "ck")
    want = read_variables(prefix)
    index = Path(f"{prefix}.index")
    raw = index.read_bytes()
    with open(index, "r+b") as f:  # the blocks, a 4 GiB hole, then the footer
        f.seek(4 << 30)
        f.write(raw[-48:])
    with bounded_memory():
        assert list_variables(prefix) == list_variables(DTYPES / "ckpt")
        assert _same(read_variables(prefix), want)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero here")
def test_data_file_linked_to_dev_zero_is_refused(tmp_path):
    prefix = _copy(DTYPES, tmp_path / "ck")
    data = Path(f"{prefix}.data-00000-of-00001")
    data.unlink()
    data.symlink_to("/dev/zero")
    with bounded_memory(), pytest.raises(TFCheckpointError, match="not a regular file"):
        read_variables(prefix)


@pytest.mark.parametrize("offset,size,shape", [
    (0, 1 << 40, [1 << 38]),  # a 1 TiB tensor in a file of 4 bytes
    (1 << 62, 4, [1]),  # an offset far past the end
    (0, 4, [1 << 38]),  # a shape that does not fit its size
])
def test_entry_sizes_beyond_the_file_are_refused_before_reading(tmp_path, offset, size, shape):
    raw = b"\0\0\x80?"
    write_bundle(tmp_path / "ck", [("w", _entry(1, shape, offset, size, _mask(_crc32c(raw))))],
                 raw)
    with bounded_memory(), pytest.raises(TFCheckpointError, match=r"ck\.(index|data)"):
        read_variables(tmp_path / "ck")


def test_block_handle_beyond_the_file_is_refused(tmp_path):
    prefix = one_tensor(tmp_path / "ck", "w", np.ones(3, np.float32))
    index = Path(f"{prefix}.index")
    raw = bytearray(index.read_bytes())
    footer = _varint(0) + _varint(5) + _varint(0) + _varint(1 << 40)  # index block: 1 TiB
    raw[-48:-8] = footer.ljust(40, b"\0")
    index.write_bytes(bytes(raw))
    with bounded_memory(), pytest.raises(TFCheckpointError, match=r"ck\.index is damaged"):
        list_variables(prefix)


# -- crafted checkpoints: refused, never read wrongly ----------------------------------------
def test_unknown_dtype_code_is_refused_by_name(tmp_path):
    one_tensor(tmp_path / "ck", "w", np.ones(3, np.float32), dtype=99)
    assert list_variables(tmp_path / "ck") == [("w", [3])]
    with pytest.raises(TFCheckpointError, match=r"ck: w has dtype 99"):
        read_variables(tmp_path / "ck")


@pytest.mark.parametrize("names", [["w", "w"], ["w", "a"]], ids=["repeated", "unsorted"])
def test_keys_repeated_or_out_of_order_are_refused(tmp_path, names):
    raw = np.arange(2, dtype=np.float32).tobytes()
    entry = _entry(1, [2], 0, 8, _mask(_crc32c(raw)))
    write_bundle(tmp_path / "ck", [(n, entry) for n in names], raw)
    for read in (list_variables, read_variables):
        with pytest.raises(TFCheckpointError, match=r"ck\.index is damaged .*not sorted"):
            read(tmp_path / "ck")


@pytest.mark.parametrize("restarts", [0, 1000, 2**32 - 1])
def test_block_restart_count_out_of_range_is_refused(tmp_path, restarts):
    raw = np.ones(2, np.float32).tobytes()
    write_bundle(tmp_path / "ck", [("w", _entry(1, [2], 0, 8, _mask(_crc32c(raw))))], raw,
                 restarts=restarts)
    with pytest.raises(TFCheckpointError, match=r"ck\.index is damaged .*restart"):
        read_variables(tmp_path / "ck")


def test_every_numeric_dtype_reads_as_tf_does():
    """bfloat16 as float32 (exactly), complex64/128 as numpy complex, the others as their
    numpy dtype; string tensors left out."""
    want = dict(np.load(DTYPES / "values.npz"))
    got = read_variables(DTYPES / "ckpt")
    assert set(got) == set(want) - STRING_NAMES
    for name, value in got.items():
        assert value.dtype == want[name].dtype and value.shape == want[name].shape, name
        assert value.tobytes() == want[name].tobytes(), name
    bf16 = got["bf16/.ATTRIBUTES/VARIABLE_VALUE"]
    assert not (bf16.view(np.uint32) & 0xFFFF).any()  # bfloat16: float32's top 16 bits
    assert got["c64/.ATTRIBUTES/VARIABLE_VALUE"].dtype == np.complex64


def test_bfloat16_bits_become_float32_bits(tmp_path):
    bits = np.array([0x3F80, 0xC049, 0x7F80, 0xFF80, 0x0001, 0x8000], np.uint16)
    one_tensor(tmp_path / "ck", "b", bits, dtype=14)
    got = read_variables(tmp_path / "ck")["b"]
    assert got.dtype == np.float32
    assert got.view(np.uint32).tolist() == [int(b) << 16 for b in bits]


def test_each_shard_is_read_from_its_own_file_and_only_when_asked_for(tmp_path):
    want = dict(np.load(SHARDS / "values.npz"))
    assert _same(read_variables(SHARDS / "ckpt"), want)
    prefix = _copy(SHARDS, tmp_path / "ck")
    missing = Path(f"{prefix}.data-00001-of-00003")
    missing.unlink()
    assert _same(read_variables(prefix, ["v2", "v0"]), {k: want[k] for k in ("v0", "v2")})
    with pytest.raises(TFCheckpointError, match=re.escape(f"{missing} cannot be read")):
        read_variables(prefix)


W = np.arange(24, dtype=np.float32).reshape(4, 6)
W_SLICES = [[(0, 3), (0, 4)], [(0, 3), (4, 2)], [(3, 1), (0, -1)]]  # uneven, both axes


def test_sliced_variable_is_listed_whole_and_reassembled(tmp_path):
    bias = np.ones(2, np.float32)
    sliced_bundle(tmp_path / "ck", "w", W, W_SLICES, others=(("b", bias),))
    assert list_variables(tmp_path / "ck") == [("b", [2]), ("w", [4, 6])]
    got = read_variables(tmp_path / "ck")
    assert got.keys() == {"b", "w"} and got["w"].dtype == np.float32
    np.testing.assert_array_equal(got["w"], W)
    np.testing.assert_array_equal(read_variables(tmp_path / "ck", ["w"])["w"], W)


def test_tf_slice_keys_are_where_the_writer_puts_them():
    """TF 2.15's slice keys are those the writer above encodes (so its crafted bundles are
    TF's format), and the reader reassembles what tf.train.load_variable does."""
    ref = np.load(SLICED / "outputs.npz")
    got = read_variables(SLICED / "ckpt")
    assert sorted(got) == [n.split(":")[0] for n in ref["listed"]]
    assert all(got[k].tobytes() == ref[f"var:{k}"].tobytes() for k in got)
    from rnnkit.compat.bundle import _table

    keys = {k for k, _ in _table(SLICED / "ckpt.index") if k[:1] == b"\0"}
    assert keys == {_slice_key(name, [(start, length), (0, cols)][:rank])
                    for name, rows, cols, rank in [("rnn/lstm_cell/kernel", (3, 3), 16, 2),
                                                   ("rnn/lstm_cell/projection/kernel", (2, 2),
                                                    3, 2),
                                                   ("softmax/weights", (2, 1), 5, 2),
                                                   ("softmax/biases", (3, 2), 0, 1)]
                    for start, length in zip((0, rows[0]), rows, strict=True)}


def test_ordered_code_signed_numbers_match_the_reader():
    from rnnkit.compat.bundle import _signed_num_increasing

    values = [0, 1, -1, 63, 64, -64, -65, 8191, 8192, -8193, 1 << 40, -(1 << 40),
              (1 << 63) - 1, -(1 << 63)]
    for v in values:
        assert _signed_num_increasing(v) == _ordered_signed(v), v
    codes = [_ordered_signed(v) for v in sorted(values)]
    assert codes == sorted(codes)  # OrderedCode: byte order is numeric order


SLICE_FAULTS = {  # name: (sliced_bundle's arguments, the error)
    "missing": (dict(stored=W_SLICES[:2]), r"w \(slice 3,1:-\) is missing"),
    "gap": (dict(slices=W_SLICES[:2]), r"w's slices hold 18 elements, its shape \[4, 6\] 24: "
                                        "some are missing"),
    "overlap_counted": (dict(slices=W_SLICES + [[(2, 2), (0, -1)]]), r"they overlap"),
    "overlap_and_gap": (dict(slices=[[(0, 2), (0, -1)], [(1, 1), (0, -1)], [(3, 1), (0, -1)]]),
                        r"w \(slice 1,1:-\) overlaps another slice of w"),
    "outside": (dict(slices=W_SLICES[:2] + [[(3, 2), (0, -1)]]),
                r"w \(slice 3,2:-\) lies outside the variable's shape \[4, 6\]"),
    "rank": (dict(slices=W_SLICES[:2] + [[(3, 1)]]), r"w \(slice 3,1\) has rank 1, the "),
    "start_without_length": (dict(slices=W_SLICES[:2] + [[(3, 1), (2, -1)]]),
                             r"w \(slice 3,1:-\) starts at 2 with no length"),
    "shape": (dict(first=lambda raw, at: _entry(1, [12], at, 48, _mask(_crc32c(raw)))),
              r"w \(slice 0,3:0,4\) has shape \[12\], its spec \[3, 4\]"),
    "dtype": (dict(first=lambda raw, at: _entry(3, [3, 4], at, 48, _mask(_crc32c(raw)))),
              r"w \(slice 0,3:0,4\) has int32 values, the variable float32"),
    "size": (dict(first=lambda raw, at: _entry(1, [3, 4], at, 8, _mask(_crc32c(raw[:8])))),
             r"ck\.index: w \(slice 0,3:0,4\) has 8 bytes for shape \[3, 4\]"),
    "nested": (dict(first=lambda raw, at: _entry(1, [3, 4], at, 48, _mask(_crc32c(raw)))
                    + _field(7, b"")),
               r"w \(slice 0,3:0,4\) is itself sliced"),
    "crc": (dict(first=lambda raw, at: _entry(1, [3, 4], at, 48, _mask(_crc32c(raw)) ^ 1)),
            r"ck\.data-00000-of-00001 is damaged: w \(slice 0,3:0,4\) fails its CRC32C"),
    "past_end": (dict(first=lambda raw, at: _entry(1, [3, 4], at + 1000, 48,
                                                   _mask(_crc32c(raw)))),
                 r"ck\.data-00000-of-00001 is truncated \(w \(slice 0,3:0,4\) runs past"),
}


@pytest.mark.parametrize("case", sorted(SLICE_FAULTS))
def test_damaged_slice_table_is_refused_naming_the_variable(tmp_path, case):
    """A slice the full entry lists but the index lacks, slices that overlap, leave a gap
    or lie outside the variable, and slice entries that disagree with their spec: refused
    by read_variables naming the variable and the slice; list_variables still lists it."""
    kwargs, match = SLICE_FAULTS[case]
    sliced_bundle(tmp_path / "ck", "w", W, **{"slices": W_SLICES, **kwargs})
    assert list_variables(tmp_path / "ck") == [("w", [4, 6])]
    with bounded_memory(), pytest.raises(TFCheckpointError, match=match) as info:
        read_variables(tmp_path / "ck")
    assert str(tmp_path / "ck") in str(info.value)


def test_malformed_slice_entry_is_refused_naming_its_variable(tmp_path):
    sliced_bundle(tmp_path / "ck", "w", W, W_SLICES,
                  first=lambda raw, at: _field(1, 1) + b"\x12\x40\x10")  # truncated shape
    for read in (list_variables, read_variables):
        with pytest.raises(TFCheckpointError, match=re.escape(
                f"{tmp_path / 'ck'}.index is damaged (a slice entry of 'w': ")):
            read(tmp_path / "ck")


def test_huge_sliced_variable_is_refused_before_allocating(tmp_path):
    """A full shape of 2^40 elements whose slices the file does not hold: refused from the
    sizes alone."""
    big = _field(1, 1) + _field(2, _field(2, _field(1, 1 << 40)))
    raw = np.ones(4, np.float32).tobytes()
    items = [(_slice_key("w", [(0, 4)]), _entry(1, [4], 0, 16, _mask(_crc32c(raw)))),
             (_slice_key("w", [(4, (1 << 40) - 4)]),
              _entry(1, [(1 << 40) - 4], 16, 4 * ((1 << 40) - 4), 0)),
             ("w", big + _field(7, _slice_proto([(0, 4)]))
              + _field(7, _slice_proto([(4, (1 << 40) - 4)])))]
    write_bundle(tmp_path / "ck", items, raw)
    assert list_variables(tmp_path / "ck") == [("w", [1 << 40])]
    with bounded_memory(), pytest.raises(TFCheckpointError, match=r"truncated \(w \(slice 4,"):
        read_variables(tmp_path / "ck")


def test_flipped_byte_in_a_tf_slice_names_that_variable_and_slice(tmp_path):
    ref = np.load(SLICED / "outputs.npz")
    prefix = _copy(SLICED, tmp_path / "ck")
    data = Path(f"{prefix}.data-00000-of-00001")
    raw = data.read_bytes()
    for name, region, spec in [("rnn/lstm_cell/kernel", np.s_[3:6], "3,3:0,16"),
                               ("rnn/lstm_cell/projection/kernel", np.s_[:2], "0,2:0,3"),
                               ("softmax/biases", np.s_[3:], "3,2")]:
        at = raw.find(np.ascontiguousarray(ref[f"var:{name}"][region]).tobytes())
        assert at >= 0, name
        bad = bytearray(raw)
        bad[at + 1] ^= 0x04
        data.write_bytes(bytes(bad))
        with pytest.raises(TFCheckpointError, match=re.escape(
                f"{data} is damaged: {name} (slice {spec}) fails its CRC32C check")):
            read_variables(prefix)
    data.write_bytes(raw)
    assert read_variables(prefix).keys() == read_variables(SLICED).keys()


def test_string_tensor_is_refused_by_name_and_otherwise_left_out():
    with pytest.raises(TFCheckpointError, match=r"text/.ATTRIBUTES/VARIABLE_VALUE has string"):
        read_variables(DTYPES / "ckpt", ["text/.ATTRIBUTES/VARIABLE_VALUE"])
    assert not STRING_NAMES & set(read_variables(DTYPES / "ckpt"))


@pytest.mark.parametrize("dtype,name", [(20, "resource"), (21, "variant"), (12, "quint8")])
def test_other_non_numeric_dtypes_are_refused_by_name(tmp_path, dtype, name):
    one_tensor(tmp_path / "ck", "v", np.zeros(4, np.uint8), dtype=dtype)
    with pytest.raises(TFCheckpointError, match=f"v has {name} values"):
        read_variables(tmp_path / "ck")


def test_missing_header_is_refused(tmp_path):
    raw = np.ones(3, np.float32).tobytes()
    write_bundle(tmp_path / "ck", [("w", _entry(1, [3], 0, 12, _mask(_crc32c(raw))))], raw,
                 header=False)
    with pytest.raises(TFCheckpointError, match=r"ck\.index is damaged .*header"):
        read_variables(tmp_path / "ck")


# -- malformed entries: a TFCheckpointError naming the file, not a raw parser error -------
ONES = np.ones(6, np.float32).tobytes()
CRC = _mask(_crc32c(ONES))
MALFORMED = {
    "count_overflows": _entry(1, [2**32, 2**32], 0, 0, _mask(_crc32c(b""))),
    "negative_dims": _entry(1, [-2, -3], 0, 24, CRC),
    "truncated_varint": _field(1, 1) + b"\x10\xff",
    "unknown_wire_type": _field(1, 1) + b"\x0b",
    "truncated_fixed64": _field(1, 1) + b"\x21\x01\x02",
    "truncated_length": _field(1, 1) + b"\x12\x40\x10",
    "shape_as_varint": _field(1, 1) + _field(2, 7),
    "dim_as_bytes": _field(1, 1) + _field(2, _field(2, b"\x01")),
    "varint_too_long": _field(1, 1) + b"\x20" + b"\xff" * 11 + b"\x01",
    "crc_as_varint": _entry(1, [6], 0, 24, None) + _field(6, CRC),
    "shard_out_of_range": _entry(1, [6], 0, 24, CRC, shard=3),
    "unknown_rank": _entry(1, [6], 0, 24, CRC)[:2] + _field(2, _field(3, 1)),
    "slice_as_varint": _entry(1, [6], 0, 24, CRC) + _field(7, 3),
    "extent_as_varint": _entry(1, [6], 0, 24, CRC) + _field(7, _field(1, 3)),
    "extent_negative_start": _entry(1, [6], 0, 24, CRC) + _field(7, _field(1, _field(1, -1))),
    "extent_negative_length": _entry(1, [6], 0, 24, CRC) + _field(7, _field(1, _field(2, -2))),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_entry_is_a_checkpoint_error_naming_the_file(tmp_path, case):
    write_bundle(tmp_path / "ck", [("w", MALFORMED[case])], ONES)
    for read in (list_variables, read_variables):
        with pytest.raises(TFCheckpointError) as info:
            read(tmp_path / "ck")
        assert f"{tmp_path / 'ck'}.index is damaged (entry 'w': " in str(info.value)


@pytest.mark.parametrize("shape", [[0, 2**62, 2**62], [0] * 70], ids=["huge", "rank70"])
def test_empty_shape_numpy_cannot_hold_is_refused_by_name(tmp_path, shape):
    write_bundle(tmp_path / "ck", [("w", _entry(1, shape, 0, 0, _mask(_crc32c(b""))))], b"")
    assert list_variables(tmp_path / "ck") == [("w", shape)]  # as TF lists it
    with pytest.raises(TFCheckpointError, match=r"ck: w's shape .* cannot be a numpy array"):
        read_variables(tmp_path / "ck")


# -- arguments and the 'checkpoint' state file ------------------------------------------------
@pytest.mark.parametrize("ckpt", [None, 123, b"bytes", 1.5])
def test_argument_that_is_not_a_path_is_a_type_error(ckpt):
    for read in (list_variables, read_variables):
        with pytest.raises(TypeError, match=r"ckpt must be a checkpoint path .* not "):
            read(ckpt)


@pytest.mark.parametrize("names", ["w", [b"w"], 3])
def test_names_that_are_not_a_list_of_strings_is_a_type_error(names):
    with pytest.raises(TypeError, match=r"names must be"):
        read_variables(DTYPES / "ckpt", names)


def test_binary_state_file_is_refused_naming_it(tmp_path):
    folder = shutil.copytree(DTYPES, tmp_path / "ck")
    (folder / "checkpoint").write_bytes(b"\xff\xfe\x00model_checkpoint_path: \x80\x81")
    with pytest.raises(TFCheckpointError, match=re.escape(f"{folder / 'checkpoint'} is not a TF")):
        list_variables(folder)


def test_state_file_escapes_are_decoded(tmp_path):
    folder = tmp_path / "ck"
    folder.mkdir()
    name = 'é"x\\y-1'
    for src in DTYPES.glob("ckpt.*"):
        shutil.copy(src, folder / src.name.replace("ckpt", name))
    # as TF 2.15's CheckpointManager wrote it for checkpoint_name='é"x\\y'
    (folder / "checkpoint").write_bytes(b'model_checkpoint_path: "\\303\\251\\"x\\\\y-1"\n'
                                        b'all_model_checkpoint_paths: "\\303\\251\\"x\\\\y-1"\n')
    assert list_variables(folder) == list_variables(DTYPES / "ckpt")


# -- fuzzing: every outcome a correct read or a TFCheckpointError ---------------------------
def _mutate(rng: random.Random, raw: bytes) -> bytes:
    kind = rng.choice(["flip", "flip", "flip", "truncate", "extend", "splice"])
    if kind == "flip":
        out = bytearray(raw)
        for _ in range(rng.choice([1, 1, 2, 3])):
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        return bytes(out)
    if kind == "truncate":
        return raw[:rng.randrange(len(raw))]
    if kind == "extend":
        return raw + rng.randbytes(rng.choice([1, 7, 48, 300]))
    at = rng.randrange(len(raw))
    return raw[:at] + rng.randbytes(rng.randrange(1, 16)) + raw[at + rng.randrange(16):]


def _crafted_entry(rng: random.Random, blob: bytes) -> bytes:
    """A valid entry over part of ``blob``, or random fields, either with random fields
    after it (which override its own)."""
    def number() -> int:
        return rng.choice([0, 1, 2, 3, 4, 8, 24, len(blob), len(blob) + 1, -1, -(1 << 63),
                           (1 << 63) - 1, 1 << 32, 1 << 62, rng.randrange(1 << 64)])

    out = b""
    if rng.random() < 0.5:
        dtype, itemsize = rng.choice([(1, 4), (14, 2), (4, 1), (8, 8), (10, 1), (7, 1)])
        count = rng.randrange(len(blob) // itemsize + 1)
        offset = rng.randrange(len(blob) - count * itemsize + 1)
        raw = blob[offset:offset + count * itemsize]
        out = _entry(dtype, [count], offset, len(raw), _mask(_crc32c(raw)))
        if rng.random() < 0.5:
            return out
    for _ in range(rng.randrange(8)):
        num = rng.choice([1, 2, 3, 4, 5, 6, 7, 9])
        if num == 2:
            out += _field(2, b"".join(_field(2, _field(1, number()))
                                      for _ in range(rng.randrange(4))))
        elif num in (6, 9) or rng.random() < 0.1:
            out += _field(num, rng.randrange(1 << 32), wire=5)
        else:
            out += _field(num, rng.choice([1, 2, 3, 7, 8, 14, 18, 19, 10, 99]) if num == 1
                          else number())
    if rng.random() < 0.2:
        out += rng.randbytes(rng.randrange(1, 6))
    return out


def _check(prefix: Path, want: dict[str, np.ndarray] | None, listed: list | None) -> str:
    try:
        names = list_variables(prefix)
        got = read_variables(prefix)
    except TFCheckpointError as e:
        assert str(prefix) in str(e), e
        return "refused"
    if want is None:  # crafted: whatever was read agrees with the index
        shapes = dict(names)
        for name, value in got.items():
            assert list(value.shape) == shapes[name] and value.nbytes <= 1 << 16
        return "read"
    assert names == listed and _same(got, want)
    return "read"


def _fuzz(count: int, make_case) -> dict[str, int]:
    """Runs ``count`` cases, ``make_case(case)`` writing each and returning ``(kind,
    _check's arguments)``; the outcomes counted by kind."""
    outcomes: dict[str, int] = {}
    start = time.monotonic()
    with bounded_memory():
        for case in range(count):
            kind, args = make_case(case)
            try:
                key = f"{kind}:{_check(*args)}"
            except Exception as e:  # a wrong read, another exception type, a MemoryError
                pytest.fail(f"case {case} ({kind}): {type(e).__name__}: {e}")
            outcomes[key] = outcomes.get(key, 0) + 1
    assert time.monotonic() - start < 20, "fuzzing took too long"
    return outcomes


@pytest.mark.parametrize("base", [DTYPES, TFA, SEED003, SLICED],
                         ids=["dtypes", "tfa", "seed003", "sliced"])
def test_fuzzed_checkpoints_are_read_correctly_or_refused(tmp_path, base):
    """Byte flips, truncations, extensions and splices of a real checkpoint's index or data
    shard: refused, or read exactly as the intact checkpoint (when the bytes changed are
    none that the reader uses, such as a string tensor's or the footer's padding)."""
    rng = random.Random(20240611)
    prefix = _copy(base, tmp_path / "ck")
    index, data = Path(f"{prefix}.index"), Path(f"{prefix}.data-00000-of-00001")
    raw_index, raw_data = index.read_bytes(), data.read_bytes()
    want, listed = read_variables(prefix), list_variables(prefix)

    def make_case(case: int):
        kind = rng.choice(["index", "index", "data"])
        index.write_bytes(_mutate(rng, raw_index) if kind == "index" else raw_index)
        data.write_bytes(_mutate(rng, raw_data) if kind == "data" else raw_data)
        return kind, (prefix, want, listed)

    outcomes = _fuzz(500, make_case)
    assert outcomes.get("index:refused") and outcomes.get("data:refused"), outcomes


def test_crafted_bundles_are_read_consistently_or_refused(tmp_path):
    """Bundles whose blocks and CRCs are all valid, holding random entries (valid ones over
    random data, random fields, both) and random restart counts."""
    rng = random.Random(7)

    def make_case(case: int):
        blob = rng.randbytes(rng.choice([0, 4, 24, 64]))
        items = sorted((f"v{i}", _crafted_entry(rng, blob)) for i in range(rng.randrange(1, 4)))
        write_bundle(tmp_path / "ck", items, blob, shards=rng.choice([1, 1, 2]),
                     restarts=rng.choice([None] * 8 + [0, 2, 5, 1 << 30]))
        return "crafted", (tmp_path / "ck", None, None)

    outcomes = _fuzz(800, make_case)
    assert outcomes.get("crafted:refused") and outcomes.get("crafted:read", 0) > 10, outcomes
