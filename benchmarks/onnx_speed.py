"""Decoding speed of the ONNX export (onnxruntime) against eager rnnkit, on CPU.

    python benchmarks/onnx_speed.py [--repeat 5] [--threads 2] [--max-len 40]

The model is the translation app's ``Seq2SeqAttention`` at its default size (embedding 128,
hidden 256, bidirectional GRU encoder, Luong-attention GRU decoder, 4,000-word vocabularies)
with random weights, in ``eval()`` mode; sources are random ids of 10 to 25 tokens.  Greedy
rows: ``BasicDecoder`` + ``GreedyEmbeddingHelper``; beam rows: ``BeamSearchDecoder`` width 5,
length penalty 0.6 (what ``rnnkit translate run`` decodes with).  A random model rarely emits
its end token, so most decodes run ``--max-len`` steps; tokens/s counts ``batch x steps run``
(beam: per batch entry, not per hypothesis).  One process: each round runs every row once
(interleaved, so load drifting on a shared machine touches all rows alike); the table shows
medians over ``--repeat`` rounds after one warm-up round.  Both runtimes use ``--threads``
threads.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import onnxruntime as ort
import torch

from rnnkit import export, seq2seq
from rnnkit.apps.translate import Seq2SeqAttention

VOCAB, EMB, HIDDEN, SOS, EOS = 4000, 128, 256, 1, 2


def build():
    torch.manual_seed(0)
    model = Seq2SeqAttention(VOCAB, VOCAB, EMB, HIDDEN, dropout=0.3).eval()

    def bridge(outputs, final, lengths):
        memory = torch.cat(outputs, -1)
        init = torch.tanh(model.bridge(torch.cat(final, -1)))
        model.attention.setup_memory(memory, lengths)
        return model.decoder_cell.zero_state(init.shape[0]).clone(cell_state=init)

    spec = export.Encoder(model.enc_fw, model.enc_bw, embedding=model.src_embedding,
                          bridge=bridge, modules=(model,))
    return model, spec


def decoder(model, state, batch, beam):
    start = torch.full((batch,), SOS)
    if beam is None:
        helper = seq2seq.GreedyEmbeddingHelper(model.tgt_embedding, start, EOS)
        return seq2seq.BasicDecoder(model.decoder_cell, helper, state, model.output_layer)
    return seq2seq.BeamSearchDecoder(model.decoder_cell, model.tgt_embedding, start, EOS,
                                     state, beam, output_layer=model.output_layer,
                                     length_penalty_weight=0.6)


def sources(batch, seed):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(10, 26, (batch,), generator=g)
    src = torch.randint(4, VOCAB, (batch, int(lengths.max())), generator=g)
    return src, lengths


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-len", type=int, default=40)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model, spec = build()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    rows = []
    for beam in (None, 5):
        with torch.no_grad():
            dec = decoder(model, model.encode(*sources(2, 0)), 2, beam)
        t0 = time.perf_counter()
        proto = export.export_seq2seq(spec, dec, maximum_iterations=args.max_len)
        print(f"export ({'greedy' if beam is None else f'beam {beam}'}): "
              f"{time.perf_counter() - t0:.1f} s, {len(proto.SerializeToString()) / 1e6:.1f} MB")
        sess = ort.InferenceSession(proto.SerializeToString(), opts,
                                    providers=["CPUExecutionProvider"])
        for batch in (1, 32):
            rows.append((beam, batch, sess, sources(batch, batch)))
    max_len = np.array(args.max_len, np.int64)

    def eager(beam, batch, src, lengths):
        with torch.no_grad():
            out, _, _ = seq2seq.dynamic_decode(decoder(model, model.encode(src, lengths),
                                                       batch, beam),
                                               maximum_iterations=args.max_len)
        ids = out.sample_id if beam is None else out.predicted_ids
        return ids.shape[1]

    def served(sess, src, lengths):
        out = sess.run(None, {"source": src.numpy(), "source_length": lengths.numpy(),
                              "maximum_iterations": max_len})
        return out[0].shape[1]

    times = {(b, n, k): [] for b, n, _, _ in rows for k in ("eager", "onnx")}
    steps = {}
    for r in range(args.repeat + 1):
        for beam, batch, sess, (src, lengths) in rows:
            for kind in ("eager", "onnx"):
                t0 = time.perf_counter()
                n = eager(beam, batch, src, lengths) if kind == "eager" \
                    else served(sess, src, lengths)
                dt = time.perf_counter() - t0
                if r:  # round 0 warms up
                    times[(beam, batch, kind)].append(dt)
                steps[(beam, batch, kind)] = n
    print("\n| decode | batch | steps | eager rnnkit tokens/s | onnxruntime tokens/s | "
          "speed-up |\n|---|---|---|---|---|---|")
    for beam, batch, _, _ in rows:
        e = statistics.median(times[(beam, batch, "eager")])
        o = statistics.median(times[(beam, batch, "onnx")])
        n = steps[(beam, batch, "onnx")]
        assert n == steps[(beam, batch, "eager")], "the two decodes ran different lengths"
        name = "greedy" if beam is None else f"beam {beam}"
        print(f"| {name} | {batch} | {n} | {batch * n / e:,.0f} | {batch * n / o:,.0f} | "
              f"{e / o:.2f}x |")


if __name__ == "__main__":
    main()
