"""Decoding speed: greedy and beam search tokens/s, rnnkit vs tensorflow-addons 0.23.

    python benchmarks/decode_speed.py [--quick] [--device cuda] [--tf-python PY] [--graphs]

Model (same sizes on both sides): embedding 256, one LSTM layer of 512 units, vocabulary
1000, batch 32, 50 decode steps (the end token's logit is pushed to -1e9 so every run decodes
exactly 50 steps).  tokens/s counts ``batch * steps`` (one token per entry per step, whatever
the beam width).  The tfa side runs the decoder inside ``tf.function`` (graph mode), the
rnnkit side eagerly under ``torch.no_grad``.

``--graphs`` (CUDA): eager against ``dynamic_decode(cuda_graph=True)`` (replayed CUDA
graphs) for greedy, beam 5 and beam 10 at batch 32 and 256, interleaved in one process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap

import torch
from _timing import interleaved_medians, median_time, table
from torch import nn

from rnnkit import rnn, seq2seq

VOCAB, EMB, UNITS, BATCH, STEPS = 1000, 256, 512, 32, 50


def rnnkit_rates(device, repeat, batch=BATCH, steps=STEPS, widths=(5, 10), check_every=None,
                 options=False, graph_rows=False):
    torch.manual_seed(0)
    cell = rnn.BasicLSTMCell(UNITS, input_size=EMB).to(device)
    emb = nn.Embedding(VOCAB, EMB).to(device)
    out = nn.Linear(UNITS, VOCAB).to(device)
    end = VOCAB - 1
    with torch.no_grad():
        out.bias[end] = -1e9
    start = torch.zeros(batch, dtype=torch.long, device=device)
    init = cell.zero_state(batch, device=device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def greedy(graph=False):
        def run():
            with torch.no_grad():
                helper = seq2seq.GreedyEmbeddingHelper(emb, start, end)
                seq2seq.dynamic_decode(seq2seq.BasicDecoder(cell, helper, init, out),
                                       maximum_iterations=steps,
                                       check_finished_every=check_every, cuda_graph=graph)
            sync()
        return run

    def beam(width, graph=False, **kw):
        def run():
            with torch.no_grad():
                dec = seq2seq.BeamSearchDecoder(cell, emb, start, end,
                                                seq2seq.tile_batch(init, width), width, out,
                                                **kw)
                seq2seq.dynamic_decode(dec, maximum_iterations=steps,
                                       check_finished_every=check_every, cuda_graph=graph)
            sync()
        return run

    if graph_rows:  # eager and replayed graphs, interleaved
        fns = {"greedy": greedy(), "greedy graph": greedy(True)}
        for w in widths:
            fns[f"beam {w}"], fns[f"beam {w} graph"] = beam(w), beam(w, True)
        times = interleaved_medians(fns, repeat)
        return {name: batch * steps / t for name, t in times.items()}

    def sample(**kw):
        def run():
            with torch.no_grad():
                helper = seq2seq.SampleEmbeddingHelper(emb, start, end, seed=0, **kw)
                seq2seq.dynamic_decode(seq2seq.BasicDecoder(cell, helper, init, out),
                                       maximum_iterations=steps,
                                       check_finished_every=check_every)
            sync()
        return run

    rates = {"greedy": batch * steps / median_time(greedy(), repeat)}
    for w in widths:
        rates[f"beam {w}"] = batch * steps / median_time(beam(w), repeat)
    if options:  # the cost of each decoding option (issue: decoding controls)
        w = widths[0]
        for name, fn in ((f"beam {w} min_length=10", beam(w, min_length=10)),
                         (f"beam {w} no_repeat_ngram_size=3", beam(w, no_repeat_ngram_size=3)),
                         (f"beam {w} length_normalization=average", beam(
                             w, length_penalty_weight=1.0, length_normalization="average")),
                         ("sample", sample()), ("sample top_k=10", sample(top_k=10)),
                         ("sample top_p=0.9", sample(top_p=0.9))):
            rates[name] = batch * steps / median_time(fn, repeat)
    return rates


TF_SNIPPET = textwrap.dedent("""
    import json, os, sys, time, statistics
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np, tensorflow as tf, tensorflow_addons as tfa
    vocab, emb_dim, units, batch, steps, repeat = map(int, sys.argv[1:7])
    widths = [int(w) for w in sys.argv[7].split(",")]
    cell = tf.keras.layers.LSTMCell(units)
    dense = tf.keras.layers.Dense(vocab)
    emb = tf.Variable(np.random.randn(vocab, emb_dim).astype(np.float32))
    cell.build((None, emb_dim)); dense.build((None, units))
    b = dense.bias.numpy(); b[vocab - 1] = -1e9; dense.bias.assign(b)
    start = tf.zeros([batch], tf.int32); end = vocab - 1
    init = cell.get_initial_state(batch_size=batch, dtype=tf.float32)
    sampler = tfa.seq2seq.GreedyEmbeddingSampler()
    greedy_dec = tfa.seq2seq.BasicDecoder(cell, sampler, output_layer=dense,
                                          maximum_iterations=steps)
    @tf.function
    def greedy():
        return greedy_dec(emb, start_tokens=start, end_token=end, initial_state=init)[0].sample_id
    def make_beam(w):
        dec = tfa.seq2seq.BeamSearchDecoder(cell, w, output_layer=dense,
                                            maximum_iterations=steps)
        tiled = tfa.seq2seq.tile_batch(init, w)
        @tf.function
        def run():
            return dec(emb, start_tokens=start, end_token=end,
                       initial_state=tiled)[0].predicted_ids
        return run
    def rate(fn):
        for _ in range(2): fn().numpy()
        ts = []
        for _ in range(repeat):
            t0 = time.perf_counter(); fn().numpy(); ts.append(time.perf_counter() - t0)
        return batch * steps / statistics.median(ts)
    res = {"greedy": rate(greedy)}
    for w in widths:
        res[f"beam {w}"] = rate(make_beam(w))
    print(json.dumps(res))
""")


def tfa_rates(tf_python, repeat, batch=BATCH, steps=STEPS, widths=(5, 10)):
    args = [tf_python, "-c", TF_SNIPPET, str(VOCAB), str(EMB), str(UNITS), str(batch),
            str(steps), str(repeat), ",".join(str(w) for w in widths)]
    proc = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def graph_table(device, repeat, kw):
    """Rows: mode, batch, eager tokens/s, graph tokens/s, graph / eager."""
    rows = []
    for batch in ((kw["batch"],) if kw else (32, 256)):
        rates = rnnkit_rates(device, repeat, graph_rows=True, **dict(kw, batch=batch))
        for mode in [m for m in rates if not m.endswith(" graph")]:
            eager, graph = rates[mode], rates[f"{mode} graph"]
            rows.append({"mode": mode, "batch": batch, "eager tokens/s": f"{eager:,.0f}",
                         "graph tokens/s": f"{graph:,.0f}",
                         "graph / eager": f"{graph / eager:.2f}x"})
    print(f"device={device} torch={torch.__version__} threads={torch.get_num_threads()} "
          f"steps={kw.get('steps', STEPS)} (cuda_graph=True on CPU runs eagerly: rows ~1x)")
    print(table(rows, ["mode", "batch", "eager tokens/s", "graph tokens/s", "graph / eager"]))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--tf-python", default=os.environ.get("RNNKIT_TF_PYTHON"))
    ap.add_argument("--graphs", action="store_true",
                    help="eager vs cuda_graph=True rows at batch 32 and 256")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    kw = dict(batch=4, steps=5, widths=(2,)) if args.quick else {}
    if args.graphs:
        return graph_table(device, args.repeat, kw)
    ours = rnnkit_rates(device, args.repeat, options=True, **kw)
    if device.type == "cuda":  # the cost of reading "all finished" at every step
        every_step = rnnkit_rates(device, args.repeat, check_every=1, **kw)
        ours.update({f"{m} (check every step)": r for m, r in every_step.items()})
    theirs = tfa_rates(args.tf_python, args.repeat, **kw) if args.tf_python else {}
    rows = []
    for mode, rate in ours.items():
        row = {"mode": mode, "rnnkit tokens/s": f"{rate:,.0f}"}
        if mode in theirs:
            row["tfa tokens/s"] = f"{theirs[mode]:,.0f}"
            row["rnnkit / tfa"] = f"{rate / theirs[mode]:.2f}x"
        rows.append(row)
    print(f"device={device} torch={torch.__version__} threads={torch.get_num_threads()} "
          f"batch={kw.get('batch', BATCH)} steps={kw.get('steps', STEPS)}")
    print(table(rows, ["mode", "rnnkit tokens/s", "tfa tokens/s", "rnnkit / tfa"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
