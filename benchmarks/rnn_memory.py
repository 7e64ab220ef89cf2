"""dynamic_rnn memory against PyTorch's nn.LSTM: what a forward keeps for its backward.

    python benchmarks/rnn_memory.py [--quick] [--device cuda]

Same implementations and sizes as ``rnn_speed.py`` (2-layer LSTM stacks; ragged batches
with lengths drawn uniformly from ``[T/4, T]``, one of them ``T``).  Columns:

* ``saved MiB``: the distinct storages autograd keeps for the backward of one forward
  (``torch.autograd.graph.saved_tensors_hooks``), without the parameters and the inputs,
  which every row shares.  Exact and machine-independent: the activation memory of
  training.  Rows whose work runs inside a CUDA graph keep theirs in the graph's own memory
  pool, which these hooks do not see (shown as ``-``).
* ``ratio``: against the config's reference row (``nn.LSTM``, or ``nn.LSTM packed`` for
  ragged batches).
* ``peak MiB`` (CUDA only): ``torch.cuda.max_memory_allocated`` above what was allocated
  before the forward, over forward and backward (a graph's pool included, after its
  capture).
"""

from __future__ import annotations

import argparse
import sys

import torch
from _timing import table
from rnn_speed import CustomLSTM, HoistedCustomLSTM, full_length_rows
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit import rnn

MiB = 2 ** 20


def saved_bytes(fn, shared: list[torch.Tensor]) -> int:
    """Bytes of the distinct storages saved for backward by ``fn()``, ``shared`` excluded;
    runs the backward afterwards (so a graph's first call is captured and measured alike)."""
    skip = {t.untyped_storage().data_ptr() for t in shared}
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        if s.data_ptr() not in skip:
            storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    out.float().sum().backward()
    return sum(storages.values())


def peak_bytes(fn, device: torch.device) -> int:
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    fn().float().sum().backward()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


def measure(config: str, impls: dict, reference: str, shared: list[torch.Tensor],
            device: torch.device, graphed: set[str]) -> list[dict]:
    rows = []
    for name, fn in impls.items():
        fn().float().sum().backward()  # sizes, captures, allocator warm
        saved = saved_bytes(fn, shared)
        row = {"config": config, "implementation": name,
               "saved MiB": "-" if name in graphed else f"{saved / MiB:.2f}", "_saved": saved}
        if device.type == "cuda":
            row["peak MiB"] = f"{peak_bytes(fn, device) / MiB:.1f}"
        rows.append(row)
    ref = next(r["_saved"] for r in rows if r["implementation"] == reference)
    for r in rows:
        r["ratio"] = "-" if r["implementation"] in graphed else f"{r['_saved'] / ref:.2f}"
    return rows


def bench(b: int, t: int, i: int, h: int, device: torch.device) -> list[dict]:
    torch.manual_seed(0)
    x = torch.randn(b, t, i, device=device, requires_grad=True)
    lengths = torch.randint(t // 4, t + 1, (b,), generator=torch.Generator().manual_seed(0))
    lengths[0] = t
    ref = nn.LSTM(i, h, num_layers=2, batch_first=True).to(device)
    stack = rnn.MultiRNNCell([rnn.BasicLSTMCell(h, input_size=i),
                              rnn.BasicLSTMCell(h, input_size=h)]).to(device)
    custom = rnn.MultiRNNCell([CustomLSTM(h), CustomLSTM(h)])
    hoisted = rnn.MultiRNNCell([HoistedCustomLSTM(h), HoistedCustomLSTM(h)])
    for c in (custom, hoisted):
        rnn.dynamic_rnn(c, x[:, :1].detach().cpu())
        c.to(device)
    shared = [x, *ref.parameters(), *stack.parameters(), *custom.parameters(),
              *hoisted.parameters()]

    def packed():
        p = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        return pad_packed_sequence(ref(p)[0], batch_first=True, total_length=t)[0]

    full = full_length_rows(x, ref, stack, custom, hoisted)
    graphed = set()
    if device.type == "cuda":
        full["custom cell, cuda_graph"] = lambda: rnn.dynamic_rnn(custom, x, cuda_graph=True)[0]
        graphed.add("custom cell, cuda_graph")
    ragged = {
        "nn.LSTM packed": packed,
        "dynamic_rnn ragged": lambda: rnn.dynamic_rnn(stack, x, lengths)[0],
        "dynamic_rnn generic ragged": lambda: rnn.dynamic_rnn(stack, x, lengths, fused=False)[0],
        "custom cell ragged": lambda: rnn.dynamic_rnn(custom, x, lengths)[0],
    }
    config = f"B={b} T={t} I={i} H={h}"
    return (measure(config, full, "nn.LSTM", shared, device, graphed)
            + measure(config + " ragged", ragged, "nn.LSTM packed", shared, device, set()))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    configs = [(4, 10, 16, 16)] if args.quick else [(32, 100, 256, 256), (64, 100, 512, 512)]
    rows = [r for c in configs for r in bench(*c, device)]
    print(f"device={device} torch={torch.__version__}")
    columns = ["config", "implementation", "saved MiB", "ratio"]
    if device.type == "cuda":
        columns.append("peak MiB")
    print(table(rows, columns))


if __name__ == "__main__":
    sys.exit(main())
