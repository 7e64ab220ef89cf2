"""A mechanism and a search strategy of a user's own, written only against the declared
hooks (``docs/architecture.md``): the mechanism implements ``score`` and reads ``keys``; the
search meets the cell through ``reorder_state``, ``tiled_for_beams`` and
``attention_probabilities``.  Both work with memory bound once per batch (untiled) and
agree with rnnkit's own decoders."""

import torch
from torch import nn

from rnnkit import rnn, seq2seq

VOCAB, UNITS, MEMORY_TIME = 7, 6, 5


class ScaledDot(seq2seq.AttentionMechanism):
    """Dot-product scores with a learned temperature: only ``score`` is written."""

    def __init__(self, num_units, **kwargs):
        super().__init__(num_units, **kwargs)
        self.log_temperature = nn.Parameter(torch.tensor(0.3))

    def score(self, query, state):
        # query [batch, num_units], keys [batch, memory_time, num_units]
        return torch.einsum("bd,btd->bt", query, self.keys) * self.log_temperature.exp()


def repeat_search(cell, embedding, projection, state, start_tokens, end_token, copies, steps):
    """Greedy continuations, ``copies`` per batch entry, with the attention each row paid
    summed over the steps (a coverage).  Returns ids ``[batch, copies, steps]`` and coverage
    ``[batch, copies, memory_time]``."""
    batch = start_tokens.shape[0]
    rows = torch.arange(batch).repeat_interleave(copies)
    state = cell.reorder_state(state, rows)  # the state tiled the cell's own way
    ids, coverage, out = start_tokens[rows], 0.0, []
    with cell.tiled_for_beams(batch, copies):  # memory bound for `batch` rows serves all
        for _ in range(steps):
            output, state = cell(embedding[ids], state)
            ids = projection(output).argmax(-1)
            coverage = coverage + cell.attention_probabilities(state)
            out.append(ids)
    return (torch.stack(out, 1).view(batch, copies, steps),
            coverage.view(batch, copies, -1))


def _model(stacked):
    torch.manual_seed(0)
    mech = ScaledDot(UNITS, memory_depth=4)
    inner = rnn.GRUCell(UNITS)
    if stacked:  # the attention state nested in a stack: hooks find it through wrappers
        cell = rnn.MultiRNNCell([rnn.GRUCell(UNITS),
                                 seq2seq.AttentionWrapper(inner, mech, attention_layer_size=UNITS)])
    else:
        cell = seq2seq.AttentionWrapper(inner, mech, attention_layer_size=UNITS)
    return cell, mech, torch.randn(VOCAB, 3), nn.Linear(UNITS, VOCAB)


def test_a_user_mechanism_runs_in_beam_search_with_untiled_memory_as_with_tiled():
    cell, mech, emb, proj = _model(stacked=False)
    memory, lengths = torch.randn(2, MEMORY_TIME, 4), torch.tensor([5, 3])
    beam = 3

    def decode(tiled):
        if tiled:
            mech.setup_memory(seq2seq.tile_batch(memory, beam), seq2seq.tile_batch(lengths, beam))
            init = cell.zero_state(2 * beam)
        else:
            mech.setup_memory(memory, lengths)
            init = cell.zero_state(2)
        dec = seq2seq.BeamSearchDecoder(cell, emb, torch.tensor([0, 0]), 1, init, beam,
                                        output_layer=proj, coverage_penalty_weight=0.3)
        out, state, _ = seq2seq.dynamic_decode(dec, maximum_iterations=6)
        return out.predicted_ids, out.beam_search_decoder_output.scores, state

    ids_t, scores_t, state_t = decode(True)
    ids_u, scores_u, state_u = decode(False)
    torch.testing.assert_close(ids_u, ids_t)
    torch.testing.assert_close(scores_u, scores_t)
    assert torch.isfinite(scores_t).all()
    # the coverage accumulated the mechanism's own alignments: padded positions get nothing
    acc = state_u.accumulated_attention_probs
    assert acc.shape == (2, beam, MEMORY_TIME)
    assert (acc[1, :, 3:] == 0).all() and (acc[1, :, :3] > 0).all()


def test_a_user_search_written_against_the_hooks_matches_greedy_decoding():
    for stacked in (False, True):
        cell, mech, emb, proj = _model(stacked)
        memory, lengths = torch.randn(2, MEMORY_TIME, 4), torch.tensor([5, 3])
        mech.setup_memory(memory, lengths)
        start = torch.tensor([0, 2])
        with torch.no_grad():
            ids, coverage = repeat_search(cell, emb, proj, cell.zero_state(2), start, 1,
                                          copies=3, steps=4)
            helper = seq2seq.GreedyEmbeddingHelper(emb, start, end_token=1)
            dec = seq2seq.BasicDecoder(cell, helper, cell.zero_state(2), output_layer=proj)
            greedy, _, _ = seq2seq.dynamic_decode(dec, maximum_iterations=4)
        steps = greedy.sample_id.shape[1]  # up to 4: the decode stops when both ended
        for c in range(3):  # every copy is the greedy decode of its entry
            torch.testing.assert_close(ids[:, c, :steps], greedy.sample_id)
        # each step's alignments are a distribution over the entry's own memory
        torch.testing.assert_close(coverage.sum(-1), torch.full((2, 3), 4.0))
        assert (coverage[1, :, 3:] == 0).all()
