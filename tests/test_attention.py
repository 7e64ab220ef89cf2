"""Attention mechanisms and AttentionWrapper: tfa goldens, masking, shapes, beam search."""

import itertools

import numpy as np
import pytest
import torch
from conftest import load_fixture, tf_vars
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from rnnkit import compat, nest, rnn, seq2seq

MECHS = {
    "bahdanau": lambda m, l: seq2seq.BahdanauAttention(5, m, l),
    "bahdanau_norm": lambda m, l: seq2seq.BahdanauAttention(5, m, l, normalize=True),
    "luong": lambda m, l: seq2seq.LuongAttention(5, m, l),
    "luong_scale": lambda m, l: seq2seq.LuongAttention(5, m, l, scale=True),
    "bahdanau_mono_parallel": lambda m, l: seq2seq.BahdanauMonotonicAttention(
        5, m, l, normalize=True, score_bias_init=-1.0, mode="parallel"),
    "bahdanau_mono_recursive": lambda m, l: seq2seq.BahdanauMonotonicAttention(
        5, m, l, score_bias_init=0.5, mode="recursive"),
    "bahdanau_mono_hard": lambda m, l: seq2seq.BahdanauMonotonicAttention(5, m, l, mode="hard"),
    "luong_mono_parallel": lambda m, l: seq2seq.LuongMonotonicAttention(
        5, m, l, scale=True, score_bias_init=0.3, mode="parallel"),
}


@pytest.mark.parametrize("name", sorted(MECHS))
def test_mechanism_matches_tfa(name):
    fx = load_fixture(f"attn_{name}.npz")
    mech = MECHS[name](torch.from_numpy(fx["memory"]), torch.from_numpy(fx["lengths"]))
    compat.load_tf_variables(mech, tf_vars(fx))
    state = mech.initial_state(3)
    queries = torch.from_numpy(fx["queries"])
    for t in range(queries.shape[0]):
        align, state = mech(queries[t], state)
        np.testing.assert_allclose(align.detach().numpy(), fx[f"align:{t}"], atol=2e-5,
                                   rtol=1e-4)


WRAPPERS = {
    "seed": (lambda m, l: seq2seq.BahdanauAttention(11, m, l), 13, True),
    "luong_context": (lambda m, l: seq2seq.LuongAttention(6, m, l), None, False),
    "multi": (lambda m, l: [seq2seq.BahdanauAttention(7, m, l, normalize=True),
                            seq2seq.LuongAttention(6, m, l, scale=True)], [5, 4], True),
}


@pytest.mark.parametrize("name", sorted(WRAPPERS))
def test_attention_wrapper_matches_tfa(name):
    fx = load_fixture(f"attn_wrapper_{name}.npz")
    make, sizes, output_attention = WRAPPERS[name]
    mechs = make(torch.from_numpy(fx["memory"]), torch.from_numpy(fx["lengths"]))
    wrapper = seq2seq.AttentionWrapper(rnn.BasicRNNCell(6), mechs, attention_layer_size=sizes,
                                       alignment_history=True,
                                       output_attention=output_attention)
    x = torch.from_numpy(fx["x"])
    rnn.dynamic_rnn(wrapper, x[:, :1], initial_state=wrapper.zero_state(3))  # build the cell
    compat.load_tf_variables(wrapper, tf_vars(fx))
    out, state = rnn.dynamic_rnn(wrapper, x, initial_state=wrapper.zero_state(3))
    np.testing.assert_allclose(out.detach().numpy(), fx["out"], atol=2e-5, rtol=1e-4)
    np.testing.assert_allclose(state.cell_state.detach().numpy(), fx["cell_state"], atol=2e-5)
    np.testing.assert_allclose(state.attention.detach().numpy(), fx["attention"], atol=2e-5)
    histories = state.alignment_history if isinstance(mechs, list) else (
        state.alignment_history,)
    aligns = state.alignments if isinstance(mechs, list) else (state.alignments,)
    for i, (h, a) in enumerate(zip(histories, aligns, strict=True)):
        np.testing.assert_allclose(h.stack().detach().numpy(), fx[f"history:{i}"], atol=2e-5)
        np.testing.assert_allclose(a.detach().numpy(), fx[f"alignments:{i}"], atol=2e-5)
    assert int(state.time) == 6


@settings(max_examples=20, deadline=None)
@given(lengths=st.lists(st.integers(1, 9), min_size=1, max_size=4),
       kind=st.sampled_from(["bahdanau", "luong", "bahdanau_norm"]))
def test_alignments_sum_to_one_and_zero_past_length(lengths, kind):
    torch.manual_seed(0)
    memory = torch.randn(len(lengths), 9, 5)
    mech = MECHS[kind](memory, lengths)
    align, _ = mech(torch.randn(len(lengths), 5 if kind.startswith("luong") else 4),
                    mech.initial_state(len(lengths)))
    for b, n in enumerate(lengths):
        assert torch.all(align[b, n:] == 0)
        assert align[b, :n].sum().item() == pytest.approx(1.0, abs=1e-5)


def test_padding_in_memory_never_matters():
    torch.manual_seed(1)
    memory = torch.randn(2, 6, 5)
    mech = seq2seq.BahdanauAttention(4, memory, [6, 3], query_depth=3)
    q = torch.randn(2, 3)
    a1, _ = mech(q, mech.initial_state(2))
    memory2 = memory.clone()
    memory2[1, 3:] = 1e4
    mech.setup_memory(memory2, [6, 3])
    a2, _ = mech(q, mech.initial_state(2))
    torch.testing.assert_close(a1, a2)


def _seed_model(N=3):
    torch.manual_seed(0)
    hidden_dim, output_dim = 6, 5
    encoder_outputs = torch.randn(N, 20, 30)
    mech = seq2seq.BahdanauAttention(num_units=11, memory=encoder_outputs,
                                     memory_sequence_length=[5, 10, 20][:N] if N == 3 else None)
    cell = rnn.BasicRNNCell(num_units=hidden_dim)
    init = cell.zero_state(N, torch.float32)
    attn = seq2seq.AttentionWrapper(cell, mech, attention_layer_size=13,
                                    initial_cell_state=init, alignment_history=True,
                                    output_attention=True)
    return rnn.OutputProjectionWrapper(attn, output_dim), mech


def test_seed_summary_shapes():
    cell, mech = _seed_model()
    emb = torch.arange(40, dtype=torch.float32).reshape(5, 8)  # input dimension 8
    x = torch.tensor([[0, 3, 1, 2, 3, 2], [0, 3, 1, 2, 3, 1], [0, 1, 3, 2, 2, 1]])
    helper = seq2seq.TrainingHelper(emb[x], [6] * 3)
    initial_state = cell.zero_state(3, torch.float32)
    assert isinstance(initial_state, seq2seq.AttentionWrapperState)
    dec = seq2seq.BasicDecoder(cell=cell, helper=helper, initial_state=initial_state)
    outputs, last_state, lengths = seq2seq.dynamic_decode(dec, impute_finished=True)
    assert outputs.rnn_output.shape == (3, 6, 5)
    assert mech.keys.shape == (3, 20, 11) and mech.values.shape == (3, 20, 30)
    assert last_state.attention.shape == (3, 13) and last_state.cell_state.shape == (3, 6)
    history = last_state.alignment_history.stack()
    assert history.shape == (6, 3, 20)
    torch.testing.assert_close(history.sum(-1), torch.ones(6, 3))
    assert torch.all(history[:, 0, 5:] == 0) and torch.all(history[:, 1, 10:] == 0)
    assert last_state.alignments.shape == (3, 20) and int(last_state.time) == 6
    y = torch.tensor([[1, 2, 0, 3, 2, 4], [3, 2, 3, 3, 1, 4], [3, 1, 1, 2, 0, 4]])
    loss = seq2seq.sequence_loss(outputs.rnn_output, y, torch.ones(3, 6))
    loss.backward()
    assert mech.memory_layer.weight.grad is not None


def test_setup_memory_rebinds_without_new_parameters():
    mech = seq2seq.LuongAttention(4)
    with pytest.raises(ValueError, match="has no memory"):
        mech.alignments_size  # noqa: B018
    mech.setup_memory(torch.randn(2, 5, 3), [5, 2])
    params = [id(p) for p in mech.parameters()]
    mech.setup_memory(torch.randn(4, 7, 3))
    assert [id(p) for p in mech.parameters()] == params
    assert mech.alignments_size == 7 and mech.batch_size == 4
    with pytest.raises(ValueError, match="memory depth changed"):
        mech.setup_memory(torch.randn(4, 7, 5))
    with pytest.raises(ValueError, match=r"memory_sequence_length values must lie in \[0, 7\]"):
        mech.setup_memory(torch.randn(2, 7, 3), [8, 1])
    # TF binds memory of length 0 (its softmax over no position is NaN); scoring it is refused
    mech.setup_memory(torch.randn(2, 7, 3), [0, 1])
    with pytest.raises(ValueError, match=r"rows \[0\] of the memory bound have no valid position"):
        mech(torch.randn(2, 4), mech.initial_alignments(2))
    mech.setup_memory(torch.randn(2, 7, 3), [7, 1])
    # as in TF and tfa, a query of the wrong depth is refused when the wrapper runs
    wrapper = seq2seq.AttentionWrapper(rnn.GRUCell(5), mech)
    with pytest.raises(ValueError, match="needs a query of depth num_units=4"):
        wrapper(torch.randn(2, 3), wrapper.zero_state(2))


def test_safe_cumprod_follows_tf_cumprod_arguments():
    # TF: safe_cumprod(x, *args, **kwargs) passes them to tf.cumprod(x, axis=0,
    # exclusive=False, reverse=False): the default axis is 0, as here
    x = torch.tensor([[0.5, 0.25], [0.5, 0.5], [1.0, 0.2]])
    torch.testing.assert_close(seq2seq.safe_cumprod(x), torch.cumprod(x, dim=0))
    torch.testing.assert_close(seq2seq.safe_cumprod(x, axis=0, reverse=True),
                               torch.cumprod(x.flip(0), dim=0).flip(0))
    torch.testing.assert_close(seq2seq.safe_cumprod(x, axis=-1, exclusive=True, reverse=True),
                               torch.tensor([[0.25, 1.0], [0.5, 1.0], [0.2, 1.0]]))
    with pytest.raises(ValueError, match=r"axis must lie in \[-2, 2\) for a rank-2 input, "
                                         r"received 2"):
        seq2seq.safe_cumprod(x, axis=2)
    with pytest.raises(TypeError, match="exclusive must be a bool, received .yes."):
        seq2seq.safe_cumprod(x, exclusive="yes")


def test_monotonic_helpers():
    x = torch.tensor([[0.5, 0.25, 1.0, 0.1]])
    torch.testing.assert_close(seq2seq.safe_cumprod(x, axis=1), torch.cumprod(x, dim=1))
    torch.testing.assert_close(seq2seq.safe_cumprod(x, 1, exclusive=True),
                               torch.tensor([[1.0, 0.5, 0.125, 0.125]]))
    assert seq2seq.hardmax(torch.tensor([[1.0, 3.0, 2.0]])).tolist() == [[0, 1, 0]]
    torch.manual_seed(0)
    p = torch.rand(3, 6) * 0.8
    prev = torch.softmax(torch.randn(3, 6), -1)
    torch.testing.assert_close(seq2seq.monotonic_attention(p, prev, "parallel"),
                               seq2seq.monotonic_attention(p, prev, "recursive"),
                               atol=1e-5, rtol=1e-4)
    hard = seq2seq.monotonic_attention(torch.tensor([[0.0, 1, 0, 1, 1]]),
                                       torch.tensor([[0.0, 0, 1, 0, 0]]), "hard")
    assert hard.tolist() == [[0, 0, 0, 1, 0]]
    with pytest.raises(ValueError, match="mode must be"):
        seq2seq.BahdanauMonotonicAttention(3, mode="soft")


def test_wrapper_needs_tiled_memory_for_beam_search():
    cell, mech = _seed_model(N=2)
    with pytest.raises(ValueError, match="tile_batch"):
        cell.zero_state(6)


def _tiny_attention_model(vocab=3, seed=5):
    torch.manual_seed(seed)
    memory = torch.randn(1, 4, 5)
    mech = seq2seq.LuongAttention(6, memory, [3])
    cell = seq2seq.AttentionWrapper(rnn.GRUCell(6, input_size=2 + 4), mech,
                                    attention_layer_size=4, alignment_history=True)
    emb = torch.randn(vocab, 2)
    out = nn.Linear(4, vocab)
    return cell, mech, memory, emb, out


def _score(cell, emb, out, start, seq, end):
    state, x, total = cell.zero_state(1), emb[start][None], 0.0
    for tok in seq:
        y, state = cell(x, state)
        total += torch.log_softmax(out(y), -1)[0, tok].item()
        x = emb[tok][None]
    return total


def test_beam_search_with_attention_is_exhaustive_optimum():
    vocab, end, steps = 3, 2, 3
    cell, mech, memory, emb, out = _tiny_attention_model(vocab)
    beam = vocab ** (steps - 1)
    mech.setup_memory(seq2seq.tile_batch(memory, beam), seq2seq.tile_batch(torch.tensor([3]),
                                                                           beam))
    dec = seq2seq.BeamSearchDecoder(cell, emb, torch.tensor([0]), end, cell.zero_state(beam),
                                    beam, output_layer=out)
    res, state, _ = seq2seq.dynamic_decode(dec, maximum_iterations=steps)
    mech.setup_memory(memory, torch.tensor([3]))
    candidates = {}
    for n in range(1, steps + 1):
        for seq in itertools.product(range(vocab), repeat=n):
            if end in seq[:-1] or (n < steps and seq[-1] != end):
                continue
            candidates[seq] = _score(cell, emb, out, 0, seq, end)
    best = max(candidates, key=candidates.get)
    got = res.predicted_ids[0, :, 0].tolist()
    assert tuple(got[: got.index(end) + 1] if end in got else got) == best
    # the alignment history follows the best hypothesis after reordering
    hist = state.cell_state.alignment_history.stack()  # [time, batch*beam, memory]
    assert hist.shape[0] == res.predicted_ids.shape[1]
    state1, x = cell.zero_state(1), emb[0][None]
    for t, tok in enumerate(best):
        _, state1 = cell(x, state1)
        torch.testing.assert_close(hist[t, 0], state1.alignments[0], atol=1e-5, rtol=1e-4)
        x = emb[tok][None]


def test_coverage_penalty_runs_and_changes_scores():
    cell, mech, memory, emb, out = _tiny_attention_model(vocab=5, seed=2)
    beam = 3
    mech.setup_memory(seq2seq.tile_batch(memory, beam), seq2seq.tile_batch(torch.tensor([3]),
                                                                           beam))

    def run(cp):
        dec = seq2seq.BeamSearchDecoder(cell, emb, torch.tensor([0]), 4, cell.zero_state(beam),
                                        beam, output_layer=out, coverage_penalty_weight=cp)
        return seq2seq.dynamic_decode(dec, maximum_iterations=5)

    plain, _, _ = run(0.0)
    cov, state, _ = run(0.4)
    assert torch.isfinite(cov.beam_search_decoder_output.scores).all()  # values: TF goldens
    assert cov.predicted_ids.shape[0] == 1
    assert state.accumulated_attention_probs.shape == (1, beam, 4)
    finished = state.finished
    if bool(finished.any()):
        a = plain.beam_search_decoder_output.scores[..., -1, :]
        b = cov.beam_search_decoder_output.scores[..., -1, :]
        assert torch.isfinite(a).all() and (a - b).abs().max() > 1e-6
    with pytest.raises(ValueError,
                       match="coverage_penalty_weight needs a cell whose state holds attention"):
        gru = rnn.GRUCell(4, input_size=2)
        d = seq2seq.BeamSearchDecoder(gru, emb, torch.tensor([0]), 4, torch.zeros(2, 4), 2,
                                      output_layer=nn.Linear(4, 5), coverage_penalty_weight=1.0)
        seq2seq.dynamic_decode(d, maximum_iterations=2)


def test_attention_variable_names():
    names = compat.tf_variable_names(_seed_model()[0])
    assert "output_projection_wrapper/attention_wrapper/attention_layer/kernel" in names
    assert "output_projection_wrapper/attention_wrapper/bahdanau_attention/attention_v" in names
    assert nest.flatten(names)


def test_attention_fn_replaces_the_attention_computation():
    # TF 1.15 / tfa: attention_fn(mechanism, cell_output, attention_state, attention_layer)
    # -> (attention, alignments, next_attention_state); the default is compute_attention
    torch.manual_seed(0)
    mem, lengths = torch.randn(2, 5, 3), torch.tensor([5, 2])
    x = torch.randn(2, 4)

    def run(**kw):
        torch.manual_seed(1)
        mech = seq2seq.BahdanauAttention(4, mem, memory_sequence_length=lengths)
        cell = seq2seq.AttentionWrapper(rnn.GRUCell(4), mech, attention_layer_size=3, **kw)
        return cell(x, cell.zero_state(2, torch.float32))

    out, state = run()
    same, same_state = run(attention_fn=seq2seq.compute_attention)
    torch.testing.assert_close(same, out)
    torch.testing.assert_close(same_state.alignments, state.alignments)
    seen = []

    def doubled(mechanism, cell_output, attention_state, attention_layer):
        seen.append(attention_layer)
        alignments, next_state = mechanism([cell_output, attention_state])  # tfa's call form
        context = torch.bmm(alignments[:, None], mechanism.values)[:, 0]
        return 2 * attention_layer(torch.cat([cell_output, context], -1)), alignments, next_state

    twice, twice_state = run(attention_fn=doubled)
    torch.testing.assert_close(twice, 2 * out)
    torch.testing.assert_close(twice_state.alignments, state.alignments)
    assert isinstance(seen[0], torch.nn.Linear) and seen[0].out_features == 3
    with pytest.raises(TypeError, match="attention_fn must be a function"):
        run(attention_fn="luong")
