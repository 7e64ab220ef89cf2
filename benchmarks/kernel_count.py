"""Count the GPU kernels and copies of one ragged fwd+bwd: dynamic_rnn vs nn.LSTM packed.

    python benchmarks/kernel_count.py        # needs CUDA
"""

from __future__ import annotations

import collections

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch.profiler import ProfilerActivity, profile

from rnnkit import rnn


def count(fn) -> collections.Counter:
    fn().sum().backward()  # warm up (weights laid out, handles made)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn().sum().backward()
        torch.cuda.synchronize()
    kinds: collections.Counter = collections.Counter()
    for e in prof.events():
        if e.device_type.name != "CUDA":
            continue
        name = e.name.lower()
        kinds["memcpy" if "memcpy" in name else "memset" if "memset" in name else "kernel"] += 1
    return kinds


def main() -> None:
    b, t, i, h = 64, 100, 512, 512
    dev = torch.device("cuda")
    lengths = torch.randint(t // 4, t + 1, (b,), generator=torch.Generator().manual_seed(0))
    lengths[0] = t
    x = torch.randn(b, t, i, device=dev)
    ref = nn.LSTM(i, h, num_layers=2, batch_first=True).to(dev)
    stack = rnn.MultiRNNCell([rnn.BasicLSTMCell(h, input_size=i),
                              rnn.BasicLSTMCell(h, input_size=h)]).to(dev)

    def packed():
        p = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        return pad_packed_sequence(ref(p)[0], batch_first=True, total_length=t)[0]

    for name, fn in (("nn.LSTM packed", packed),
                     ("dynamic_rnn ragged", lambda: rnn.dynamic_rnn(stack, x, lengths)[0])):
        print(f"{name:20s} {dict(count(fn))}")


if __name__ == "__main__":
    main()
