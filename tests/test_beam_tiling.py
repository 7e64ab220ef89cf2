"""BeamSearchDecoder tiles the encoder's batch-sized state and attention memory itself; code
written TF's way (tile_batch first) gives the same ids and scores."""

import pytest
import torch
from torch import nn

from rnnkit import rnn, seq2seq


def _setup(seed=0, batch=3):
    torch.manual_seed(seed)
    memory = torch.randn(batch, 6, 5)
    lengths = torch.tensor([6, 2, 4][:batch])
    mech = seq2seq.BahdanauAttention(7, memory_depth=5)
    cell = seq2seq.AttentionWrapper(rnn.GRUCell(8, input_size=4 + 5), mech,
                                    attention_layer_size=5, alignment_history=True)
    return cell, mech, memory, lengths, nn.Embedding(9, 4), nn.Linear(5, 9)


def _beam(cell, emb, out, init, beam, **kw):
    dec = seq2seq.BeamSearchDecoder(cell, emb, torch.tensor([0, 1, 2]), 8, init, beam,
                                    output_layer=out, length_penalty_weight=0.6, **kw)
    with torch.no_grad():
        return seq2seq.dynamic_decode(dec, maximum_iterations=7)


@pytest.mark.parametrize("kw", [{}, {"coverage_penalty_weight": 0.4}])
def test_self_tiling_equals_manual_tiling(kw):
    cell, mech, memory, lengths, emb, out = _setup()
    mech.setup_memory(seq2seq.tile_batch(memory, 4), seq2seq.tile_batch(lengths, 4))
    manual, manual_state, manual_len = _beam(cell, emb, out, cell.zero_state(12), 4, **kw)
    mech.setup_memory(memory, lengths)  # bound once, at the encoder's batch
    auto, auto_state, auto_len = _beam(cell, emb, out, cell.zero_state(3), 4, **kw)
    assert torch.equal(auto.predicted_ids, manual.predicted_ids)
    assert torch.equal(auto_len, manual_len)
    torch.testing.assert_close(auto.beam_search_decoder_output.scores,
                               manual.beam_search_decoder_output.scores, rtol=0, atol=0)
    torch.testing.assert_close(auto_state.cell_state.alignment_history.stack(),
                               manual_state.cell_state.alignment_history.stack())
    # the same set-up serves greedy decoding afterwards: the memory is still batch-sized
    assert mech.values.shape[0] == 3
    helper = seq2seq.GreedyEmbeddingHelper(emb, torch.tensor([0, 1, 2]), 8)
    greedy, _, _ = seq2seq.dynamic_decode(
        seq2seq.BasicDecoder(cell, helper, cell.zero_state(3), out), maximum_iterations=7)
    assert greedy.sample_id.shape[0] == 3


def test_wrong_rows_are_explained():
    cell, mech, memory, lengths, emb, out = _setup()
    mech.setup_memory(seq2seq.tile_batch(memory, 2), seq2seq.tile_batch(lengths, 2))
    with pytest.raises(ValueError, match=r"initial_state has 6 rows; BeamSearchDecoder takes "
                                         r"the encoder's batch \(3 rows"):
        seq2seq.BeamSearchDecoder(cell, emb, torch.tensor([0, 1, 2]), 8, cell.zero_state(6), 4,
                                  output_layer=out)


def test_plain_cell_state_is_tiled_too():
    torch.manual_seed(1)
    cell = rnn.LSTMCell(6, input_size=4)
    emb, out = nn.Embedding(9, 4), nn.Linear(6, 9)
    init = cell.zero_state(3)
    init = rnn.LSTMStateTuple(init.c + torch.randn(3, 6), init.h + torch.randn(3, 6))
    manual = _beam(cell, emb, out, seq2seq.tile_batch(init, 5), 5)
    auto = _beam(cell, emb, out, init, 5)
    assert torch.equal(auto[0].predicted_ids, manual[0].predicted_ids)
    torch.testing.assert_close(auto[0].beam_search_decoder_output.scores,
                               manual[0].beam_search_decoder_output.scores, rtol=0, atol=0)


def test_alignment_history_is_reordered_as_tf_reorders_tensor_arrays():
    """TF (``_maybe_sort_array_beams``): entry ``[t, b, k]`` is the row of final hypothesis
    ``k``'s ancestor at step ``t`` for ``t < lengths[b, k]``, and slot ``k``'s own row
    after that hypothesis ended; traced back from the entry's longest hypothesis."""
    # (seed 160: a hypothesis ends early and its slot is later taken by another one, so
    # TF's rule differs from following ancestors at every step)
    cell, mech, memory, lengths, emb, out = _setup(seed=160)
    mech.setup_memory(memory, lengths)
    raw, raw_state, _ = _beam(cell, emb, out, cell.zero_state(3), 4,
                              reorder_tensor_arrays=False)
    _, state, _ = _beam(cell, emb, out, cell.zero_state(3), 4)
    rows = raw_state.cell_state.alignment_history.stack().reshape(-1, 3, 4, 6)
    parents = raw.beam_search_decoder_output.parent_ids.transpose(0, 1)  # [time, batch, beam]
    final_lengths = state.lengths
    assert (final_lengths < rows.shape[0]).any(), "no hypothesis ended early: weak test"
    want = torch.empty_like(rows)
    for b in range(3):
        longest = int(final_lengths[b].max())
        for k in range(4):
            slot = k
            for t in range(rows.shape[0] - 1, -1, -1):
                if t >= longest:
                    want[t, b, k] = rows[t, b, k]
                    continue
                if t == longest - 1:
                    slot = k
                want[t, b, k] = rows[t, b, slot] if t < final_lengths[b, k] else rows[t, b, k]
                slot = int(parents[t, b, slot])
    got = state.cell_state.alignment_history.stack().reshape(-1, 3, 4, 6)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
