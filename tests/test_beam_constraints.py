"""Beam search constraints proved by exhaustive search over a tiny vocabulary: the best beam
is the best-scoring sequence that obeys min_length and no_repeat_ngram_size, under each
length normalisation."""

import itertools

import pytest
import torch
from torch import nn

from rnnkit import rnn, seq2seq

VOCAB, END, STEPS = 3, 2, 4


def _model(seed):
    torch.manual_seed(seed)
    cell = rnn.GRUCell(5, input_size=3)
    return cell, torch.randn(VOCAB, 3) * 2, nn.Linear(5, VOCAB)


def _score(cell, emb, out, seq, alpha, normalization, steps_run):
    state, x, total = cell.zero_state(1), emb[0][None], 0.0
    for tok in seq:
        y, state = cell(x, state)
        total += torch.log_softmax(out(y), -1)[0, tok].item()
        x = emb[tok][None]
    # as TF: a hypothesis's length counts its end token from the step after it finished, so
    # a final score depends on how many steps the decode ran
    length = sum(1 for t in seq if t != END) + (1 if END in seq and len(seq) < steps_run
                                                 else 0)
    if alpha == 0:
        return total
    if normalization == "gnmt":
        return total / ((5.0 + length) / 6.0) ** alpha
    return total / max(length, 1) ** alpha


def _allowed(seq, min_length, ngram):
    if END in seq and seq.index(END) < min_length:
        return False
    if ngram:
        grams = [tuple(seq[i:i + ngram]) for i in range(len(seq) - ngram + 1)]
        if len(grams) != len(set(grams)):
            return False
    return True


@pytest.mark.parametrize("min_length, ngram, normalization, alpha", [
    (0, 0, "gnmt", 0.0), (2, 0, "gnmt", 0.0), (3, 0, "average", 1.0), (0, 1, "gnmt", 0.0),
    (0, 2, "gnmt", 0.7), (1, 2, "average", 1.0), (2, 1, "average", 0.5), (1, 3, "gnmt", 1.2),
])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_best_beam_is_the_best_allowed_sequence(min_length, ngram, normalization, alpha,
                                                seed):
    cell, emb, out = _model(seed)
    beam = VOCAB ** (STEPS - 1)  # wide enough that nothing is pruned: the search is exact
    dec = seq2seq.BeamSearchDecoder(
        cell, emb, torch.tensor([0]), END, cell.zero_state(beam), beam, output_layer=out,
        length_penalty_weight=alpha, min_length=min_length, no_repeat_ngram_size=ngram,
        length_normalization=normalization)
    with torch.no_grad():
        res, state, _ = seq2seq.dynamic_decode(dec, maximum_iterations=STEPS)
    steps_run = res.predicted_ids.shape[1]
    candidates = {}
    for n in range(1, STEPS + 1):
        for seq in itertools.product(range(VOCAB), repeat=n):
            if END in seq[:-1] or (n < STEPS and seq[-1] != END):
                continue
            if _allowed(seq, min_length, ngram):
                candidates[seq] = _score(cell, emb, out, seq, alpha, normalization, steps_run)
    best = max(candidates, key=candidates.get)
    ids = res.predicted_ids[0, :, 0].tolist()
    got = tuple(ids[: ids.index(END) + 1] if END in ids else ids)
    assert got == best
    assert res.beam_search_decoder_output.scores[0, -1, 0].item() == pytest.approx(
        candidates[best], abs=1e-4)


def test_constraint_arguments_checked():
    cell, emb, out = _model(0)
    for kw, match in (({"min_length": -1}, "min_length must be an int >= 0"),
                      ({"no_repeat_ngram_size": 1.5}, "no_repeat_ngram_size must be an int"),
                      ({"length_normalization": "mean"}, "length_normalization must be")):
        with pytest.raises(ValueError, match=match):
            seq2seq.BeamSearchDecoder(cell, emb, torch.tensor([0]), END, cell.zero_state(2), 2,
                                      output_layer=out, **kw)
