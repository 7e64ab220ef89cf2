"""Top-k / top-p (nucleus) sampling: exactly the stated support, reproducible with a seed."""

import math

import pytest
import torch
from torch import nn

from rnnkit import rnn, seq2seq
from rnnkit.seq2seq.helper import filter_logits


def support(logits):
    return torch.isfinite(logits).nonzero().flatten().tolist()


def test_top_k_and_top_p_keep_exactly_the_stated_support():
    logits = torch.tensor([2.0, 1.0, 0.5, 0.5, -1.0])
    assert support(filter_logits(logits, top_k=2)) == [0, 1]
    assert support(filter_logits(logits, top_k=3)) == [0, 1, 2, 3]  # a tie with the 3rd
    assert support(filter_logits(logits, top_k=9)) == [0, 1, 2, 3, 4]
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    lp = probs.log()[torch.tensor([2, 0, 3, 1])]  # shuffled: order must not matter
    assert support(filter_logits(lp, top_p=0.8)) == [1, 3]  # 0.5 + 0.3 reach 0.8
    assert support(filter_logits(lp, top_p=0.81)) == [0, 1, 3]
    assert support(filter_logits(lp, top_p=0.01)) == [1]  # the most likely always stays
    assert support(filter_logits(lp, top_p=1.0)) == [0, 1, 2, 3]
    assert support(filter_logits(lp, top_k=3, top_p=0.9)) == [0, 1, 3]
    batch = torch.stack([logits, -logits])
    assert [support(r) for r in filter_logits(batch, top_k=1)] == [[0], [4]]


def _decode(**kw):
    torch.manual_seed(0)
    cell = rnn.GRUCell(6, input_size=3)
    emb, out = torch.randn(8, 3), nn.Linear(6, 8)
    helper = seq2seq.SampleEmbeddingHelper(emb, [0] * 64, 7, seed=5, **kw)
    res, _, _ = seq2seq.dynamic_decode(seq2seq.BasicDecoder(cell, helper, cell.zero_state(64),
                                                            out), maximum_iterations=1)
    with torch.no_grad():
        logits = out(cell(emb[torch.zeros(64, dtype=torch.long)], cell.zero_state(64))[0])
    return res.sample_id[:, 0], logits[0]


def test_sample_helper_draws_only_from_the_filtered_support():
    ids, logits = _decode(top_k=2)
    allowed = set(torch.topk(logits, 2).indices.tolist())
    assert set(ids.tolist()) == allowed  # 64 draws: both appear, nothing else
    greedy, logits = _decode(top_k=1)
    assert set(greedy.tolist()) == {int(logits.argmax())}
    nucleus, logits = _decode(top_p=0.5)
    probs = torch.softmax(logits, -1)
    order = torch.argsort(probs, descending=True)
    mass, keep = 0.0, set()
    for i in order.tolist():
        keep.add(i)
        mass += float(probs[i])
        if mass >= 0.5:
            break
    assert set(nucleus.tolist()) <= keep and math.isclose(sum(float(probs[i]) for i in keep),
                                                           mass)
    again, _ = _decode(top_p=0.5)
    assert torch.equal(again, nucleus)  # the seed makes it reproducible


@pytest.mark.parametrize("kw, match", [({"top_k": 0}, "top_k must be a positive int"),
                                       ({"top_p": 0.0}, r"top_p must be in \(0, 1\]"),
                                       ({"top_p": 1.5}, r"top_p must be in \(0, 1\]")])
def test_bad_filters_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        seq2seq.SampleEmbeddingHelper(torch.randn(4, 2), [0], 3, **kw)


def test_end_token_none_never_finishes():
    """Free-running generation: end_token=None runs to maximum_iterations."""
    torch.manual_seed(0)
    cell = rnn.GRUCell(6, input_size=3)
    emb, out = torch.nn.Embedding(5, 3), torch.nn.Linear(6, 5)
    for helper in (seq2seq.GreedyEmbeddingHelper(emb, torch.tensor([0, 1]), None),
                   seq2seq.SampleEmbeddingHelper(emb, torch.tensor([0, 1]), None, seed=2)):
        outputs, _, lengths = seq2seq.dynamic_decode(
            seq2seq.BasicDecoder(cell, helper, cell.zero_state(2), out), maximum_iterations=9)
        assert outputs.sample_id.shape == (2, 9) and lengths.tolist() == [9, 9]
