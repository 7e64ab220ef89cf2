"""dynamic_rnn speed against PyTorch's nn.LSTM (and, optionally, TF 2.15's tf.compat.v1).

    python benchmarks/rnn_speed.py [--quick] [--device cuda] [--tf-python /path/to/tf/python]

Rows (2-layer LSTM stacks, batch-major inputs):

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


def bench_config(b, t, i, h, device, repeat, with_compile):
    x = torch.randn(b, t, i, device=device)
    ref = nn.LSTM(i, h, num_layers=2, batch_first=True).to(device)
    stack = rnn.MultiRNNCell([rnn.BasicLSTMCell(h, input_size=i), rnn.BasicLSTMCell(h,
                              input_size=h)]).to(device)
    custom = rnn.MultiRNNCell([CustomLSTM(h), CustomLSTM(h)])
    hoisted = rnn.MultiRNNCell([HoistedCustomLSTM(h), HoistedCustomLSTM(h)])
    for c in (custom, hoisted):
        rnn.dynamic_rnn(c, x[:, :1].cpu())
        c.to(device)

    def runner(fn):
        def fwd():
            with torch.no_grad():
                fn()
            sync(device)

        def fwd_bwd():
            fn().sum().backward()
            sync(device)

        return fwd, fwd_bwd

    impls = {
        "nn.LSTM": lambda: ref(x)[0],
        "dynamic_rnn fused": lambda: rnn.dynamic_rnn(stack, x)[0],
        "dynamic_rnn generic": lambda: rnn.dynamic_rnn(stack, x, fused=False)[0],
        "custom cell eager": lambda: rnn.dynamic_rnn(custom, x)[0],
        "custom cell, project_inputs": lambda: rnn.dynamic_rnn(hoisted, x)[0],
    }
    if with_compile:
        impls["custom cell compiled"] = lambda: rnn.dynamic_rnn(custom, x, compile_step=True)[0]
        impls["custom cell, project_inputs, compiled"] = (
            lambda: rnn.dynamic_rnn(hoisted, x, compile_step=True)[0])
    runners = {name: runner(fn) for name, fn in impls.items()}
    fwd_ms = interleaved_medians({n: r[0] for n, r in runners.items()}, repeat)
    bwd_ms = interleaved_medians({n: r[1] for n, r in runners.items()}, repeat)
    base = {"fwd": fwd_ms["nn.LSTM"] * 1e3, "bwd": bwd_ms["nn.LSTM"] * 1e3}
    rows = []
    for name in impls:
        tf_, tb = fwd_ms[name] * 1e3, bwd_ms[name] * 1e3
        rows.append({
            "config": f"B={b} T={t} I={i} H={h}", "implementation": name,
            "fwd ms": f"{tf_:.1f}", "fwd ratio": f"{tf_ / base['fwd']:.2f}",
            "fwd+bwd ms": f"{tb:.1f}", "fwd+bwd ratio": f"{tb / base['bwd']:.2f}",
        })
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
    ap.add_argument("--tf-python", default=os.environ.get("RNNKIT_TF_PYTHON"),
                    help="a Python with tensorflow-cpu==2.15.1 for the TF peer row")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    configs = [(4, 10, 16, 16)] if args.quick else [(32, 100, 256, 256), (64, 100, 512, 512)]
    rows = []
    for b, t, i, h in configs:
        r, base = bench_config(b, t, i, h, device, args.repeat, not args.no_compile)
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
