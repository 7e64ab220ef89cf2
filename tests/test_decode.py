"""Helpers, BasicDecoder and dynamic_decode."""

import pytest
import torch
from torch import nn

from rnnkit import nest, rnn, seq2seq


def model(vocab=6, dim=4, units=8, layers=2):
    cell = rnn.MultiRNNCell([rnn.BasicLSTMCell(units) for _ in range(layers)])
    rnn.dynamic_rnn(cell, torch.zeros(1, 1, dim))
    return cell, nn.Embedding(vocab, dim), nn.Linear(units, vocab)


def test_training_helper_equals_dynamic_rnn_plus_output_layer():
    cell, emb, out = model()
    x = torch.randint(0, 6, (3, 5))
    lengths = torch.tensor([5, 2, 4])
    helper = seq2seq.TrainingHelper(emb(x), lengths)
    dec = seq2seq.BasicDecoder(cell, helper, cell.zero_state(3), out)
    outputs, state, seq_len = seq2seq.dynamic_decode(dec, impute_finished=True)
    ref, ref_state = rnn.dynamic_rnn(cell, emb(x), lengths)
    ref_logits = out(ref) * (torch.arange(5)[None, :, None] < lengths[:, None, None])
    torch.testing.assert_close(outputs.rnn_output, ref_logits)
    assert seq_len.tolist() == [5, 2, 4]
    for a, b in zip(nest.flatten(state), nest.flatten(ref_state), strict=True):
        torch.testing.assert_close(a, b)
    assert torch.equal(outputs.sample_id, outputs.rnn_output.argmax(-1))


def test_greedy_stops_per_entry_and_impute_finished():
    torch.manual_seed(3)
    cell, emb, out = model()
    with torch.no_grad():  # make token 1 (the end token) likely after a few steps
        out.bias.copy_(torch.tensor([0.0, -1.0, 0.5, 0.2, 0.1, 0.3]))
    start = torch.tensor([0, 2, 3, 4])
    init = nest.map_structure(lambda z: torch.randn_like(z) * 2, cell.zero_state(4))
    helper = seq2seq.GreedyEmbeddingHelper(emb, start, end_token=1)
    dec = seq2seq.BasicDecoder(cell, helper, init, out)
    outputs, state, lengths = seq2seq.dynamic_decode(dec, impute_finished=True,
                                                     maximum_iterations=12)
    ids = outputs.sample_id
    for b in range(4):
        row = ids[b].tolist()
        n = lengths[b].item()
        if 1 in row[:n]:
            assert row.index(1) == n - 1  # stops right at its end token
        else:
            assert n == 12
        assert torch.all(outputs.rnn_output[b, n:] == 0)
    # frozen state: re-decode each entry alone for its own length gives the same state
    for b in range(4):
        n = int(lengths[b])
        h1 = seq2seq.GreedyEmbeddingHelper(emb, start[b:b + 1], end_token=1)
        init_b = nest.map_structure(lambda t, b=b: t[b:b + 1], init)
        d1 = seq2seq.BasicDecoder(cell, h1, init_b, out)
        _, s1, _ = seq2seq.dynamic_decode(d1, maximum_iterations=n)
        for a, c in zip(nest.flatten(state), nest.flatten(s1), strict=True):
            torch.testing.assert_close(a[b:b + 1], c)


def test_maximum_iterations_honoured_and_zero():
    cell, emb, out = model()
    helper = seq2seq.GreedyEmbeddingHelper(emb, torch.zeros(2, dtype=torch.long), 5)
    dec = seq2seq.BasicDecoder(cell, helper, cell.zero_state(2), out)
    o, _, lengths = seq2seq.dynamic_decode(dec, maximum_iterations=3)
    assert o.rnn_output.shape[1] <= 3 and int(lengths.max()) <= 3
    o, s, lengths = seq2seq.dynamic_decode(dec, maximum_iterations=0)
    assert o.rnn_output.shape == (2, 0, 6) and lengths.tolist() == [0, 0]
    with pytest.raises(ValueError, match="maximum_iterations must be >= 0"):
        seq2seq.dynamic_decode(dec, maximum_iterations=-1)


def test_never_finishing_helper_raises_instead_of_looping(monkeypatch):
    from rnnkit.rnn import loop

    monkeypatch.setattr(loop, "DEFAULT_MAXIMUM_ITERATIONS", 20)
    cell, emb, out = model()
    helper = seq2seq.GreedyEmbeddingHelper(emb, torch.zeros(2, dtype=torch.long), 5)
    with torch.no_grad():
        out.bias.copy_(torch.tensor([9.0, 0, 0, 0, 0, -9.0]))  # never emits 5
    dec = seq2seq.BasicDecoder(cell, helper, cell.zero_state(2), out)
    with pytest.raises(RuntimeError, match="pass maximum_iterations"):
        seq2seq.dynamic_decode(dec)


def test_output_time_major():
    cell, emb, out = model()
    helper = seq2seq.TrainingHelper(emb(torch.randint(0, 6, (2, 4))), [4, 4])
    dec = seq2seq.BasicDecoder(cell, helper, cell.zero_state(2), out)
    o, _, _ = seq2seq.dynamic_decode(dec, output_time_major=True)
    assert o.rnn_output.shape == (4, 2, 6) and o.sample_id.shape == (4, 2)
    batch_major, _, _ = seq2seq.dynamic_decode(dec)
    torch.testing.assert_close(o.rnn_output, batch_major.rnn_output.transpose(0, 1))
    assert torch.equal(o.sample_id, batch_major.sample_id.T)


def test_sample_helper_seed_and_temperature():
    cell, emb, out = model()

    def run(seed, temp=None):
        h = seq2seq.SampleEmbeddingHelper(emb, torch.zeros(3, dtype=torch.long), 5,
                                          softmax_temperature=temp, seed=seed)
        d = seq2seq.BasicDecoder(cell, h, cell.zero_state(3), out)
        return seq2seq.dynamic_decode(d, maximum_iterations=8)[0].sample_id

    assert torch.equal(run(1), run(1))
    cold = run(2, temp=1e-4)
    greedy = seq2seq.dynamic_decode(seq2seq.BasicDecoder(
        cell, seq2seq.GreedyEmbeddingHelper(emb, torch.zeros(3, dtype=torch.long), 5),
        cell.zero_state(3), out), maximum_iterations=8)[0].sample_id
    n = min(cold.shape[1], greedy.shape[1])
    assert torch.equal(cold[:, :n], greedy[:, :n])
    with pytest.raises(ValueError, match="softmax_temperature must be > 0"):
        seq2seq.SampleEmbeddingHelper(emb, torch.zeros(3, dtype=torch.long), 5, 0.0)


def test_scheduled_helpers_extremes():
    cell, emb, out = model()
    x = torch.randint(0, 6, (3, 5))
    inputs = emb(x)
    base = seq2seq.dynamic_decode(seq2seq.BasicDecoder(
        cell, seq2seq.TrainingHelper(inputs, [5, 5, 5]), cell.zero_state(3), out))[0]
    never = seq2seq.ScheduledEmbeddingTrainingHelper(inputs, [5, 5, 5], emb, 0.0, seed=1)
    o = seq2seq.dynamic_decode(seq2seq.BasicDecoder(cell, never, cell.zero_state(3), out))[0]
    torch.testing.assert_close(o.rnn_output, base.rnn_output)
    assert torch.all(o.sample_id == -1)
    always = seq2seq.ScheduledEmbeddingTrainingHelper(inputs, [5, 5, 5], emb, 1.0, seed=1)
    o = seq2seq.dynamic_decode(seq2seq.BasicDecoder(cell, always, cell.zero_state(3), out))[0]
    assert torch.all(o.sample_id >= 0)
    # steps after the first read the embedding of the token sampled before them
    fed = torch.cat([inputs[:, :1], emb(o.sample_id[:, :-1])], 1)
    ref = seq2seq.dynamic_decode(seq2seq.BasicDecoder(
        cell, seq2seq.TrainingHelper(fed, [5, 5, 5]), cell.zero_state(3), out))[0]
    torch.testing.assert_close(o.rnn_output, ref.rnn_output)
    with pytest.raises(ValueError, match=r"sampling_probability must lie in \[0, 1\]"):
        seq2seq.ScheduledEmbeddingTrainingHelper(inputs, [5, 5, 5], emb, 1.5)

    # ScheduledOutputTrainingHelper: feed outputs back (cell output size == input size)
    cell2 = rnn.GRUCell(4)
    seq = torch.randn(2, 6, 4)
    h0 = seq2seq.ScheduledOutputTrainingHelper(seq, [6, 6], 0.0)
    o0 = seq2seq.dynamic_decode(seq2seq.BasicDecoder(cell2, h0, cell2.zero_state(2)))[0]
    torch.testing.assert_close(o0.rnn_output, rnn.dynamic_rnn(cell2, seq)[0])
    h1 = seq2seq.ScheduledOutputTrainingHelper(seq, [6, 6], 1.0)
    o1 = seq2seq.dynamic_decode(seq2seq.BasicDecoder(cell2, h1, cell2.zero_state(2)))[0]
    # with probability 1 the cell reads its own previous output at every later step
    manual, state, x_t = [], cell2.zero_state(2), seq[:, 0]
    for _ in range(6):
        y, state = cell2(x_t, state)
        manual.append(y)
        x_t = y
    torch.testing.assert_close(o1.rnn_output, torch.stack(manual, 1))


def test_inference_and_custom_helpers():
    cell = rnn.GRUCell(3)
    start = torch.randn(2, 3)
    h = seq2seq.InferenceHelper(sample_fn=lambda o: o, sample_shape=[3],
                                sample_dtype=torch.float32, start_inputs=start,
                                end_fn=lambda s: s[:, 0] > 10.0)
    o, _, lengths = seq2seq.dynamic_decode(seq2seq.BasicDecoder(cell, h, cell.zero_state(2)),
                                           maximum_iterations=4)
    assert o.rnn_output.shape == (2, 4, 3) and lengths.tolist() == [4, 4]
    calls = []
    ch = seq2seq.CustomHelper(
        initialize_fn=lambda: (torch.zeros(2, dtype=torch.bool), start),
        sample_fn=lambda time, outputs, state: torch.zeros(2, dtype=torch.long),
        next_inputs_fn=lambda time, outputs, state, sample_ids: (
            calls.append(time) or torch.full((2,), time >= 2), outputs, state))
    o, _, lengths = seq2seq.dynamic_decode(seq2seq.BasicDecoder(cell, ch, cell.zero_state(2)))
    assert calls == [0, 1, 2] and lengths.tolist() == [3, 3] and ch.batch_size == 2


def test_bad_decoder_input():
    cell, emb, out = model()
    with pytest.raises(ValueError, match=r"start_tokens must lie in \[0, 6\)"):
        seq2seq.GreedyEmbeddingHelper(emb, torch.tensor([0, 7]), 1)
    with pytest.raises(ValueError, match="start_tokens must be a vector"):
        seq2seq.GreedyEmbeddingHelper(emb, torch.zeros(2, 2, dtype=torch.long), 1)
    with pytest.raises(ValueError, match=r"sequence_length values must lie in \[0, 4\]"):
        seq2seq.TrainingHelper(torch.randn(2, 4, 3), [5, 1])
    helper = seq2seq.TrainingHelper(torch.randn(2, 4, 4), [4, 1])
    with pytest.raises(ValueError, match=r"initial_state\[0\]\.c must have shape \(2, 8\)"):
        seq2seq.dynamic_decode(seq2seq.BasicDecoder(cell, helper, cell.zero_state(3)))
    with pytest.raises(TypeError, match="helper must be a Helper"):
        seq2seq.BasicDecoder(cell, object(), cell.zero_state(2))
    small = nn.Embedding(3, 4)
    g = seq2seq.GreedyEmbeddingHelper(small, torch.zeros(2, dtype=torch.long), 1)
    with pytest.raises(ValueError, match="emits 6 logits but the embedding holds only 3"):
        seq2seq.dynamic_decode(seq2seq.BasicDecoder(cell, g, cell.zero_state(2), out),
                               maximum_iterations=3)


def test_projected_embedding_path_equals_plain_path():
    """Greedy and beam decoders gather rows of project_inputs(table) instead of projecting
    embedded inputs at each step; a callable embedding takes the plain path."""
    torch.manual_seed(5)
    cell, emb, out = model(vocab=7, layers=2)
    init = nest.map_structure(torch.randn_like, cell.zero_state(3))
    start = torch.tensor([0, 3, 5])
    plain = seq2seq.dynamic_decode(seq2seq.BasicDecoder(
        cell, seq2seq.GreedyEmbeddingHelper(lambda ids: emb(ids), start, 1), init, out),
        maximum_iterations=8)[0]
    fast_dec = seq2seq.BasicDecoder(cell, seq2seq.GreedyEmbeddingHelper(emb, start, 1), init,
                                    out)
    fast = seq2seq.dynamic_decode(fast_dec, maximum_iterations=8)[0]
    # dynamic_decode steps an internal copy fed rows of the projected table; the decoder and
    # its helper keep TF's contract (embeddings in, embeddings out)
    inner = fast_dec.for_loop()
    assert inner is not fast_dec and inner._projected
    assert inner.helper._embedding_fn.table.shape == (7, 4 * 8)
    assert not fast_dec._projected and fast_dec.helper._embedding_fn.module is emb
    _, first_inputs, _ = fast_dec.initialize()
    torch.testing.assert_close(first_inputs, emb(start))
    assert torch.equal(plain.sample_id, fast.sample_id)
    torch.testing.assert_close(plain.rnn_output, fast.rnn_output, atol=1e-5, rtol=1e-5)
    tiled = seq2seq.tile_batch(init, 4)
    b_plain = seq2seq.dynamic_decode(seq2seq.BeamSearchDecoder(
        cell, lambda ids: emb(ids), start, 1, tiled, 4, out), maximum_iterations=8)[0]
    beam = seq2seq.BeamSearchDecoder(cell, emb, start, 1, tiled, 4, out)
    b_fast = seq2seq.dynamic_decode(beam, maximum_iterations=8)[0]
    assert beam.for_loop()._projected and not beam._projected
    assert torch.equal(b_plain.predicted_ids, b_fast.predicted_ids)
    torch.testing.assert_close(b_plain.beam_search_decoder_output.scores,
                               b_fast.beam_search_decoder_output.scores, atol=1e-5, rtol=1e-5)


def _backward_ops(t: torch.Tensor) -> set[str]:
    seen, todo, names = set(), [t.grad_fn], set()
    while todo:
        fn = todo.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        names.add(type(fn).__name__)
        todo.extend(f for f, _ in fn.next_functions)
    return names


@pytest.mark.parametrize("scheduled", [False, True])
def test_teacher_forcing_reads_its_inputs_by_unbind(scheduled):
    """x[t] on inputs that require grad makes backward quadratic in time (each step's
    gradient is a full-size tensor); the helpers read time slices made once by unbind."""
    torch.manual_seed(0)
    cell = rnn.GRUCell(5, input_size=3 + 2)
    inputs = torch.randn(2, 6, 3, requires_grad=True)
    aux = torch.randn(2, 6, 2, requires_grad=True)
    if scheduled:
        helper = seq2seq.ScheduledOutputTrainingHelper(
            torch.randn(2, 6, 5, requires_grad=True)[..., :3], [6, 4], 0.5,
            next_inputs_fn=lambda out: out[..., :3], auxiliary_inputs=aux, seed=1)
    else:
        helper = seq2seq.TrainingHelper(torch.cat([inputs, aux], -1), [6, 4])
    outputs, _, _ = seq2seq.dynamic_decode(
        seq2seq.BasicDecoder(cell, helper, cell.zero_state(2)))
    ops = _backward_ops(outputs.rnn_output.sum())
    assert "UnbindBackward0" in ops and "SelectBackward0" not in ops, ops
