"""Port of TensorFlow r1.15 ``tensorflow/contrib/rnn/python/kernel_tests/rnn_test.py``
(``StackBidirectionalRNNTest``: ``stack_bidirectional_rnn``,
``stack_bidirectional_dynamic_rnn``; read at commit 8c95a90513ce).

Upstream feeds one placeholder as every step, replayed here as ``[x] * max_length``.  Its
cells share one seeded ``random_uniform_initializer``, so each forward cell has the weights
of the backward cell of its layer; rnnkit's seeded initializer of the same range does the
same.  Upstream's ``use_gpu`` / ``use_shape`` variants change nothing here; the scope tests
are not ported (``tests/upstream/notes/contrib_core.md``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit import initializers, rnn

SEED = 23489
LAYERS = [2, 3]
INPUT_SIZE, BATCH_SIZE, MAX_LENGTH = 5, 2, 8


@pytest.fixture(autouse=True)
def _upstream_seed():
    """Upstream's ``setUp``: ``np.random.seed(23489)``."""
    np.random.seed(SEED)


def _cells():
    """Upstream passes ``input_size`` as ``LSTMCell``'s second positional argument, which is
    ``use_peepholes`` in TF 1.x (read as true); rnnkit takes True/False only (README)."""
    init = initializers.random_uniform_initializer(-0.01, 0.01, seed=SEED)
    return [rnn.LSTMCell(n, True, initializer=init, state_is_tuple=False) for n in LAYERS]


def _stack_rnn(dynamic, sequence_length, initial_states_fw=None, initial_states_bw=None,
               cells=None, x=None):
    """Upstream's ``_createStackBidirectionalRNN`` / ``_createStackBidirectionalDynamicRNN``
    run once: ``(outputs [time, batch, 2 * 3], states_fw, states_bw)`` as arrays."""
    cells_fw, cells_bw = cells or (_cells(), _cells())
    x = randn_input() if x is None else x
    inputs = MAX_LENGTH * [x]
    with torch.no_grad():
        if dynamic:
            outputs, st_fw, st_bw = rnn.stack_bidirectional_dynamic_rnn(
                cells_fw, cells_bw, torch.stack(inputs).transpose(0, 1),
                initial_states_fw=initial_states_fw, initial_states_bw=initial_states_bw,
                dtype=torch.float32, sequence_length=sequence_length)
            assert list(outputs.shape) == [BATCH_SIZE, MAX_LENGTH, 2 * LAYERS[-1]]
            out = outputs.transpose(0, 1).numpy()
        else:
            outputs, st_fw, st_bw = rnn.stack_bidirectional_rnn(
                cells_fw, cells_bw, inputs, initial_states_fw, initial_states_bw,
                dtype=torch.float32, sequence_length=sequence_length)
            assert len(outputs) == len(inputs)
            for o in outputs:
                assert list(o.shape) == [BATCH_SIZE, 2 * LAYERS[-1]]
            out = torch.stack(outputs).numpy()
    assert len(st_fw) == len(st_bw) == len(LAYERS)
    return out, [s.numpy() for s in st_fw], [s.numpy() for s in st_bw]


def randn_input():
    return torch.from_numpy(np.random.randn(BATCH_SIZE, INPUT_SIZE)).float()


def _check_stack_outputs(out, s_fw, s_bw):
    """Equal weights make the first layer's forward and backward final states equal; the
    second layer reads both directions joined, so its outputs are not mirrored."""
    assert np.isfinite(out).all()
    np.testing.assert_allclose(s_fw[0], s_bw[0], rtol=1e-6, atol=1e-6)
    # entry 0 has length 2, entry 1 length 3: the forward output at t differs from the
    # backward output at the mirrored step
    for b, pairs in ((0, ((0, 1), (1, 0))), (1, ((0, 2), (1, 1), (2, 0)))):
        for t_fw, t_bw in pairs:
            for k in range(3):
                assert out[t_fw][b][k] != out[t_bw][b][k + 3]


def _check_states_carry_over(dynamic):
    """Upstream's ``_testStackBidirectional(Dynamic)RNNStates``: 3 steps, then 2 more from
    the state after 3, give the first layer the state of 5 steps run at once."""
    cells = (_cells(), _cells())
    x = randn_input()
    zeros_fw = [torch.zeros(BATCH_SIZE, 2 * n) for n in LAYERS]
    zeros_bw = [torch.zeros(BATCH_SIZE, 2 * n) for n in LAYERS]
    _, st_3_fw, st_3_bw = _stack_rnn(dynamic, [3, 2], zeros_fw, zeros_bw, cells, x)
    _, st_5_fw, st_5_bw = _stack_rnn(dynamic, [5, 3], zeros_fw, zeros_bw, cells, x)
    _, st_5p_fw, st_5p_bw = _stack_rnn(dynamic, [2, 1], [torch.from_numpy(s) for s in st_3_fw],
                                       [torch.from_numpy(s) for s in st_3_bw], cells, x)
    np.testing.assert_array_equal(st_5_fw[0], st_5p_fw[0])
    np.testing.assert_array_equal(st_5_bw[0], st_5p_bw[0])
    assert np.abs(st_5_fw[0]).min() > 0  # a real state, not zeros


def test_stack_bidirectional_rnn():
    """StackBidirectionalRNNTest.testStackBidirectionalRNN."""
    _check_stack_outputs(*_stack_rnn(dynamic=False, sequence_length=[2, 3]))
    _check_states_carry_over(dynamic=False)


def test_bidirectional_rnn():
    """StackBidirectionalRNNTest.testBidirectionalRNN (``stack_bidirectional_dynamic_rnn``;
    upstream's ``use_state_tuple`` option reaches no cell, which all have
    ``state_is_tuple=False``)."""
    _check_stack_outputs(*_stack_rnn(dynamic=True, sequence_length=[2, 3]))
    _check_states_carry_over(dynamic=True)
