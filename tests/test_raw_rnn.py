"""``raw_rnn``: TF 1.x's loop-function driver."""

import pytest
import torch
from torch import nn

from rnnkit import rnn


def reading(inputs, lengths, cell):
    """The loop_fn that makes raw_rnn read ``inputs [batch, time, depth]`` as dynamic_rnn."""
    batch, total = inputs.shape[:2]

    def loop_fn(time, cell_output, cell_state, loop_state):
        finished = time >= lengths
        if cell_output is None:  # time 0
            return finished, inputs[:, 0], cell.zero_state(batch, torch.float32), None, None
        nxt = inputs[:, time] if time < total else torch.zeros_like(inputs[:, 0])
        return finished, nxt, cell_state, cell_output, None

    return loop_fn


def test_raw_rnn_reading_inputs_is_dynamic_rnn():
    torch.manual_seed(0)
    cell = rnn.LSTMCell(5, input_size=3)
    inputs, lengths = torch.randn(3, 6, 3), torch.tensor([6, 2, 4])
    emit_ta, state, loop_state = rnn.raw_rnn(cell, reading(inputs, lengths, cell))
    want, want_state = rnn.dynamic_rnn(cell, inputs, sequence_length=lengths, fused=False)
    assert emit_ta.size() == 6 and loop_state is None
    torch.testing.assert_close(emit_ta.stack(), want.transpose(0, 1))  # [time, batch, depth]
    torch.testing.assert_close(state, want_state)
    torch.testing.assert_close(emit_ta.read(3), want[:, 3])
    # the loop stops at the longest length: 4 steps here
    shorter = torch.tensor([1, 4, 3])
    emit_ta, _, _ = rnn.raw_rnn(cell, reading(inputs, shorter, cell))
    want, _ = rnn.dynamic_rnn(cell, inputs, sequence_length=shorter, fused=False)
    torch.testing.assert_close(emit_ta.stack(), want.transpose(0, 1)[:4])
    # everything finished at once: nothing is emitted
    emit_ta, state, _ = rnn.raw_rnn(cell, reading(inputs, torch.zeros(3, dtype=torch.long),
                                                  cell))
    assert emit_ta.stack().shape == (0, 3, 5)
    torch.testing.assert_close(state, cell.zero_state(3, torch.float32))


def test_raw_rnn_feeds_back_predictions_with_a_loop_state():
    # a decoder feeding back the embedding of its argmax, counting steps in the loop
    # state, and emitting (logits, ids): TF's raw_rnn decoder tutorials' pattern
    torch.manual_seed(1)
    cell, emb, proj = rnn.GRUCell(6, input_size=4), torch.randn(7, 4), nn.Linear(6, 7)
    start = torch.tensor([1, 2])

    def loop_fn(time, cell_output, cell_state, loop_state):
        if cell_output is None:
            emit = (torch.zeros(7), torch.zeros((), dtype=torch.long))
            return (torch.zeros(2, dtype=torch.bool), emb[start], cell.zero_state(2), emit,
                    torch.tensor(0))
        logits = proj(cell_output)
        ids = logits.argmax(-1)
        finished = (ids == 0) | (time >= 5)
        return finished, emb[ids], cell_state, (logits, ids), loop_state + 1

    (logits_ta, ids_ta), state, steps = rnn.raw_rnn(cell, loop_fn)
    # the same decode by hand
    x, h, done, want_ids = emb[start], cell.zero_state(2), torch.zeros(2, dtype=torch.bool), []
    want_logits = []
    for time in range(1, 6):
        out, new = cell(x, h)
        logits = proj(out)
        ids = logits.argmax(-1)
        want_ids.append(torch.where(done, 0, ids))
        want_logits.append(torch.where(done[:, None], 0.0, logits))
        h = torch.where(done[:, None], h, new)
        done = done | (ids == 0) | (time >= 5)
        x = emb[ids]
        if done.all():
            break
    assert torch.equal(ids_ta.stack(), torch.stack(want_ids))
    assert int(steps) == len(want_ids)
    torch.testing.assert_close(logits_ta.stack(), torch.stack(want_logits))
    torch.testing.assert_close(state, h)


def test_raw_rnn_says_what_loop_fn_got_wrong():
    cell = rnn.GRUCell(3, input_size=2)
    x = torch.zeros(2, 2)

    def short(time, out, state, loop_state):
        return torch.zeros(2, dtype=torch.bool), x, cell.zero_state(2)

    with pytest.raises(TypeError, match=r"loop_fn\(time=0, ...\) must return \(finished, "
                                        r"next_input, next_cell_state, emit_output, "
                                        r"next_loop_state\), received tuple of length 3"):
        rnn.raw_rnn(cell, short)

    def no_state(time, out, state, loop_state):
        return torch.zeros(2, dtype=torch.bool), x, None, None, None

    with pytest.raises(ValueError, match="must return the initial cell state"):
        rnn.raw_rnn(cell, no_state)

    def wrong_state(time, out, state, loop_state):
        return torch.zeros(2, dtype=torch.bool), x, torch.zeros(2, 5), None, None

    with pytest.raises(ValueError, match=r"initial cell state must have shape \(2, 3\)"):
        rnn.raw_rnn(cell, wrong_state)

    def float_finished(time, out, state, loop_state):
        return torch.zeros(2), x, cell.zero_state(2), None, None

    with pytest.raises(TypeError, match="finished must be booleans"):
        rnn.raw_rnn(cell, float_finished)
    with pytest.raises(TypeError, match="loop_fn must be a function"):
        rnn.raw_rnn(cell, None)
