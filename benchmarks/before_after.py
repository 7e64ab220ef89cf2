"""This checkout's speed against an earlier revision's, in one process, interleaved.

    python benchmarks/before_after.py --before a86bfd8 [--repeat 9] [--quick]

The earlier revision is checked out into a temporary git worktree and imported beside this
checkout's rnnkit (each under its own module objects), so both run on the same machine
state, round by round, with ``nn.LSTM`` as the common reference.  Rows (CPU, float32,
forward+backward of ``outputs.sum()`` unless marked ``fwd``):

* 2-layer LSTM stack, full length and ragged (``dynamic_rnn``);
* one bidirectional layer, ragged (``bidirectional_dynamic_rnn``) against ``nn.LSTM``
  packed and padded back;
* a user-written LSTM cell on the step loop;
* greedy and beam-4 decoding of an attention decoder (``fwd``).

Printed: medians in ms and each "after / before" ratio; the reference rows show the ratio
of the two ``nn.LSTM`` measurements of the same round set (the noise floor).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import pathlib
import subprocess
import sys
import tempfile

import torch
from _timing import interleaved_medians, table
from torch import nn

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _import_rnnkit(path: pathlib.Path):
    """rnnkit from ``path``, as module objects of their own (the previous ones unlisted)."""
    for name in [n for n in sys.modules if n == "rnnkit" or n.startswith("rnnkit.")]:
        del sys.modules[name]
    sys.path.insert(0, str(path))
    try:
        pkg = importlib.import_module("rnnkit")
        importlib.import_module("rnnkit.rnn")
        importlib.import_module("rnnkit.seq2seq")
    finally:
        sys.path.remove(str(path))
    return pkg


@contextlib.contextmanager
def _worktree(rev: str):
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach",
                        str(path), rev], check=True)
        try:
            yield path
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(path)], check=False)


def _cases(rk, sizes: dict) -> dict:
    """name -> zero-argument callable, for one rnnkit."""
    rnn, seq2seq = rk.rnn, rk.seq2seq
    b, t, d, h = sizes["batch"], sizes["time"], sizes["depth"], sizes["units"]
    torch.manual_seed(0)
    x = torch.randn(b, t, d, requires_grad=True)
    lengths = torch.randint(t // 4, t + 1, (b,))
    lengths[0] = t
    stack = rnn.MultiRNNCell([rnn.BasicLSTMCell(h), rnn.BasicLSTMCell(h)])
    fw, bw = rnn.BasicLSTMCell(h), rnn.BasicLSTMCell(h)
    rnn.dynamic_rnn(stack, x)
    rnn.bidirectional_dynamic_rnn(fw, bw, x, lengths, dtype=torch.float32)

    class UserLSTM(rnn.RNNCell):
        def __init__(self, n):
            super().__init__()
            self.n = n

        @property
        def state_size(self):
            return rnn.LSTMStateTuple(self.n, self.n)

        @property
        def output_size(self):
            return self.n

        def build(self, shape):
            self.kernel = self.add_variable("kernel", [shape[-1] + self.n, 4 * self.n])
            self.bias = self.add_variable("bias", [4 * self.n], initializer=0.0)

        def call(self, inputs, state):
            c, hh = state
            z = torch.cat([inputs, hh], 1) @ self.kernel + self.bias
            i, j, f, o = z.chunk(4, 1)
            c = torch.sigmoid(f + 1) * c + torch.sigmoid(i) * torch.tanh(j)
            hh = torch.sigmoid(o) * torch.tanh(c)
            return hh, rnn.LSTMStateTuple(c, hh)

    user = UserLSTM(h)
    rnn.dynamic_rnn(user, x)
    vocab, emb = 50, torch.randn(50, d)
    memory = torch.randn(b, t, h)
    mech = seq2seq.LuongAttention(h, memory, lengths)
    cell = seq2seq.AttentionWrapper(rnn.LSTMCell(h), mech, attention_layer_size=h)
    out = nn.Linear(h, vocab)
    start = torch.zeros(b, dtype=torch.long)

    def train(fn):
        def run():
            outputs = fn()
            outputs.sum().backward()
        return run

    def greedy():
        with torch.no_grad():
            helper = seq2seq.GreedyEmbeddingHelper(emb, start, vocab - 1)
            dec = seq2seq.BasicDecoder(cell, helper, cell.zero_state(b), out)
            seq2seq.dynamic_decode(dec, maximum_iterations=sizes["steps"])

    def beam():
        with torch.no_grad():
            mech.setup_memory(seq2seq.tile_batch(memory, 4), seq2seq.tile_batch(lengths, 4))
            try:
                dec = seq2seq.BeamSearchDecoder(cell, emb, start, vocab - 1,
                                                cell.zero_state(4 * b), 4, out)
                seq2seq.dynamic_decode(dec, maximum_iterations=sizes["steps"])
            finally:
                mech.setup_memory(memory, lengths)

    return {
        "lstm stack full": train(lambda: rnn.dynamic_rnn(stack, x)[0]),
        "lstm stack ragged": train(lambda: rnn.dynamic_rnn(stack, x, lengths)[0]),
        "bidirectional ragged": train(lambda: torch.cat(rnn.bidirectional_dynamic_rnn(
            fw, bw, x, lengths, dtype=torch.float32)[0], -1)),
        "user cell loop": train(lambda: rnn.dynamic_rnn(user, x)[0]),
        "greedy attention (fwd)": greedy,
        "beam 4 attention (fwd)": beam,
    }


def _references(sizes: dict) -> dict:
    b, t, d, h = sizes["batch"], sizes["time"], sizes["depth"], sizes["units"]
    torch.manual_seed(0)
    x = torch.randn(b, t, d, requires_grad=True)
    lengths = torch.randint(t // 4, t + 1, (b,))
    lengths[0] = t
    bi = nn.LSTM(d, h, batch_first=True, bidirectional=True)

    def packed():
        p = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True,
                                              enforce_sorted=False)
        y, _ = nn.utils.rnn.pad_packed_sequence(bi(p)[0], batch_first=True, total_length=t)
        y.sum().backward()

    return {"nn.LSTM bidir packed": packed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="git revision to compare against")
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    sizes = ({"batch": 8, "time": 20, "depth": 16, "units": 32, "steps": 10} if args.quick
             else {"batch": 32, "time": 100, "depth": 64, "units": 128, "steps": 30})
    with _worktree(args.before) as old_path:
        before = _cases(_import_rnnkit(old_path), sizes)
        after = _cases(_import_rnnkit(ROOT), sizes)
        refs = _references(sizes)
        fns = {**{f"before {k}": v for k, v in before.items()},
               **{f"after {k}": v for k, v in after.items()},
               "ref A": refs["nn.LSTM bidir packed"], "ref B": refs["nn.LSTM bidir packed"]}
        times = interleaved_medians(fns, args.repeat)
    rows = [{"case": k, "before ms": f"{1e3 * times[f'before {k}']:.1f}",
             "after ms": f"{1e3 * times[f'after {k}']:.1f}",
             "after / before": f"{times[f'after {k}'] / times[f'before {k}']:.2f}"}
            for k in before]
    ref = times["ref A"]
    rows.append({"case": "nn.LSTM bidir packed (noise floor: A/B)",
                 "before ms": f"{1e3 * ref:.1f}", "after ms": f"{1e3 * times['ref B']:.1f}",
                 "after / before": f"{times['ref B'] / ref:.2f}"})
    rows.append({"case": "bidirectional ragged / nn.LSTM bidir packed",
                 "before ms": f"{times['before bidirectional ragged'] / ref:.2f}x",
                 "after ms": f"{times['after bidirectional ragged'] / ref:.2f}x"})
    print(f"sizes {sizes}, {torch.get_num_threads()} threads, repeat {args.repeat}")
    print(table(rows, ["case", "before ms", "after ms", "after / before"]))


if __name__ == "__main__":
    main()
