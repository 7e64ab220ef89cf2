"""Port of TensorFlow r1.15 ``tensorflow/contrib/rnn/python/kernel_tests/rnn_cell_test.py``:
the tests of ``TimeFreqLSTMCell``, ``GridLSTMCell`` and ``BidirectionalGridLSTMCell``
(``RNNCellTest``; read at commit e08079463bf4).

Upstream builds its cells under ``variable_scope("root", initializer=constant_initializer(0.5))``:
every variable created without an initializer of its own (the kernels ``W*``, the
peepholes) starts at 0.5, while the biases ``B*`` keep the zeros TF creates them with.
:func:`scope_initializer` does the same to a built rnnkit cell through its TF variable
layout.  Where upstream only checks shapes and that rows differ (its smoke tests), the port
compares the values with the cell's equations computed in numpy for those constant weights
(see ``tests/upstream/notes/contrib_grid.md``).
"""

from __future__ import annotations

import numpy as np
import torch

from rnnkit import compat, rnn


def scope_initializer(cell: rnn.RNNCell, value: float) -> rnn.RNNCell:
    """TF's ``variable_scope(initializer=constant_initializer(value))`` on a built cell:
    every TF variable but the biases (``B``, ``B_f_*``, ``B_t_*``: zeros) set to ``value``."""
    variables = compat.tf_variables_of(cell)
    compat.load_tf_variables(cell, {
        name: np.zeros_like(v) if name.rsplit("/", 1)[-1].startswith("B") else
        np.full_like(v, value) for name, v in variables.items()})
    return cell


def run_cell(cell, x, state, value=0.5):
    """Build ``cell`` on ``x``, apply the scope initializer, run one step."""
    rnn.build(cell, x, state)
    scope_initializer(cell, value)
    with torch.no_grad():
        return cell(x, state)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


INPUTS = np.array([[1., 1., 1., 1.], [2., 2., 2., 2.], [3., 3., 3., 3.]], dtype=np.float32)


def np_time_freq(x, state, h, feature_size, skip, w=0.5, forget_bias=1.0):
    """TimeFreqLSTMCell's step with every kernel entry ``w``, zero bias, no peepholes."""
    n = (x.shape[1] - feature_size) // skip + 1
    m_freq = np.zeros((x.shape[0], h))
    outs, states = [], []
    for k in range(n):
        xk = x[:, k * skip:k * skip + feature_size]
        c_prev = state[:, 2 * k * h:(2 * k + 1) * h]
        m_prev = state[:, (2 * k + 1) * h:(2 * k + 2) * h]
        z = np.concatenate([xk, m_prev, m_freq], 1).sum(1, keepdims=True) * w * np.ones((1, h))
        c = sigmoid(z + forget_bias) * c_prev + sigmoid(z) * np.tanh(z)
        m = sigmoid(z) * np.tanh(c)
        m_freq = m
        outs.append(m)
        states += [c, m]
    return np.concatenate(outs, 1), np.concatenate(states, 1)


def np_grid_coupled(x, fields, h, blocks, feature_size, skip, w=0.5):
    """GridLSTMCell's step (coupled gates, unshared weights, no peepholes) with every kernel
    entry ``w`` and zero biases; ``blocks``: ``[(start, windows)]``; ``fields`` the time
    states ``[c, m]`` per window, blocks in order."""
    outs, states, at = [], [], 0
    for start, n in blocks:
        m_freq = c_freq = np.zeros((x.shape[0], h))
        for k in range(n):
            xk = x[:, start + k * skip:start + k * skip + feature_size]
            c_t, m_t = fields[at], fields[at + 1]
            at += 2
            z = np.concatenate([xk, m_t, m_freq], 1).sum(1, keepdims=True) * w * np.ones((1, h))
            i = sigmoid(z)  # the same for both LSTMs: equal weights
            c_freq = (1 - i) * c_freq + i * np.tanh(z)
            c_t = (1 - i) * c_t + i * np.tanh(z)
            m_freq = sigmoid(z) * np.tanh(c_freq)
            m_t = sigmoid(z) * np.tanh(c_t)
            outs += [m_t, m_freq]
            states += [c_t, m_t]
    return np.concatenate(outs, 1), states


def test_testTimeFreqLSTMCell():
    """Upstream ``RNNCellTest.testTimeFreqLSTMCell``.

    Adapted: upstream checks the shapes and that the rows differ; the port also compares
    the values with the cell's equations for the constant weights."""
    num_units, batch_size, input_size, feature_size, frequency_skip = 8, 3, 4, 2, 1
    state_size = num_units * 2
    num_shifts = (input_size - feature_size) // frequency_skip + 1
    x = torch.tensor(INPUTS)
    m = torch.full((batch_size, int(state_size * num_shifts)), 0.1)
    cell = rnn.TimeFreqLSTMCell(num_units=num_units, feature_size=feature_size,
                                frequency_skip=frequency_skip, forget_bias=1.0)
    output, state = run_cell(cell, x, m)
    assert output.shape == (batch_size, num_units * num_shifts)
    assert state.shape == (batch_size, state_size * num_shifts)
    want_out, want_state = np_time_freq(INPUTS.astype(np.float64), m.double().numpy(),
                                        num_units, feature_size, frequency_skip)
    np.testing.assert_allclose(output.numpy(), want_out, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(state.numpy(), want_state, rtol=1e-6, atol=1e-6)
    for i in range(1, batch_size):
        assert float(np.linalg.norm(output[0].numpy() - output[i].numpy())) > 1e-6
        assert float(np.linalg.norm(state[0].numpy() - state[i].numpy())) > 1e-6


def test_testGridLSTMCell():
    """Upstream ``RNNCellTest.testGridLSTMCell``.

    Adapted: upstream checks the shapes and that the rows differ; the port also compares
    the values with the cell's equations for the constant weights."""
    num_units, batch_size, input_size, feature_size, frequency_skip = 8, 3, 4, 2, 1
    num_shifts = int((input_size - feature_size) / frequency_skip + 1)
    cell = rnn.GridLSTMCell(num_units=num_units, feature_size=feature_size,
                            frequency_skip=frequency_skip, forget_bias=1.0,
                            num_frequency_blocks=[num_shifts],
                            couple_input_forget_gates=True, state_is_tuple=True)
    inputs = torch.tensor(INPUTS)
    state_value = torch.full((batch_size, num_units), 0.1)
    init_state = cell.state_tuple_type(*([state_value, state_value] * num_shifts))
    output, state = run_cell(cell, inputs, init_state)
    assert output.shape == (batch_size, num_units * num_shifts * 2)
    for ss in state:
        assert ss.shape == (batch_size, num_units)
    want_out, want_states = np_grid_coupled(
        INPUTS.astype(np.float64), [np.full((batch_size, num_units), 0.1)] * 2 * num_shifts,
        num_units, [(0, num_shifts)], feature_size, frequency_skip)
    np.testing.assert_allclose(output.numpy(), want_out, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.concatenate([s.numpy() for s in state], 1),
                               np.concatenate(want_states, 1), rtol=1e-6, atol=1e-6)
    for i in range(1, batch_size):
        assert float(np.linalg.norm(output[0].numpy() - output[i].numpy())) > 1e-6
        assert float(np.linalg.norm(state.state_f00_b00_c[0].numpy()
                                    - state.state_f00_b00_c[i].numpy())) > 1e-6


def test_testGridLSTMCellWithFrequencyBlocks():
    """Upstream ``RNNCellTest.testGridLSTMCellWithFrequencyBlocks``.

    Adapted: upstream checks the shapes and that the rows differ; the port also compares
    the values with the cell's equations for the constant weights."""
    num_units, batch_size, feature_size, frequency_skip = 8, 3, 2, 1
    num_frequency_blocks = [1, 1]
    total_blocks = num_frequency_blocks[0] + num_frequency_blocks[1]
    start_freqindex_list = [0, 2]
    end_freqindex_list = [2, 4]
    cell = rnn.GridLSTMCell(num_units=num_units, feature_size=feature_size,
                            frequency_skip=frequency_skip, forget_bias=1.0,
                            num_frequency_blocks=num_frequency_blocks,
                            start_freqindex_list=start_freqindex_list,
                            end_freqindex_list=end_freqindex_list,
                            couple_input_forget_gates=True, state_is_tuple=True)
    inputs = torch.tensor(INPUTS)
    state_value = torch.full((batch_size, num_units), 0.1)
    init_state = cell.state_tuple_type(*([state_value, state_value] * total_blocks))
    output, state = run_cell(cell, inputs, init_state)
    assert output.shape == (batch_size, num_units * total_blocks * 2)
    for ss in state:
        assert ss.shape == (batch_size, num_units)
    want_out, want_states = np_grid_coupled(
        INPUTS.astype(np.float64), [np.full((batch_size, num_units), 0.1)] * 2 * total_blocks,
        num_units, [(0, 1), (2, 1)], feature_size, frequency_skip)
    np.testing.assert_allclose(output.numpy(), want_out, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.concatenate([s.numpy() for s in state], 1),
                               np.concatenate(want_states, 1), rtol=1e-6, atol=1e-6)
    for i in range(1, batch_size):
        assert float(np.linalg.norm(output[0].numpy() - output[i].numpy())) > 1e-6
        assert float(np.linalg.norm(state.state_f00_b00_c[0].numpy()
                                    - state.state_f00_b00_c[i].numpy())) > 1e-6


def test_testGridLstmCellWithCoupledInputForgetGates():
    """Upstream ``RNNCellTest.testGridLstmCellWithCoupledInputForgetGates``."""
    num_units, batch_size, input_size, feature_size, frequency_skip = 2, 3, 4, 2, 1
    num_shifts = int((input_size - feature_size) / frequency_skip + 1)
    expected_output = np.array(
        [[0.416383, 0.416383, 0.403238, 0.403238, 0.524020, 0.524020,
          0.565425, 0.565425, 0.557865, 0.557865, 0.609699, 0.609699],
         [0.627331, 0.627331, 0.622393, 0.622393, 0.688342, 0.688342,
          0.708078, 0.708078, 0.694245, 0.694245, 0.715171, 0.715171],
         [0.711050, 0.711050, 0.709197, 0.709197, 0.736533, 0.736533,
          0.744264, 0.744264, 0.737390, 0.737390, 0.745250, 0.745250]],
        dtype=np.float32)
    expected_state = np.array(
        [[0.625556, 0.625556, 0.416383, 0.416383, 0.759134, 0.759134,
          0.524020, 0.524020, 0.798795, 0.798795, 0.557865, 0.557865],
         [0.875488, 0.875488, 0.627331, 0.627331, 0.936432, 0.936432,
          0.688342, 0.688342, 0.941961, 0.941961, 0.694245, 0.694245],
         [0.957327, 0.957327, 0.711050, 0.711050, 0.979522, 0.979522,
          0.736533, 0.736533, 0.980245, 0.980245, 0.737390, 0.737390]],
        dtype=np.float32)
    for state_is_tuple in [False, True]:
        cell = rnn.GridLSTMCell(num_units=num_units, feature_size=feature_size,
                                frequency_skip=frequency_skip, forget_bias=1.0,
                                num_frequency_blocks=[num_shifts],
                                couple_input_forget_gates=True, state_is_tuple=state_is_tuple)
        inputs = torch.tensor(INPUTS)
        if state_is_tuple:
            state_value = torch.full((batch_size, num_units), 0.1)
            init_state = cell.state_tuple_type(*([state_value, state_value] * num_shifts))
        else:
            init_state = torch.full((batch_size, num_units * num_shifts * 2), 0.1)
        output, state = run_cell(cell, inputs, init_state)
        np.testing.assert_allclose(output.numpy(), expected_output, rtol=1e-6, atol=1e-6)
        if not state_is_tuple:
            np.testing.assert_allclose(state.numpy(), expected_state, rtol=1e-6, atol=1e-6)
        else:
            assert len(state) == num_shifts * 2
            for ss in state:
                assert ss.shape == (batch_size, num_units)
            np.testing.assert_allclose(np.concatenate([s.numpy() for s in state], 1),
                                       expected_state, rtol=1e-6, atol=1e-6)


def _bidirectional(backward_slice_offset, expected_output, expected_state):
    num_units, batch_size, input_size, feature_size, frequency_skip = 2, 3, 4, 2, 1
    num_shifts = int((input_size - feature_size) / frequency_skip + 1)
    kw = {"backward_slice_offset": backward_slice_offset} if backward_slice_offset else {}
    cell = rnn.BidirectionalGridLSTMCell(num_units=num_units, feature_size=feature_size,
                                         share_time_frequency_weights=True,
                                         frequency_skip=frequency_skip, forget_bias=1.0,
                                         num_frequency_blocks=[num_shifts], **kw)
    inputs = torch.tensor([[1.0, 1.1, 1.2, 1.3], [2.0, 2.1, 2.2, 2.3],
                           [3.0, 3.1, 3.2, 3.3]], dtype=torch.float32)
    state_value = torch.full((batch_size, num_units), 0.1)
    init_state = cell.state_tuple_type(*([state_value, state_value] * num_shifts * 2))
    output, state = run_cell(cell, inputs, init_state)
    assert output.shape == (batch_size, num_units * num_shifts * 4)
    np.testing.assert_allclose(output.numpy(), expected_output, rtol=1e-6, atol=1e-6)
    assert len(state) == num_shifts * 4
    for ss in state:
        assert ss.shape == (batch_size, num_units)
    np.testing.assert_allclose(np.concatenate([s.numpy() for s in state], 1),
                               expected_state, rtol=1e-6, atol=1e-6)


def test_testBidirectionGridLSTMCell():
    """Upstream ``RNNCellTest.testBidirectionGridLSTMCell``."""
    expected_output = np.array(
        [[0.464130, 0.464130, 0.419165, 0.419165, 0.593283, 0.593283,
          0.738350, 0.738350, 0.661638, 0.661638, 0.866774, 0.866774,
          0.520789, 0.520789, 0.476968, 0.476968, 0.604341, 0.604341,
          0.760207, 0.760207, 0.635773, 0.635773, 0.850218, 0.850218],
         [0.669636, 0.669636, 0.628966, 0.628966, 0.736057, 0.736057,
          0.895927, 0.895927, 0.755559, 0.755559, 0.954359, 0.954359,
          0.692621, 0.692621, 0.652363, 0.652363, 0.737517, 0.737517,
          0.899558, 0.899558, 0.745984, 0.745984, 0.946840, 0.946840],
         [0.751109, 0.751109, 0.711716, 0.711716, 0.778357, 0.778357,
          0.940779, 0.940779, 0.784530, 0.784530, 0.980604, 0.980604,
          0.759940, 0.759940, 0.720652, 0.720652, 0.778552, 0.778552,
          0.941606, 0.941606, 0.781035, 0.781035, 0.977731, 0.977731]],
        dtype=np.float32)
    expected_state = np.array(
        [[0.710660, 0.710660, 0.464130, 0.464130, 0.877293, 0.877293,
          0.593283, 0.593283, 0.958505, 0.958505, 0.661638, 0.661638,
          0.785405, 0.785405, 0.520789, 0.520789, 0.890836, 0.890836,
          0.604341, 0.604341, 0.928512, 0.928512, 0.635773, 0.635773],
         [0.967579, 0.967579, 0.669636, 0.669636, 1.038811, 1.038811,
          0.736057, 0.736057, 1.058201, 1.058201, 0.755559, 0.755559,
          0.993088, 0.993088, 0.692621, 0.692621, 1.040288, 1.040288,
          0.737517, 0.737517, 1.048773, 1.048773, 0.745984, 0.745984],
         [1.053842, 1.053842, 0.751109, 0.751109, 1.079919, 1.079919,
          0.778357, 0.778357, 1.085620, 1.085620, 0.784530, 0.784530,
          1.062455, 1.062455, 0.759940, 0.759940, 1.080101, 1.080101,
          0.778552, 0.778552, 1.082402, 1.082402, 0.781035, 0.781035]],
        dtype=np.float32)
    _bidirectional(0, expected_output, expected_state)


def test_testBidirectionGridLSTMCellWithSliceOffset():
    """Upstream ``RNNCellTest.testBidirectionGridLSTMCellWithSliceOffset``."""
    expected_output = np.array(
        [[0.464130, 0.464130, 0.419165, 0.419165, 0.593283, 0.593283,
          0.738350, 0.738350, 0.661638, 0.661638, 0.866774, 0.866774,
          0.322645, 0.322645, 0.276068, 0.276068, 0.584654, 0.584654,
          0.690292, 0.690292, 0.640446, 0.640446, 0.840071, 0.840071],
         [0.669636, 0.669636, 0.628966, 0.628966, 0.736057, 0.736057,
          0.895927, 0.895927, 0.755559, 0.755559, 0.954359, 0.954359,
          0.493625, 0.493625, 0.449236, 0.449236, 0.730828, 0.730828,
          0.865996, 0.865996, 0.749429, 0.749429, 0.944958, 0.944958],
         [0.751109, 0.751109, 0.711716, 0.711716, 0.778357, 0.778357,
          0.940779, 0.940779, 0.784530, 0.784530, 0.980604, 0.980604,
          0.608587, 0.608587, 0.566683, 0.566683, 0.777345, 0.777345,
          0.925820, 0.925820, 0.782597, 0.782597, 0.976858, 0.976858]],
        dtype=np.float32)
    expected_state = np.array(
        [[0.710660, 0.710660, 0.464130, 0.464130, 0.877293, 0.877293,
          0.593283, 0.593283, 0.958505, 0.958505, 0.661638, 0.661638,
          0.516575, 0.516575, 0.322645, 0.322645, 0.866628, 0.866628,
          0.584654, 0.584654, 0.934002, 0.934002, 0.640446, 0.640446],
         [0.967579, 0.967579, 0.669636, 0.669636, 1.038811, 1.038811,
          0.736057, 0.736057, 1.058201, 1.058201, 0.755559, 0.755559,
          0.749836, 0.749836, 0.493625, 0.493625, 1.033488, 1.033488,
          0.730828, 0.730828, 1.052186, 1.052186, 0.749429, 0.749429],
         [1.053842, 1.053842, 0.751109, 0.751109, 1.079919, 1.079919,
          0.778357, 0.778357, 1.085620, 1.085620, 0.784530, 0.784530,
          0.895999, 0.895999, 0.608587, 0.608587, 1.078978, 1.078978,
          0.777345, 0.777345, 1.083843, 1.083843, 0.782597, 0.782597]],
        dtype=np.float32)
    _bidirectional(1, expected_output, expected_state)
