"""Decoder and helper steps never synchronise with the host; "all finished" is read every
K steps with results identical to reading it every step."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn

from rnnkit import nest, rnn, seq2seq

HAS_CUDA = torch.cuda.is_available()
SYNCING = ["__bool__", "item", "tolist", "__int__", "__float__", "__index__", "cpu", "numpy",
           "nonzero"]


@contextlib.contextmanager
def count_host_reads():
    """Counts the Tensor methods that read a value on the host (a sync on a GPU)."""
    saved = {n: getattr(torch.Tensor, n) for n in SYNCING}
    calls: list[str] = []

    def wrap(name, fn):
        def counted(self, *args, **kwargs):
            calls.append(name)
            return fn(self, *args, **kwargs)
        return counted

    for name, fn in saved.items():
        setattr(torch.Tensor, name, wrap(name, fn))
    try:
        yield calls
    finally:
        for name, fn in saved.items():
            setattr(torch.Tensor, name, fn)


def _attention_cell(batch, device="cpu", units=8, vocab=7):
    torch.manual_seed(0)
    memory = torch.randn(batch, 5, 6, device=device)
    mech = seq2seq.BahdanauAttention(units, memory_depth=6).to(device)
    cell = seq2seq.AttentionWrapper(rnn.GRUCell(units, reset_after=True, input_size=4 + 6),
                                    mech, attention_layer_size=6,
                                    alignment_history=True).to(device)
    emb = nn.Embedding(vocab, 4).to(device)
    out = nn.Linear(6, vocab).to(device)
    lengths = torch.tensor([5, 3, 4, 2][:batch], device=device)
    return cell, mech, memory, lengths, emb, out


def _decoders(device="cpu"):
    """name -> a function making a fresh decoder (and the dynamic_decode keywords)."""
    cell, mech, memory, lengths, emb, out = _attention_cell(2, device)
    start = torch.tensor([0, 1], device=device)
    inputs = torch.randn(2, 6, 4, device=device)

    def basic(helper):
        def make():
            mech.setup_memory(memory, lengths)
            return seq2seq.BasicDecoder(cell, helper(), cell.zero_state(2), out), {}
        return make

    def beam(**kw):
        def make():
            mech.setup_memory(seq2seq.tile_batch(memory, 3), seq2seq.tile_batch(lengths, 3))
            return seq2seq.BeamSearchDecoder(cell, emb, start, 1, cell.zero_state(6), 3,
                                             output_layer=out, **kw), {}
        return make

    return {
        "training": basic(lambda: seq2seq.TrainingHelper(inputs, torch.tensor([6, 3],
                                                                              device=device))),
        "greedy": basic(lambda: seq2seq.GreedyEmbeddingHelper(emb, start, 1)),
        "sample": basic(lambda: seq2seq.SampleEmbeddingHelper(emb, start, 1, seed=3)),
        "scheduled_embedding": basic(lambda: seq2seq.ScheduledEmbeddingTrainingHelper(
            inputs, torch.tensor([6, 4], device=device), emb, 0.5, seed=1)),
        "beam": beam(length_penalty_weight=0.6),
        "beam_coverage": beam(coverage_penalty_weight=0.3),
        "beam_constraints": beam(min_length=2, no_repeat_ngram_size=2, length_penalty_weight=1.0,
                                 length_normalization="average"),
    }


@pytest.mark.parametrize("name", sorted(_decoders()))
def test_steps_never_read_the_host(name):
    decoder, _ = _decoders()[name]()
    with torch.no_grad():
        _, inputs, state = decoder.initialize()
        _, state, inputs, _ = decoder.step(0, inputs, state)  # first step may check shapes
        with count_host_reads() as calls:
            for t in range(1, 4):
                _, state, inputs, _ = decoder.step(t, inputs, state)
    assert calls == []


def _decode(name, every, **kw):
    decoder, extra = _decoders()[name]()
    torch.manual_seed(7)
    with torch.no_grad():
        return seq2seq.dynamic_decode(decoder, check_finished_every=every,
                                      maximum_iterations=kw.pop("maximum_iterations", 12),
                                      **kw)


def _assert_same(a, b):
    def same(x, y):
        if isinstance(x, torch.Tensor):
            assert x.shape == y.shape and x.dtype == y.dtype
            if x.is_floating_point():
                torch.testing.assert_close(x, y, rtol=0, atol=0)
            else:
                assert torch.equal(x, y)
        elif hasattr(x, "stack"):  # AlignmentHistory
            torch.testing.assert_close(x.stack(), y.stack(), rtol=0, atol=0)

    for x, y in zip(nest.flatten(a), nest.flatten(b), strict=True):
        same(x, y)


@pytest.mark.parametrize("name", sorted(_decoders()))
@pytest.mark.parametrize("every", [3, 8])
def test_checking_every_k_steps_gives_identical_decodes(name, every):
    want = _decode(name, 1, impute_finished=name in ("training", "greedy"))
    got = _decode(name, every, impute_finished=name in ("training", "greedy"))
    _assert_same(got, want)


def test_every_k_steps_stops_where_every_step_does():
    for limit in (1, 2, 5):
        _assert_same(_decode("greedy", 4, maximum_iterations=limit),
                     _decode("greedy", 1, maximum_iterations=limit))
    outputs, _, lengths = _decode("training", 5)
    assert outputs.rnn_output.shape[1] == 6 and lengths.tolist() == [6, 3]
    with pytest.raises(ValueError, match="check_finished_every must be >= 1"):
        _decode("greedy", 0)


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")
@pytest.mark.parametrize("name", ["training", "greedy", "sample", "beam", "beam_coverage",
                                  "beam_constraints"])
def test_cuda_steps_never_synchronise(name):
    decoder, _ = _decoders("cuda")[name]()
    with torch.no_grad():
        _, inputs, state = decoder.initialize()
        _, state, inputs, _ = decoder.step(0, inputs, state)
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            for t in range(1, 4):
                _, state, inputs, _ = decoder.step(t, inputs, state)
        finally:
            torch.cuda.set_sync_debug_mode("default")
