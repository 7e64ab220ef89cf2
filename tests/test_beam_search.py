"""BeamSearchDecoder, gather_tree, tile_batch: tfa goldens and exhaustive checks."""

import itertools
import math

import numpy as np
import pytest
import torch
from conftest import load_fixture, tf_vars
from torch import nn

from rnnkit import compat, rnn, seq2seq


@pytest.mark.parametrize("name", ["w3_lp0", "w5_lp1", "w1_lp0"])
def test_beam_search_matches_tfa(name):
    fx = load_fixture(f"beam_{name}.npz")
    beam, end, max_iter = (int(v) for v in fx["meta"])
    cell = rnn.GRUCell(8, reset_after=True)
    dense = nn.Linear(8, 7)
    compat.load_tf_variables({"gru_cell": cell, "dense": dense},
                             {k: v for k, v in tf_vars(fx).items() if k != "embedding"})
    emb = torch.from_numpy(fx["var:embedding"])
    init = seq2seq.tile_batch(torch.from_numpy(fx["init"]), beam)
    dec = seq2seq.BeamSearchDecoder(cell, emb, torch.from_numpy(fx["start"]).long(), end, init,
                                    beam, output_layer=dense,
                                    length_penalty_weight=float(fx["length_penalty"]))
    out, state, lengths = seq2seq.dynamic_decode(dec, maximum_iterations=max_iter)
    np.testing.assert_array_equal(out.predicted_ids.numpy(), fx["predicted_ids"])
    np.testing.assert_array_equal(out.beam_search_decoder_output.parent_ids.numpy(),
                                  fx["parent_ids"])
    np.testing.assert_allclose(out.beam_search_decoder_output.scores.detach().numpy(),
                               fx["scores"], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(state.lengths.numpy(), fx["lengths"])
    np.testing.assert_allclose(state.log_probs.detach().numpy(), fx["log_probs"], rtol=1e-4,
                               atol=1e-4)
    np.testing.assert_array_equal(lengths.numpy(), fx["seq_lengths"])


def test_gather_tree_matches_tfa():
    fx = load_fixture("gather_tree.npz")
    got = seq2seq.gather_tree(torch.from_numpy(fx["step_ids"]).long(),
                              torch.from_numpy(fx["parent_ids"]).long(),
                              torch.from_numpy(fx["max_len"]), end_token=4)
    np.testing.assert_array_equal(got.numpy(), fx["out"])


def test_gather_tree_ignores_parents_past_each_length():
    # TF's documented case: the step past max_sequence_lengths holds -1 (TensorArray
    # padding); it is never followed, and the result there is end_token
    ids = torch.tensor([[[1, 2, 3]], [[4, 5, 6]], [[7, 8, 9]], [[-1, -1, -1]]])
    parents = torch.tensor([[[0, 0, 0]], [[0, 1, 1]], [[2, 1, 2]], [[-1, -1, -1]]])
    got = seq2seq.gather_tree(ids, parents, torch.tensor([3]), 10)
    assert got[:, 0].tolist() == [[2, 2, 2], [6, 5, 6], [7, 8, 9], [10, 10, 10]]
    # lengths past max_time are cut at max_time, as TF does
    got = seq2seq.gather_tree(ids[:3], parents[:3], torch.tensor([7]), 10)
    assert got[:, 0].tolist() == [[2, 2, 2], [6, 5, 6], [7, 8, 9]]


def test_gather_tree_names_a_followed_parent_out_of_range():
    ids = torch.tensor([[[1, 2, 3]], [[4, 5, 6]], [[7, 8, 9]]])
    parents = torch.tensor([[[0, 0, 0]], [[0, -1, 1]], [[2, 1, 2]]])
    with pytest.raises(ValueError, match=r"parent_ids\[1, 0, 1\] is -1, outside \[0, 3\) "
                                         r"\(followed from beam 1 of batch entry 0\)"):
        seq2seq.gather_tree(ids, parents, torch.tensor([3]), 10)
    # the parents at step 0 are never followed: any value there is harmless
    parents = torch.tensor([[[7, -3, 0]], [[0, 1, 1]], [[2, 1, 2]]])
    got = seq2seq.gather_tree(ids, parents, torch.tensor([3]), 10)
    assert got[:, 0].tolist() == [[2, 2, 2], [6, 5, 6], [7, 8, 9]]


def test_tile_batch():
    t = torch.tensor([[1, 2], [3, 4]])
    assert seq2seq.tile_batch(t, 2).tolist() == [[1, 2], [1, 2], [3, 4], [3, 4]]
    nested = seq2seq.tile_batch(rnn.LSTMStateTuple(t, t + 1), 3)
    assert nested.c.shape == (6, 2) and isinstance(nested, rnn.LSTMStateTuple)
    with pytest.raises(ValueError, match="multiplier must be a positive int"):
        seq2seq.tile_batch(t, 0)


def _model(vocab=4, units=6, dim=3, seed=0):
    torch.manual_seed(seed)
    cell = rnn.GRUCell(units, input_size=dim)
    return cell, torch.randn(vocab, dim), nn.Linear(units, vocab)


def test_beam_width_one_equals_greedy():
    cell, emb, out = _model(vocab=6, seed=4)
    init = torch.randn(3, 6)
    start = torch.tensor([0, 2, 3])
    greedy = seq2seq.dynamic_decode(seq2seq.BasicDecoder(
        cell, seq2seq.GreedyEmbeddingHelper(emb, start, 1), init, out),
        maximum_iterations=9)[0].sample_id
    beam = seq2seq.dynamic_decode(seq2seq.BeamSearchDecoder(
        cell, emb, start, 1, init, beam_width=1, output_layer=out), maximum_iterations=9)[0]
    ids = beam.predicted_ids[..., 0]
    n = min(ids.shape[1], greedy.shape[1])
    # greedy keeps sampling after its end token only for entries still running; compare
    # each entry up to and including its first end token
    for b in range(3):
        g = greedy[b, :n].tolist()
        k = g.index(1) + 1 if 1 in g else n
        assert ids[b, :k].tolist() == g[:k]


@pytest.mark.parametrize("lp", [0.0, 0.6])
def test_output_all_scores_holds_every_candidate_score(lp):
    # tfa's output_all_scores: scores [batch, time, beam, vocab], the scores the
    # hypotheses were chosen by; the chosen ones are the default output's scores
    cell, emb, out = _model(vocab=5, seed=3)
    init, start = torch.randn(2, 6), torch.tensor([0, 3])

    def decode(**kw):
        dec = seq2seq.BeamSearchDecoder(cell, emb, start, 1, init, 3, output_layer=out,
                                        length_penalty_weight=lp, **kw)
        return seq2seq.dynamic_decode(dec, maximum_iterations=6)[0]

    plain, full = decode(), decode(output_all_scores=True)
    assert torch.equal(full.predicted_ids, plain.predicted_ids)
    step = full.beam_search_decoder_output
    want = plain.beam_search_decoder_output
    assert step.scores.shape == (2, want.scores.shape[1], 3, 5)
    chosen = step.scores.gather(2, want.parent_ids[..., None].expand(-1, -1, -1, 5))
    chosen = chosen.gather(3, want.predicted_ids[..., None])[..., 0]
    torch.testing.assert_close(chosen, want.scores)
    # step 0: only beam 0 is live; its scores are the first step's log-probabilities
    with torch.no_grad():
        first = torch.log_softmax(out(cell(emb[start], init)[0]), -1)
    # (TF's lengths: the end token, 1 here, counts from the next step on)
    lengths = torch.tensor([1, 0, 1, 1, 1])
    penalty = ((5 + lengths) / 6) ** lp
    torch.testing.assert_close(step.scores[:, 0, 0], first / penalty)
    assert torch.isinf(step.scores[:, 0, 1:]).all()
    with pytest.raises(TypeError, match="output_all_scores must be a bool"):
        decode(output_all_scores="yes")


def _sequence_logprob(cell, emb, out, init, start, seq, end):
    state, x, total = init, emb[start][None], 0.0
    for tok in seq:
        h, state = cell(x, state)
        total += torch.log_softmax(out(h), -1)[0, tok].item()
        x = emb[tok][None]
        if tok == end:
            break
    return total


@pytest.mark.parametrize("lp", [0.0, 0.8])
def test_best_beam_is_exhaustive_optimum(lp):
    vocab, end, steps = 3, 2, 3
    cell, emb, out = _model(vocab=vocab, seed=11)
    init = torch.randn(1, 6)
    beam = vocab ** (steps - 1)  # wide enough to keep every prefix: search is exhaustive
    dec = seq2seq.BeamSearchDecoder(cell, emb, torch.tensor([0]), end,
                                    seq2seq.tile_batch(init, beam), beam, output_layer=out,
                                    length_penalty_weight=lp)
    res, state, _ = seq2seq.dynamic_decode(dec, maximum_iterations=steps)
    candidates = {}
    for n in range(1, steps + 1):
        for seq in itertools.product(range(vocab), repeat=n):
            if end in seq[:-1] or (n < steps and seq[-1] != end):
                continue  # ended early, or stopped without the end token before the limit
            logp = _sequence_logprob(cell, emb, out, init, 0, seq, end)
            length = n
            candidates[seq] = logp / (((5 + length) / 6) ** lp if lp else 1.0)
    best = max(candidates, key=candidates.get)
    got = res.predicted_ids[0, :, 0].tolist()
    got = tuple(got[: got.index(end) + 1] if end in got else got)
    assert got == best
    final_score = res.beam_search_decoder_output.scores[0, -1, 0].item()
    assert final_score == pytest.approx(candidates[best], abs=1e-4)


def test_length_penalty_formula():
    lengths = torch.tensor([1, 4, 10])
    got = seq2seq.length_penalty(lengths, 0.6)
    want = torch.tensor([((5 + n) / 6) ** 0.6 for n in (1, 4, 10)])
    torch.testing.assert_close(got, want)
    assert seq2seq.length_penalty(lengths, 0.0) == 1.0
    assert math.isclose(((5 + 4) ** 0.6) / (6 ** 0.6), float(got[1]), rel_tol=1e-6)


def test_wrongly_sized_initial_state_is_a_clear_error():
    cell, emb, out = _model()
    with pytest.raises(ValueError, match=r"initial_state has 4 rows.*\(2 rows.*tile_batch"):
        seq2seq.BeamSearchDecoder(cell, emb, torch.tensor([0, 1]), 2, torch.zeros(4, 6), 3,
                                  output_layer=out)
    dec = seq2seq.BeamSearchDecoder(cell, emb, torch.tensor([0, 1]), 2, torch.zeros(2, 6), 3,
                                    output_layer=out)  # the encoder's batch: tiled here
    assert dec.initialize()[2].cell_state.shape == (2, 3, 6)


def test_beam_search_has_no_host_sync_in_step():
    cell, emb, out = _model(vocab=5)
    dec = seq2seq.BeamSearchDecoder(cell, emb, torch.tensor([0, 1]), 2,
                                    seq2seq.tile_batch(torch.zeros(2, 6), 3), 3, out)
    finished, inputs, state = dec.initialize()
    dec.step(0, inputs, state)  # first step checks the vocabulary once
    # the step must not read tensors back to Python: run it under a tensor subclass guard
    calls = []
    orig = torch.Tensor.item
    torch.Tensor.item = lambda self: calls.append(1) or orig(self)
    orig_bool = torch.Tensor.__bool__
    torch.Tensor.__bool__ = lambda self: calls.append(1) or orig_bool(self)
    try:
        dec.step(1, inputs, state)
    finally:
        torch.Tensor.item = orig
        torch.Tensor.__bool__ = orig_bool
    assert calls == []


@pytest.mark.parametrize("name", ["coverage", "coverage_lp"])
def test_coverage_penalty_with_ragged_memory_matches_tfa(name):
    """Padded memory positions have alignment 0: TF counts them as 1 in the coverage log
    (log 0 * 0 was NaN, and topk ranked NaN first)."""
    fx = load_fixture(f"beam_attention_{name}.npz")
    beam, end, max_iter = (int(v) for v in fx["meta"])
    memory, lengths = torch.from_numpy(fx["memory"]), torch.from_numpy(fx["lengths"]).long()
    mech = seq2seq.BahdanauAttention(5, seq2seq.tile_batch(memory, beam),
                                     seq2seq.tile_batch(lengths, beam))
    wrapper = seq2seq.AttentionWrapper(rnn.BasicRNNCell(6, input_size=3 + 4), mech,
                                       attention_layer_size=4, alignment_history=True)
    dense = nn.Linear(4, 6)
    wrapper(torch.zeros(3 * beam, 3), wrapper.zero_state(3 * beam))  # build
    compat.load_tf_variables({"attention_wrapper": wrapper, "dense": dense},
                             {k: v for k, v in tf_vars(fx).items()})
    dec = seq2seq.BeamSearchDecoder(
        wrapper, torch.from_numpy(fx["embedding"]), torch.from_numpy(fx["start"]).long(), end,
        wrapper.zero_state(3 * beam), beam, output_layer=dense,
        length_penalty_weight=float(fx["length_penalty"]),
        coverage_penalty_weight=float(fx["coverage"]))
    with torch.no_grad():
        out, state, seq_lengths = seq2seq.dynamic_decode(dec, maximum_iterations=max_iter)
    scores = out.beam_search_decoder_output.scores.numpy()
    assert np.isfinite(scores).all() and np.isfinite(fx["scores"]).all()
    np.testing.assert_allclose(scores, fx["scores"], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(out.predicted_ids.numpy(), fx["predicted_ids"])
    np.testing.assert_array_equal(out.beam_search_decoder_output.parent_ids.numpy(),
                                  fx["parent_ids"])
    np.testing.assert_allclose(state.log_probs.numpy(), fx["log_probs"], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(seq_lengths.numpy(), fx["seq_lengths"])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_gather_tree_is_traced_on_the_host_with_the_same_result():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 9, (12, 4, 3), generator=g)
    parents = torch.randint(0, 3, (12, 4, 3), generator=g)
    lengths = torch.tensor([12, 5, 0, 9])
    want = seq2seq.gather_tree(ids, parents, lengths, 2)
    got = seq2seq.gather_tree(ids.cuda(), parents.cuda(), lengths.cuda(), 2)
    assert got.is_cuda and torch.equal(got.cpu(), want)
