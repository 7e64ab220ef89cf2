"""dynamic_rnn speed against PyTorch's nn.LSTM (and, optionally, TF 2.15's tf.compat.v1).

    python benchmarks/rnn_speed.py [--quick] [--device cuda] [--autocast bf16]
                                   [--only full|ragged] [--tf-python /path/to/tf/python]

Full-length rows (2-layer LSTM stacks, batch-major inputs):

* ``nn.LSTM``: PyTorch's module called directly (the reference, ratio 1.00);
* ``dynamic_rnn fused``: MultiRNNCell of two BasicLSTMCell through dynamic_rnn;
* ``dynamic_rnn generic``: the same cells with ``fused=False`` (hoisted input projection);
* ``custom cell eager`` / ``compiled``: an LSTM written as a user RNNCell (the seed's
  ``build``/``call`` style, no fast-path protocol) on the generic loop;
* ``custom cell, project_inputs`` (eager / compiled): the same user LSTM implementing the
  optional ``project_inputs`` / ``call_projected`` protocol, so the driver hoists its input
  matmul out of the loop (DESIGN.md: "where the cell allows");
* ``tf.compat.v1 dynamic_rnn``: TF 2.15 graph mode, same sizes, when ``--tf-python`` names a
  Python with tensorflow-cpu==2.15.1 (run in a subprocess, same machine, same run).

Ragged rows (``--only ragged``; lengths drawn uniformly from ``[T/4, T]``, one of them ``T``):

* ``nn.LSTM packed``: what a PyTorch user writes for the same result, ``pack_padded_sequence``
  -> ``nn.LSTM(num_layers=2)`` -> ``pad_packed_sequence`` (the reference, ratio 1.00);
* ``dynamic_rnn ragged``: MultiRNNCell of two BasicLSTMCell with ``sequence_length``;
* ``nn.LSTM padded full``: ``nn.LSTM`` on the same batch padded to full length, ignoring the
  lengths (what raggedness costs);
* ``nn.LSTM bidir packed`` / ``bidirectional_dynamic_rnn``: one bidirectional layer;
* ``nn.LSTM 2-layer bidir packed`` / ``stack_bidirectional_dynamic_rnn``: two layers.

Times are medians in milliseconds over rounds that run every implementation once each
(interleaved, so drifting machine load touches all rows alike); "fwd" runs under
``torch.no_grad``, "fwd+bwd" includes the backward pass of ``outputs.sum()``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap

import torch
from _timing import interleaved_medians, table
from torch import nn

from rnnkit import rnn


class CustomLSTM(rnn.RNNCell):
    """An LSTM as a user would write it (seed 000 style)."""

    def __init__(self, num_units: int):
        super().__init__()
        self.n = num_units

    @property
    def state_size(self):
        return rnn.LSTMStateTuple(self.n, self.n)

    @property
    def output_size(self):
        return self.n

    def build(self, inputs_shape):
        self.kernel = self.add_variable("kernel", [inputs_shape[1] + self.n, 4 * self.n])
        self.bias = self.add_variable("bias", [4 * self.n], initializer=0.0)

    def call(self, inputs, state):
        c, h = state
        i, j, f, o = (torch.cat([inputs, h], 1) @ self.kernel + self.bias).chunk(4, 1)
        c = c * torch.sigmoid(f + 1.0) + torch.sigmoid(i) * torch.tanh(j)
        h = torch.tanh(c) * torch.sigmoid(o)
        return h, rnn.LSTMStateTuple(c, h)


class HoistedCustomLSTM(CustomLSTM):
    """The same user LSTM, opting into the driver's input-projection hoisting."""

    def build(self, inputs_shape):
        n, d = self.n, inputs_shape[1]
        self.w_x = self.add_variable("w_x", [d, 4 * n])
        self.w_h = self.add_variable("w_h", [n, 4 * n])
        self.bias = self.add_variable("bias", [4 * n], initializer=0.0)

    def project_inputs(self, inputs):  # all time steps at once: [time, batch, 4n]
        return inputs @ self.w_x + self.bias

    def call_projected(self, projected, state):
        c, h = state
        i, j, f, o = torch.addmm(projected, h, self.w_h).chunk(4, 1)
        c = c * torch.sigmoid(f + 1.0) + torch.sigmoid(i) * torch.tanh(j)
        h = torch.tanh(c) * torch.sigmoid(o)
        return h, rnn.LSTMStateTuple(c, h)

    def call(self, inputs, state):
        return self.call_projected(self.project_inputs(inputs), state)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _runner(fn, device, autocast):
    def call():
        if autocast is None:
            return fn()
        with torch.autocast(device.type, dtype=autocast):
            return fn()

    def fwd():
        with torch.no_grad():
            call()
        sync(device)

    def fwd_bwd():
        call().float().sum().backward()
        sync(device)

    return fwd, fwd_bwd


def _rows(config, impls, runners, repeat, base_name):
    fwd_ms = interleaved_medians({n: r[0] for n, r in runners.items()}, repeat)
    bwd_ms = interleaved_medians({n: r[1] for n, r in runners.items()}, repeat)
    rows = []
    for name in impls:
        tf_, tb = fwd_ms[name] * 1e3, bwd_ms[name] * 1e3
        rows.append({
            "config": config, "implementation": name,
            "fwd ms": f"{tf_:.2f}", "fwd ratio": f"{fwd_ms[name] / fwd_ms[base_name]:.2f}",
            "fwd+bwd ms": f"{tb:.2f}",
            "fwd+bwd ratio": f"{bwd_ms[name] / bwd_ms[base_name]:.2f}",
        })
    return rows


def bench_ragged(b, t, i, h, device, repeat, autocast):
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(t // 4, t + 1, (b,), generator=g)
    lengths[0] = t
    x = torch.randn(b, t, i, device=device)
    ref = nn.LSTM(i, h, num_layers=2, batch_first=True).to(device)
    ref_bi = nn.LSTM(i, h, batch_first=True, bidirectional=True).to(device)
    ref_bi2 = nn.LSTM(i, h, num_layers=2, batch_first=True, bidirectional=True).to(device)
    stack = rnn.MultiRNNCell([rnn.BasicLSTMCell(h, input_size=i),
                              rnn.BasicLSTMCell(h, input_size=h)]).to(device)
    fw, bw = (rnn.BasicLSTMCell(h, input_size=i).to(device) for _ in range(2))
    fws = [rnn.BasicLSTMCell(h, input_size=d).to(device) for d in (i, 2 * h)]
    bws = [rnn.BasicLSTMCell(h, input_size=d).to(device) for d in (i, 2 * h)]

    def packed(module):
        def run():
            p = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            return pad_packed_sequence(module(p)[0], batch_first=True, total_length=t)[0]
        return run

    impls = {
        "nn.LSTM packed": packed(ref),
        "dynamic_rnn ragged": lambda: rnn.dynamic_rnn(stack, x, lengths)[0],
        "nn.LSTM padded full": lambda: ref(x)[0],
        "nn.LSTM bidir packed": packed(ref_bi),
        "bidirectional_dynamic_rnn": lambda: torch.cat(
            rnn.bidirectional_dynamic_rnn(fw, bw, x, lengths)[0], -1),
        "nn.LSTM 2-layer bidir packed": packed(ref_bi2),
        "stack_bidirectional_dynamic_rnn": lambda: rnn.stack_bidirectional_dynamic_rnn(
            fws, bws, x, sequence_length=lengths)[0],
    }
    runners = {n: _runner(fn, device, autocast) for n, fn in impls.items()}
    config = f"B={b} T={t} I={i} H={h} ragged" + (f" {autocast}" if autocast else "")
    rows = _rows(config, impls, runners, repeat, "nn.LSTM packed")
    # ratios against each row's own reference
    by_name = {r["implementation"]: r for r in rows}
    for name, base in (("bidirectional_dynamic_rnn", "nn.LSTM bidir packed"),
                       ("stack_bidirectional_dynamic_rnn", "nn.LSTM 2-layer bidir packed")):
        for col, ms in (("fwd ratio", "fwd ms"), ("fwd+bwd ratio", "fwd+bwd ms")):
            by_name[name][col] = f"{float(by_name[name][ms]) / float(by_name[base][ms]):.2f}"
        for col in ("fwd ratio", "fwd+bwd ratio"):
            by_name[base][col] = "1.00 (ref)"
    return rows


def full_length_rows(x, ref, stack, custom, hoisted) -> dict:
    """The full-length implementations (shared with ``rnn_memory.py``): name -> outputs."""
    return {
        "nn.LSTM": lambda: ref(x)[0],
        "dynamic_rnn fused": lambda: rnn.dynamic_rnn(stack, x)[0],
        "dynamic_rnn generic": lambda: rnn.dynamic_rnn(stack, x, fused=False)[0],
        "custom cell eager": lambda: rnn.dynamic_rnn(custom, x)[0],
        "custom cell, project_inputs": lambda: rnn.dynamic_rnn(hoisted, x)[0],
    }


def bench_config(b, t, i, h, device, repeat, with_compile, autocast=None):
    x = torch.randn(b, t, i, device=device)
    ref = nn.LSTM(i, h, num_layers=2, batch_first=True).to(device)
    stack = rnn.MultiRNNCell([rnn.BasicLSTMCell(h, input_size=i), rnn.BasicLSTMCell(h,
                              input_size=h)]).to(device)
    custom = rnn.MultiRNNCell([CustomLSTM(h), CustomLSTM(h)])
    hoisted = rnn.MultiRNNCell([HoistedCustomLSTM(h), HoistedCustomLSTM(h)])
    for c in (custom, hoisted):
        rnn.dynamic_rnn(c, x[:, :1].cpu())
        c.to(device)

    impls = full_length_rows(x, ref, stack, custom, hoisted)
    if device.type == "cuda":
        impls["custom cell, cuda_graph"] = lambda: rnn.dynamic_rnn(custom, x, cuda_graph=True)[0]
        impls["custom cell, project_inputs, cuda_graph"] = (
            lambda: rnn.dynamic_rnn(hoisted, x, cuda_graph=True)[0])
    if with_compile:
        impls["custom cell compiled"] = lambda: rnn.dynamic_rnn(custom, x, compile_step=True)[0]
        impls["custom cell, project_inputs, compiled"] = (
            lambda: rnn.dynamic_rnn(hoisted, x, compile_step=True)[0])
    if autocast is not None:  # user cells under autocast are not this table's subject
        impls = {k: v for k, v in impls.items() if k in ("nn.LSTM", "dynamic_rnn fused")}
    runners = {name: _runner(fn, device, autocast) for name, fn in impls.items()}
    config = f"B={b} T={t} I={i} H={h}" + (f" {autocast}" if autocast else "")
    rows = _rows(config, impls, runners, repeat, "nn.LSTM")
    base = {"fwd": float(rows[0]["fwd ms"]), "bwd": float(rows[0]["fwd+bwd ms"])}
    return rows, base


TF_SNIPPET = textwrap.dedent("""
    import json, os, sys, time, statistics
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np, tensorflow as tf
    v1 = tf.compat.v1; v1.disable_eager_execution()
    b, t, i, h, repeat = map(int, sys.argv[1:6])
    x = v1.constant(np.random.randn(b, t, i).astype(np.float32))
    cell = v1.nn.rnn_cell.MultiRNNCell([v1.nn.rnn_cell.BasicLSTMCell(h) for _ in range(2)])
    out, _ = v1.nn.dynamic_rnn(cell, x, dtype=tf.float32)
    loss = tf.reduce_sum(out)
    grads = v1.gradients(loss, v1.trainable_variables())
    res = {}
    with v1.Session() as s:
        s.run(v1.global_variables_initializer())
        for key, fetch in (("fwd", out), ("bwd", grads)):
            for _ in range(2): s.run(fetch)
            ts = []
            for _ in range(repeat):
                t0 = time.perf_counter(); s.run(fetch); ts.append(time.perf_counter() - t0)
            res[key] = statistics.median(ts) * 1e3
    print(json.dumps(res))
""")


def bench_tf(tf_python, b, t, i, h, repeat):
    proc = subprocess.run([tf_python, "-c", TF_SNIPPET, str(b), str(t), str(i), str(h),
                           str(repeat)], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--only", choices=["full", "ragged"], default=None,
                    help="run only the full-length or only the ragged table")
    ap.add_argument("--autocast", choices=["bf16", "fp16"], default=None,
                    help="run under torch.autocast with this dtype")
    ap.add_argument("--tf-python", default=os.environ.get("RNNKIT_TF_PYTHON"),
                    help="a Python with tensorflow-cpu==2.15.1 for the TF peer row")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    autocast = {"bf16": torch.bfloat16, "fp16": torch.float16, None: None}[args.autocast]
    torch.manual_seed(0)
    if args.quick:
        configs = [(4, 10, 16, 16)]
    elif device.type == "cuda":
        configs = [(64, 100, 512, 512), (256, 50, 1024, 1024)]
    else:
        configs = [(32, 100, 256, 256), (64, 100, 512, 512)]
    rows = []
    for b, t, i, h in configs:
        if args.only != "full":
            rows += bench_ragged(b, t, i, h, device, args.repeat, autocast)
        if args.only == "ragged":
            continue
        r, base = bench_config(b, t, i, h, device, args.repeat, not args.no_compile, autocast)
        rows += r
        if args.tf_python and device.type == "cpu":
            tfr = bench_tf(args.tf_python, b, t, i, h, args.repeat)
            rows.append({
                "config": f"B={b} T={t} I={i} H={h}", "implementation": "tf.compat.v1 dynamic_rnn",
                "fwd ms": f"{tfr['fwd']:.1f}", "fwd ratio": f"{tfr['fwd'] / base['fwd']:.2f}",
                "fwd+bwd ms": f"{tfr['bwd']:.1f}",
                "fwd+bwd ratio": f"{tfr['bwd'] / base['bwd']:.2f}",
            })
    print(f"device={device} torch={torch.__version__} threads={torch.get_num_threads()}")
    print(table(rows, ["config", "implementation", "fwd ms", "fwd ratio", "fwd+bwd ms",
                       "fwd+bwd ratio"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
