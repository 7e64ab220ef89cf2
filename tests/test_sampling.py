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


def test_inverse_cdf_draws_match_the_softmax():
    """Frequencies of 40000 draws against closed-form distributions (within 5 standard
    errors), and the draw's definition at chosen uniforms."""
    probs = torch.tensor([0.5, 0.25, 0.125, 0.0625, 0.0625])
    logits = probs.log().expand(40000, 5)
    g = torch.Generator().manual_seed(0)
    cases = [({}, probs),
             ({"temperature": 2.0}, probs.sqrt() / probs.sqrt().sum()),  # p^(1/2), normalised
             ({"top_k": 2}, torch.tensor([2 / 3, 1 / 3, 0, 0, 0])),
             ({"top_p": 0.8}, torch.tensor([4 / 7, 2 / 7, 1 / 7, 0, 0]))]
    for kw, want in cases:
        ids = seq2seq.sample_categorical(logits, g, **kw)
        freq = torch.bincount(ids, minlength=5).double() / len(ids)
        bound = 5 * (want.double() * (1 - want.double()) / len(ids)).sqrt()
        assert ((freq - want.double()).abs() <= bound).all(), (kw, freq, want)
        assert (freq[want == 0] == 0).all(), kw  # filtered ids never drawn
    # the inverse CDF: the first id whose cumulative probability exceeds u
    u = torch.tensor([0.0, 0.4999, 0.5, 0.74, 0.76, 0.9, 0.95, 0.999999], dtype=torch.float64)
    ids = seq2seq.sample_categorical(probs.log().expand(8, 5), uniform=u)
    assert ids.tolist() == [0, 0, 1, 1, 2, 3, 4, 4]
    zero = torch.tensor([[0.0, float("-inf"), 1.0, float("-inf")]]).expand(3, 4)
    ids = seq2seq.sample_categorical(zero, uniform=torch.tensor([0.268, 0.27, 0.9999999]))
    assert ids.tolist() == [0, 2, 2]  # p(0) = 1/(1+e) = 0.2689; id 1 (p 0) never drawn
    with pytest.raises(ValueError, match=r"uniform must have shape \(3,\).*received \(2,\)"):
        seq2seq.sample_categorical(zero, uniform=torch.tensor([0.1, 0.2]))


def test_tensor_options_draw_what_number_options_draw():
    """0-dim tensor temperature / top_k / top_p (what an exported graph takes as inputs)
    give the ids the Python numbers give; top_k 0 and top_p 1 keep every token, temperature
    0 is the argmax."""
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(500, 9, generator=g) * 3
    u = torch.rand(500, generator=g, dtype=torch.float64)
    t = lambda x, dtype=torch.float32: torch.tensor(x, dtype=dtype)  # noqa: E731
    for temp, k, p in [(1.0, None, None), (0.5, 3, None), (1.7, None, 0.7), (0.9, 4, 0.85),
                       (1.0, 9, 1.0), (0.2, 1, 0.3)]:
        want = seq2seq.sample_categorical(logits, None, temp, k, p, uniform=u)
        got = seq2seq.sample_categorical(logits, None, t(temp), t(k or 0, torch.long),
                                         t(1.0 if p is None else p), uniform=u)
        assert torch.equal(got, want), (temp, k, p)
    greedy = seq2seq.sample_categorical(logits, None, t(0.0), t(0, torch.long), t(1.0),
                                        uniform=u)
    assert torch.equal(greedy, logits.argmax(-1))
    assert torch.equal(seq2seq.sample_categorical(logits, None, 0.0), logits.argmax(-1))
    assert support(filter_logits(logits[0], top_k=t(0, torch.long))) == list(range(9))
    assert support(filter_logits(logits[0], top_k=t(3, torch.long))) == \
        support(filter_logits(logits[0], top_k=3))


def test_sample_helper_reads_given_uniforms():
    torch.manual_seed(0)
    cell = rnn.GRUCell(6, input_size=3)
    emb, out = torch.randn(8, 3), nn.Linear(6, 8)

    def decode(steps=5, **kw):
        helper = seq2seq.SampleEmbeddingHelper(emb, [0, 1], None, **kw)
        res, _, _ = seq2seq.dynamic_decode(seq2seq.BasicDecoder(cell, helper,
                                                                cell.zero_state(2), out),
                                           maximum_iterations=steps)
        return res.sample_id

    low, high = torch.zeros(5, 2, dtype=torch.float64), torch.full((5, 2), 1 - 2**-53,
                                                                  dtype=torch.float64)
    with torch.no_grad():  # u = 0: the first id of nonzero probability, every step
        assert (decode(uniforms=low) == 0).all()
        assert (decode(uniforms=high) == 7).all()
        u = torch.rand(5, 2, dtype=torch.float64)
        assert torch.equal(decode(uniforms=u), decode(uniforms=u.numpy()))
        with pytest.raises(ValueError, match="uniforms holds 5 steps' draws; step 5"):
            decode(6, uniforms=u)
    with pytest.raises(ValueError, match="give seed or uniforms, not both"):
        decode(seed=1, uniforms=u)
    with pytest.raises(ValueError, match=r"uniforms must be a floating \[time, batch\]"):
        decode(uniforms=u[:, :1])
    with pytest.raises(ValueError, match=r"uniforms must lie in \[0, 1\)"):
        decode(uniforms=u + 1)
