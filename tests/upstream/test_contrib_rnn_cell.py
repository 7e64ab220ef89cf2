"""Port of TensorFlow r1.15 ``tensorflow/contrib/rnn/python/kernel_tests/rnn_cell_test.py``
(``RNNCellTest``, ``LayerNormBasicLSTMCellTest``, ``CompiledWrapperTest``,
``WeightNormLSTMCellTest``; read at commit e08079463bf4).  The tests of ``GridLSTMCell``,
``BidirectionalGridLSTMCell`` and ``TimeFreqLSTMCell`` are not in this file.

Upstream builds its cells under ``variable_scope("root", initializer=constant_initializer(v))``:
every variable created without an initializer of its own starts at ``v``, the others (biases,
layer-norm gains and shifts, IndRNN recurrent weights, PhasedLSTM periods) keep the cell's
own.  :func:`scope_initializer` does the same to a built rnnkit cell through its TF variable
layout: the variables whose TF initializer is ``get_variable``'s default (glorot-uniform)
take ``v``.  Variable scopes, Keras layers and XLA are not ported (see
``tests/upstream/notes/contrib_rnn_cells.md``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit import compat, initializers, nest, rnn

#: ``tf.get_variable``'s default initializer: what a scope initializer replaces.
_SCOPE_DEFAULT = repr(initializers.resolve("initializer", "glorot_uniform"))


def scope_initializer(cell, value: float, also: tuple[str, ...] = ()):
    """TF's ``variable_scope(initializer=constant_initializer(value))`` on a built cell: every
    TF variable without an initializer of its own set to ``value`` (and those named in
    ``also``, whose TF initializer falls back to the scope's)."""
    scoped = {"root": cell}  # wrappers without a TF name of their own too
    layout = compat.collect(cell, "root")
    values = compat.tf_variables_of(scoped)

    def takes_scope(name: str) -> bool:
        init = layout[name].initializer
        leaf = name.rsplit("/", 1)[-1]
        if leaf in also:
            return True
        if init is None:  # no initializer recorded: TF's get_variable default unless a bias
            return leaf not in ("bias", "biases")
        return repr(init) == _SCOPE_DEFAULT

    compat.load_tf_variables(scoped, {
        n: np.full_like(v, value) if takes_scope(n) else v for n, v in values.items()})
    return cell


def run_cell(cell, x, m, value=0.5, also=()):
    """Build ``cell`` on ``x``, apply the scope initializer, run one step."""
    rnn.build(cell, x, m)
    scope_initializer(cell, value, also)
    with torch.no_grad():
        return cell(x, m)


def t(a, dtype=torch.float32):
    return torch.tensor(a, dtype=dtype)


def full(shape, value, dtype=torch.float32):
    return torch.full(shape, value, dtype=dtype)


X3 = [[1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0], [3.0, 3.0, 3.0, 3.0]]


def close(actual, expected, rtol=1e-6, atol=1e-6):
    """``assertAllClose``'s default tolerances."""
    a = actual.detach().float().numpy() if isinstance(actual, torch.Tensor) else actual
    np.testing.assert_allclose(a, expected, rtol=rtol, atol=atol)


# --------------------------------------------------------------------------- RNNCellTest


@pytest.mark.parametrize("cls", ["IndRNNCell", "IndyGRUCell", "IndyLSTMCell"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cells_build(cls, dtype):
    """RNNCellTest.testCellsBuild: built for ``[5, 7]`` inputs, the zero state and zero
    inputs give ``[5, 3]`` outputs (and, with zero biases on the candidate, zeros)."""
    cell = getattr(rnn, cls)(3, dtype=dtype)
    cell.build(torch.Size((5, 7)))
    state = cell.get_initial_state(inputs=None, batch_size=5, dtype=dtype)
    out, _ = cell(torch.zeros(5, 7, dtype=dtype), state)
    assert list(out.shape) == [5, 3]
    assert out.dtype == dtype
    # upstream checks the shape; zero inputs and state give zero outputs in all three
    close(out, np.zeros((5, 3)), atol=0)


def test_ind_rnn_cell():
    """RNNCellTest.testIndRNNCell."""
    cell = rnn.IndRNNCell(2)
    x, m = t([[1.0, 1.0]]), t([[0.1, 0.1]])
    g, _ = run_cell(cell, x, m)
    assert compat.tf_variable_names(cell) == [
        "ind_rnn_cell/bias", "ind_rnn_cell/kernel_u", "ind_rnn_cell/kernel_w"]
    assert all(p.requires_grad for p in cell.parameters())  # no non-trainable variables
    assert g.shape == (1, 2)
    # upstream checks the shape; kernel_w is 0.5, kernel_u keeps its own uniform(-1, 1)
    # draw, so tanh(x W + u * m) is closed form in the cell's u
    u = compat.tf_variables_of(cell)["ind_rnn_cell/kernel_u"]
    close(g, np.tanh(1.0 + 0.1 * u))


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_indy_lstm_cell(dtype):
    """RNNCellTest.testIndyLSTMCell (TF's checkpoint-dependency names and ``get_config``,
    Keras tracking, are not ported)."""
    cell = rnn.MultiRNNCell([rnn.IndyLSTMCell(2) for _ in range(2)])
    assert cell.dtype is None
    x = t([[1.0, 1.0]], dtype)
    state_0 = (full((1, 2), 0.1, dtype),) * 2
    state_1 = (full((1, 2), 0.1, dtype),) * 2
    g, (out_state_0, out_state_1) = run_cell(cell, x, (state_0, state_1))
    assert cell.dtype == dtype  # the layer infers the input type
    assert compat.tf_variable_names(cell) == sorted(
        f"multi_rnn_cell/cell_{i}/indy_lstm_cell/{n}"
        for i in range(2) for n in ("kernel_w", "kernel_u", "bias"))
    assert all(p.requires_grad for p in cell.parameters())
    # only the range, as upstream (kernel_u keeps its random draw)
    for res in (g, *out_state_0, *out_state_1):
        assert res.dtype == dtype
        assert ((res >= -1.0) & (res <= 1.0)).all()
    # input_size != num_units
    x = t([[1.0, 1.0, 1.0]], dtype)
    state = (full((1, 2), 0.1, dtype),) * 2
    res = run_cell(rnn.IndyLSTMCell(2), x, state)
    assert len(res) == 2
    assert res[0].shape == (1, 2) and res[1][0].shape == res[1][1].shape == (1, 2)


def test_lstm_cell_layer_norm():
    """RNNCellTest.testLSTMCellLayerNorm (contrib ``LayerNormLSTMCell``)."""
    num_units, num_proj, batch_size, input_size = 2, 3, 1, 4
    cell = rnn.LayerNormLSTMCell(num_units=num_units, num_proj=num_proj, forget_bias=1.0,
                                 layer_norm=True, norm_gain=1.0, norm_shift=0.0)
    state = rnn.LSTMStateTuple(full((batch_size, num_units), 0.1),
                               full((batch_size, num_proj), 0.1))
    g, out_m = run_cell(cell, torch.ones(batch_size, input_size), state)
    assert g.shape == (batch_size, num_proj)
    assert out_m[0].shape == (batch_size, num_units)
    assert out_m[1].shape == (batch_size, num_proj)
    # upstream checks the shapes; with every kernel 0.5 each gate is the same in every unit,
    # so its normalisation is 0 (beta): i = j = o = 0, f = forget_bias, and the new c, equal
    # in every unit too, normalises to 0; h = sigmoid(0) * tanh(0) = 0
    close(g, np.zeros((1, 3)))
    close(out_m[0], np.zeros((1, 2)))
    close(out_m[1], np.zeros((1, 3)))


def test_output_projection_wrapper():
    """RNNCellTest.testOutputProjectionWrapper."""
    cell = rnn.OutputProjectionWrapper(rnn.GRUCell(3), 2)
    g, new_m = run_cell(cell, t([[1.0, 1.0, 1.0]]), t([[0.1, 0.1, 0.1]]))
    assert new_m.shape == (1, 3)
    close(g, [[0.231907, 0.231907]])


def test_input_projection_wrapper():
    """RNNCellTest.testInputProjectionWrapper."""
    cell = rnn.InputProjectionWrapper(rnn.GRUCell(3), num_proj=3)
    g, new_m = run_cell(cell, t([[1.0, 1.0]]), t([[0.1, 0.1, 0.1]]))
    assert new_m.shape == (1, 3)
    close(g, [[0.154605, 0.154605, 0.154605]])


def test_embedding_wrapper():
    """RNNCellTest.testEmbeddingWrapper: TF's EmbeddingWrapper takes the scope's
    initializer for its embedding when it has none of its own (``also``)."""
    cell = rnn.EmbeddingWrapper(rnn.GRUCell(2), embedding_classes=3, embedding_size=2)
    assert cell.output_size == 2
    g, new_m = run_cell(cell, torch.tensor([[1]]), t([[0.1, 0.1]]), also=("embedding",))
    assert new_m.shape == (1, 2)
    close(g, [[0.17139, 0.17139]])


def test_embedding_wrapper_with_dynamic_rnn():
    """RNNCellTest.testEmbeddingWrapperWithDynamicRnn: the output type is ``dtype``'s, not
    the integer inputs' (upstream only runs it; the cell stepped by hand agrees)."""
    inputs = torch.tensor([[[0], [0]]], dtype=torch.int64)
    cell = rnn.EmbeddingWrapper(rnn.BasicLSTMCell(1, state_is_tuple=True),
                                embedding_classes=1, embedding_size=2)
    with torch.no_grad():
        outputs, _ = rnn.dynamic_rnn(cell, inputs, sequence_length=torch.tensor([2]),
                                     dtype=torch.float32)
        state = cell.zero_state(1, torch.float32)
        steps = []
        for i in range(2):
            out, state = cell(inputs[:, i], state)
            steps.append(out)
    assert outputs.dtype == torch.float32
    assert outputs.shape == (1, 2, 1)
    close(outputs, torch.stack(steps, 1).numpy())


def test_sru_cell():
    """RNNCellTest.testSRUCell."""
    g, _ = run_cell(rnn.SRUCell(2), t([[1.0, 1.0]]), t([[0.1, 0.1]]))
    close(g, [[0.509682, 0.509682]])


def test_sru_cell_bias_type():
    """RNNCellTest.testSRUCellBiasType: the bias takes the cell's dtype, or the inputs'.
    TF also builds an int32 SRUCell; rnnkit's cells take floating-point dtypes only and
    refuse ``int32`` by name."""
    cell = rnn.SRUCell(10)
    cell.build(torch.Size((2, 3, 5)))
    assert cell.bias.dtype == torch.float32
    with pytest.raises(TypeError, match="dtype"):
        rnn.SRUCell(10, dtype=torch.int32)
    rng = np.random.RandomState(0)
    cell_input = torch.tensor(rng.rand(2, 5), dtype=torch.float16)
    cell_state = torch.tensor(rng.rand(2, 10), dtype=torch.float16)
    cell = rnn.SRUCell(10)
    cell(cell_input, cell_state)
    assert cell.bias.dtype == torch.float16


def test_sru_cell_with_diff_size():
    """RNNCellTest.testSRUCellWithDiffSize."""
    g, _ = run_cell(rnn.SRUCell(2), t([[1.0, 1.0, 1.0]]), t([[0.1, 0.1]]))
    close(g, [[0.55255556, 0.55255556]])


def test_coupled_input_forget_gate_lstm_cell():
    """RNNCellTest.testCoupledInputForgetGateLSTMCell."""
    num_units, batch_size = 2, 3
    expected_output = [[0.121753, 0.121753], [0.103349, 0.103349], [0.100178, 0.100178]]
    expected_state = [[0.137523, 0.137523, 0.121753, 0.121753],
                      [0.105450, 0.105450, 0.103349, 0.103349],
                      [0.100742, 0.100742, 0.100178, 0.100178]]
    cell = rnn.CoupledInputForgetGateLSTMCell(num_units=num_units, forget_bias=1.0,
                                              state_is_tuple=False)
    output, state = run_cell(cell, t(X3), full((batch_size, 2 * num_units), 0.1))
    close(output, expected_output)
    close(state, expected_state)


def test_attention_cell_wrapper_failures():
    """RNNCellTest.testAttentionCellWrapperFailures (TF's messages)."""
    with pytest.raises(TypeError, match="cell"):
        rnn.AttentionCellWrapper(None, 0)
    num_units = 8
    for state_is_tuple in (False, True):
        lstm_cell = rnn.BasicLSTMCell(num_units, state_is_tuple=state_is_tuple)
        with pytest.raises(ValueError, match="attn_length should be greater than zero, got 0"):
            rnn.AttentionCellWrapper(lstm_cell, 0, state_is_tuple=state_is_tuple)
        with pytest.raises(ValueError,
                           match="attn_length should be greater than zero, got -1"):
            rnn.AttentionCellWrapper(lstm_cell, -1, state_is_tuple=state_is_tuple)
    lstm_cell = rnn.BasicLSTMCell(num_units, state_is_tuple=True)
    with pytest.raises(ValueError, match="Cell returns tuple of states, but the flag "
                                         "state_is_tuple is not set. State size is: *"):
        rnn.AttentionCellWrapper(lstm_cell, 4, state_is_tuple=False)


def _attention_cell(state_is_tuple, num_units=8, attn_length=16):
    lstm_cell = rnn.BasicLSTMCell(num_units, state_is_tuple=state_is_tuple)
    return rnn.AttentionCellWrapper(lstm_cell, attn_length, state_is_tuple=state_is_tuple)


def _attention_state(state_is_tuple, value, batch_size=3, num_units=8, attn_length=16):
    if state_is_tuple:
        s = full((batch_size, num_units), value)
        return ((s, s), s, full((batch_size, attn_length * num_units), value))
    return full((batch_size, num_units * 2 + num_units + attn_length * num_units), value)


@pytest.mark.parametrize("state_is_tuple", [False, True])
def test_attention_cell_wrapper_zeros(state_is_tuple):
    """RNNCellTest.testAttentionCellWrapperZeros (default initializers)."""
    num_units, attn_length, batch_size, input_size = 8, 16, 3, 4
    cell = _attention_cell(state_is_tuple)
    with torch.no_grad():
        output, state = cell(torch.zeros(batch_size, input_size),
                             _attention_state(state_is_tuple, 0.0))
    assert output.shape == (batch_size, num_units)
    if state_is_tuple:
        assert len(state) == 3 and len(state[0]) == 2
        assert state[0][0].shape == state[0][1].shape == (batch_size, num_units)
        assert state[1].shape == (batch_size, num_units)
        assert state[2].shape == (batch_size, attn_length * num_units)
        tensors = [output, *nest.flatten(state)]
    else:
        assert state.shape == (batch_size, num_units * 2 + num_units + attn_length * num_units)
        tensors = [output, state]
    assert sum(float(x.abs().sum()) for x in tensors) < 1e-6


@pytest.mark.parametrize("state_is_tuple", [False, True])
def test_attention_cell_wrapper_values(state_is_tuple):
    """RNNCellTest.testAttentionCellWrapperValues: different inputs, different outputs and
    states (default initializers, so no values upstream); here also each row is what the
    cell gives that row alone."""
    batch_size = 3
    cell = _attention_cell(state_is_tuple)
    state0 = _attention_state(state_is_tuple, 0.1)
    with torch.no_grad():
        output, state = cell(t(X3), state0)
        rows = [cell(t(X3)[i:i + 1], nest.map_structure(lambda s, i=i: s[i:i + 1], state0))
                for i in range(batch_size)]
    flat = torch.cat(nest.flatten(state), 1) if state_is_tuple else state
    for i in range(1, batch_size):
        assert float(np.linalg.norm(output[0] - output[i])) > 1e-6
        assert float(np.linalg.norm(flat[0] - flat[i])) > 1e-6
    for i, (out_i, state_i) in enumerate(rows):
        close(output[i:i + 1], out_i.numpy(), rtol=1e-5)
        close(flat[i:i + 1], (torch.cat(nest.flatten(state_i), 1) if state_is_tuple
                              else state_i).numpy(), rtol=1e-5)


def test_nas_cell():
    """RNNCellTest.testNASCell."""
    num_units, batch_size = 6, 3
    expected_output = np.repeat([[0.576751], [0.618936], [0.627393]], num_units, 1)
    expected_state = np.array([
        [0.71579772] * 6 + [0.57675087] * 6,
        [0.78041625] * 6 + [0.6189357] * 6,
        [0.79457647] * 4 + [0.79457653] * 2 + [0.62739348] * 6])
    cell = rnn.NASCell(num_units=num_units)
    s = full((batch_size, num_units), 0.1)
    output, state = run_cell(cell, t(X3), rnn.LSTMStateTuple(s, s))
    close(output, expected_output)
    assert len(state) == 2
    new_c, new_h = state
    assert new_c.shape == new_h.shape == (batch_size, num_units)
    close(torch.cat([new_c, new_h], 1), expected_state)


def test_nas_cell_proj():
    """RNNCellTest.testNASCellProj."""
    num_units, batch_size, num_proj = 6, 3, 5
    expected_output = np.repeat([[1.697418], [1.840037], [1.873985]], num_proj, 1)
    expected_state = np.array([
        [0.69855207] * 6 + [1.69741797] * 5,
        [0.77073824] * 6 + [1.84003687] * 5,
        [0.78973997] * 6 + [1.87398517] * 5])
    cell = rnn.NASCell(num_units=num_units, num_proj=num_proj)
    state0 = rnn.LSTMStateTuple(full((batch_size, num_units), 0.1),
                                full((batch_size, num_proj), 0.1))
    output, state = run_cell(cell, t(X3), state0)
    close(output, expected_output)
    new_c, new_h = state
    assert new_c.shape == (batch_size, num_units)
    assert new_h.shape == (batch_size, num_proj)
    close(torch.cat([new_c, new_h], 1), expected_state)


def test_ugrnn_cell():
    """RNNCellTest.testUGRNNCell."""
    expected = [[0.13752282, 0.13752282], [0.10545051, 0.10545051], [0.10074195, 0.10074195]]
    output, state = run_cell(rnn.UGRNNCell(num_units=2), t(X3), full((3, 2), 0.1))
    close(output, expected)
    close(state, expected)


def test_intersection_rnn_cell():
    """RNNCellTest.testIntersectionRNNCell."""
    expected_state = [[0.13752282, 0.13752282], [0.10545051, 0.10545051],
                      [0.10074195, 0.10074195]]
    expected_output = [[2.00431061, 2.00431061], [4.00060606, 4.00060606],
                       [6.00008249, 6.00008249]]
    cell = rnn.IntersectionRNNCell(num_units=2, num_in_proj=2)
    output, state = run_cell(cell, t(X3), full((3, 2), 0.1))
    close(output, expected_output)
    close(state, expected_state)


def test_intersection_rnn_cell_failure():
    """RNNCellTest.testIntersectionRNNCellFailure (TF's message)."""
    cell = rnn.IntersectionRNNCell(num_units=2)
    with pytest.raises(ValueError, match="Must have input size == output size for "
                                         "Intersection RNN. To fix, num_in_proj should "
                                         "be set to num_units at cell init."):
        cell(t(X3), full((3, 2), 0.1))


def test_phased_lstm_cell():
    """RNNCellTest.testPhasedLSTMCell: the output is the new ``h``.  Upstream's values come
    from TF's random ``period`` and ``phase`` initializers (not replayable without TF 1.x);
    the step's values are checked against TF's equations in ``tests/test_contrib_cells.py``."""
    batch_size = 3
    cell = rnn.PhasedLSTMCell(num_units=2)
    times = torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64)
    state0 = rnn.LSTMStateTuple(torch.zeros(batch_size, 2), torch.zeros(batch_size, 2))
    output, state = run_cell(cell, (times, t(X3)), state0)
    assert len(state) == 2
    close(output, state.h.numpy())
    assert state.c.shape == state.h.shape == (batch_size, 2)
    zeros = cell.get_initial_state(inputs=(times, t(X3)), dtype=torch.float32)
    assert zeros.c.dtype == torch.float32 and zeros.c.shape == (batch_size, 2)
    # the float64 times with float32 inputs and state through dynamic_rnn give the step's
    with torch.no_grad():
        outputs, final = rnn.dynamic_rnn(cell, (times[:, None], t(X3)[:, None]),
                                         initial_state=state0)
    close(outputs[:, 0], output.numpy())
    close(final.c, state.c.numpy())


def _conv_lstm(cls, shape, filter_size, value, x):
    cell = cls(input_shape=shape, kernel_shape=filter_size, output_channels=1)
    hidden = cell.zero_state(x.shape[0], torch.float32)
    hidden = rnn.LSTMStateTuple(x.clone(), hidden[1])  # upstream feeds c with x's values
    return run_cell(cell, x, hidden, value)


CONV_C = (1.4375670191, 2.7542609292)
CONV_H = (0.6529865603, 0.8736877431)


@pytest.mark.parametrize("cls,shape,filter_size,value", [
    ("Conv1DLSTMCell", [2, 1], [3], 1.0 / 2.0),
    ("Conv2DLSTMCell", [2, 2, 1], [3, 3], 1.0 / 4.0),
    ("Conv3DLSTMCell", [2, 2, 2, 1], [3, 3, 3], 1.0 / 8.0),
], ids=["testConv1DLSTMCell", "testConv2DLSTMCell", "testConv3DLSTMCell"])
def test_conv_lstm_cell(cls, shape, filter_size, value):
    """RNNCellTest.testConv1DLSTMCell, testConv2DLSTMCell, testConv3DLSTMCell (one test
    each upstream, 3 here)."""
    x = torch.stack([torch.ones(shape), torch.full(shape, 2.0)])
    output, state = _conv_lstm(getattr(rnn, cls), shape, filter_size, value, x)
    assert len(state) == 2
    close(output, state.h.numpy())
    expected_c = np.stack([np.full(shape, CONV_C[0]), np.full(shape, CONV_C[1])])
    expected_h = np.stack([np.full(shape, CONV_H[0]), np.full(shape, CONV_H[1])])
    close(state.c, expected_c)
    close(state.h, expected_h)


def test_highway_wrapper():
    """RNNCellTest.testHighwayWrapper: with a very negative carry bias the carry gate is
    open, so the output is the cell's and the state untouched."""
    x, m = t([[1.0, 1.0, 1.0]]), t([[0.1, 0.1, 0.1]])
    g, m_new = run_cell(rnn.GRUCell(3), x, m)
    g_res, m_new_res = run_cell(rnn.HighwayWrapper(rnn.GRUCell(3), carry_bias_init=-100.0),
                                x, m)
    close(g_res, g.numpy())
    close(m_new, m_new_res.numpy())


@pytest.mark.parametrize("num_inputs", [4, 5])
def test_glstm_cell(num_inputs):
    """RNNCellTest.testGLSTMCell: one group is LSTMCell; with two groups each group is an
    LSTMCell of half the size on half the inputs (num_inputs = num_units [+ groups])."""
    batch_size, num_units = 2, 4
    x = torch.ones(batch_size, num_inputs)
    gcell = rnn.GLSTMCell(num_units=num_units, number_of_groups=1)
    cell = rnn.LSTMCell(num_units=num_units)
    assert isinstance(gcell.state_size, tuple)
    zero_state = gcell.zero_state(batch_size=batch_size, dtype=torch.float32)
    gh, gs = run_cell(gcell, x, zero_state)
    h, s = run_cell(cell, x, zero_state)
    close(gh, h.numpy(), rtol=1e-5)
    close(torch.cat(gs, 1), torch.cat(s, 1).numpy(), rtol=1e-5)

    groups = 2
    num_inputs = num_units + (num_inputs - num_units) * groups  # num_units (+ groups)
    gcell = rnn.GLSTMCell(num_units=num_units, number_of_groups=groups)
    gh, _ = run_cell(gcell, torch.ones(batch_size, num_inputs),
                     gcell.zero_state(batch_size=batch_size, dtype=torch.float32))
    cell = rnn.LSTMCell(num_units=num_units // groups)
    h, _ = run_cell(cell, torch.ones(batch_size, num_inputs // groups),
                    cell.zero_state(batch_size=batch_size, dtype=torch.float32))
    close(gh[:, :num_units // groups], h.numpy(), rtol=1e-5)
    close(gh[:, num_units // groups:], h.numpy(), rtol=1e-5)


def test_glstm_cell_failure():
    """RNNCellTest.testGLSTMCellFailure: an input depth not divisible into the groups.
    Upstream's statically unknown depth (a ``[batch, None]`` placeholder) is TF graph-mode
    shape machinery: a PyTorch tensor always has its depth."""
    gcell = rnn.GLSTMCell(num_units=4, number_of_groups=2)
    zero_state = gcell.zero_state(batch_size=2, dtype=torch.float32)
    with pytest.raises(ValueError,
                       match=r"input size \(3\) must be divisible by number_of_groups \(2\)"):
        gcell(torch.zeros(2, 3), zero_state)


def test_cfn_cell():
    """RNNCellTest.testCFNCell."""
    cell = rnn.CFNCell(units=2, kernel_initializer=initializers.constant_initializer(0.5))
    x, m = t([[1.0, 1.0]]), t([[0.1, 0.1]])
    rnn.build(cell, x, m)
    with torch.no_grad():
        g, _ = cell(x, m)
    close(g, [[0.17188203, 0.17188203]])
    cell = rnn.CFNCell(units=2, kernel_initializer=initializers.constant_initializer(0.5))
    with torch.no_grad():
        g, _ = cell(t([[1.0, 1.0, 1.0]]), m)
    close(g, [[0.15535763, 0.15535763]])


def _end_to_end(cell):
    """Upstream's end-to-end check: 100 sequences of 4 steps of 10 features through
    ``dynamic_rnn``, a softmax cross-entropy on the final state, one SGD step (lr 0.001)."""
    rng = np.random.RandomState(1337)
    x_train = torch.tensor(rng.randn(100, 4, 10), dtype=torch.float32)
    y_train = torch.nn.functional.one_hot(torch.tensor(rng.randint(0, 5, 100)), 5).float()
    outputs, state = rnn.dynamic_rnn(cell, x_train, dtype=torch.float32)
    assert outputs.shape == (100, 4, 5) and state.shape == (100, 5)
    close(outputs[:, -1], state.detach().numpy())
    loss = torch.nn.functional.cross_entropy(state, y_train)
    before = [p.detach().clone() for p in cell.parameters()]
    optimizer = torch.optim.SGD(cell.parameters(), lr=0.001)
    loss.backward()
    optimizer.step()
    for p, b in zip(cell.parameters(), before, strict=True):
        close(p, (b - 0.001 * p.grad).numpy())


def test_cfn_cell_end_to_end():
    """RNNCellTest.testCFNCellEndToEnd (Keras's random test data: numpy's here)."""
    _end_to_end(rnn.CFNCell(5))


def test_minimal_rnn_cell():
    """RNNCellTest.testMinimalRNNCell."""
    cell = rnn.MinimalRNNCell(units=2, kernel_initializer=initializers.constant_initializer(0.5))
    x, m = t([[1.0, 1.0]]), t([[0.1, 0.1]])
    with torch.no_grad():
        g, _ = cell(x, m)
    close(g, [[0.18899589, 0.18899589]])
    cell = rnn.MinimalRNNCell(units=2, kernel_initializer=initializers.constant_initializer(0.5))
    with torch.no_grad():
        g, _ = cell(t([[1.0, 1.0, 1.0]]), m)
    close(g, [[0.19554167, 0.19554167]])


def test_minimal_rnn_cell_end_to_end():
    """RNNCellTest.testMinimalRNNCellEndToEnd (Keras's random test data: numpy's here)."""
    _end_to_end(rnn.MinimalRNNCell(5))


# ------------------------------------------------------------- LayerNormBasicLSTMCellTest

LN_H = [[-0.38079708, 0.38079708]]
LN_C = [[-1.0, 1.0]]


def _ln_states():
    c0, h0 = 0.1 * t([[0.0, 1.0]]), 0.1 * t([[2.0, 3.0]])
    c1, h1 = 0.1 * t([[4.0, 5.0]]), 0.1 * t([[6.0, 7.0]])
    return (rnn.LSTMStateTuple(c0, h0), rnn.LSTMStateTuple(c1, h1))


def test_ln_basic_lstm_cell():
    """LayerNormBasicLSTMCellTest.testBasicLSTMCell (the values upstream calculated)."""
    cell = rnn.MultiRNNCell([rnn.LayerNormBasicLSTMCell(2) for _ in range(2)])
    g, out_m = run_cell(cell, t([[1.0, 1.0]]), _ln_states())
    close(g, LN_H, rtol=1e-5)
    for s in out_m:
        close(s.c, LN_C, rtol=1e-5)
        close(s.h, LN_H, rtol=1e-5)
    # input_size != num_units
    c, h = 0.1 * t([[0.0, 1.0]]), 0.1 * t([[2.0, 3.0]])
    g, out_m = run_cell(rnn.LayerNormBasicLSTMCell(2), t([[1.0, 1.0, 1.0]]),
                        rnn.LSTMStateTuple(c, h))
    close(g, LN_H, rtol=1e-5)
    close(out_m.c, LN_C, rtol=1e-5)
    close(out_m.h, LN_H, rtol=1e-5)


def test_ln_basic_lstm_cell_without_norm():
    """LayerNormBasicLSTMCellTest.testBasicLSTMCellWithoutNorm."""
    cell = rnn.MultiRNNCell([rnn.LayerNormBasicLSTMCell(2, layer_norm=False)
                             for _ in range(2)])
    g, out_m = run_cell(cell, t([[1.0, 1.0]]), _ln_states())
    close(g, [[0.70230919, 0.72581059]], rtol=1e-5)
    close(out_m[0].c, [[0.8020075, 0.89599884]], rtol=1e-5)
    close(out_m[0].h, [[0.56668288, 0.60858738]], rtol=1e-5)
    close(out_m[1].c, [[1.17500675, 1.26892781]], rtol=1e-5)
    close(out_m[1].h, [[0.70230919, 0.72581059]], rtol=1e-5)
    # input_size != num_units
    c, h = 0.1 * t([[0.0, 1.0]]), 0.1 * t([[2.0, 3.0]])
    g, out_m = run_cell(rnn.LayerNormBasicLSTMCell(2, layer_norm=False),
                        t([[1.0, 1.0, 1.0]]), rnn.LSTMStateTuple(c, h))
    close(g, [[0.64121795, 0.68166804]], rtol=1e-5)
    close(out_m.c, [[0.88477188, 0.98103917]], rtol=1e-5)
    close(out_m.h, [[0.64121795, 0.68166804]], rtol=1e-5)


def test_ln_basic_lstm_cell_with_state_tuple():
    """LayerNormBasicLSTMCellTest.testBasicLSTMCellWithStateTuple."""
    cell = rnn.MultiRNNCell([rnn.LayerNormBasicLSTMCell(2) for _ in range(2)])
    h, (s0, s1) = run_cell(cell, t([[1.0, 1.0]]), _ln_states())
    close(h, LN_H, rtol=1e-5)
    for s in (s0, s1):
        close(s.c, LN_C, rtol=1e-5)
        close(s.h, LN_H, rtol=1e-5)


def test_ln_basic_lstm_cell_with_state_tuple_layer_norm():
    """LayerNormBasicLSTMCellTest.testBasicLSTMCellWithStateTupleLayerNorm: contrib's
    LayerNormLSTMCell gives LayerNormBasicLSTMCell's values."""
    cell = rnn.MultiRNNCell([rnn.LayerNormLSTMCell(2, layer_norm=True, norm_gain=1.0,
                                                   norm_shift=0.0) for _ in range(2)])
    h, (s0, s1) = run_cell(cell, t([[1.0, 1.0]]), _ln_states())
    close(h, LN_H, rtol=1e-5)
    for s in (s0, s1):
        close(s.c, LN_C, rtol=1e-5)
        close(s.h, LN_H, rtol=1e-5)


def test_ln_basic_lstm_cell_with_dropout():
    """LayerNormBasicLSTMCellTest.testBasicLSTMCellWithDropout: every unit of ``c`` is the
    kept or the dropped value, ``h`` agrees with it, and 1 to 3 of the 5 are dropped.
    Upstream's dropout is TF's unseeded draw; PyTorch's generator is seeded here."""
    keep_prob, num_units = 0.5, 5
    c_high, c_low = 2.9998924946, 0.999983298578
    h_low, h_high = 0.761552567265, 0.995008519604
    torch.manual_seed(0)
    cell = rnn.LayerNormBasicLSTMCell(num_units, layer_norm=False,
                                      dropout_keep_prob=keep_prob)
    ones = torch.ones(1, 5)
    g, s = run_cell(cell, ones, rnn.LSTMStateTuple(ones, ones), value=1.0)
    actual_h, actual_c, state_h = g[0].numpy(), s.c[0].numpy(), s.h[0].numpy()
    np.testing.assert_array_equal(actual_h, state_h)
    dropped = 0
    for citem, hitem in zip(actual_c, state_h, strict=True):
        if abs(citem - c_low) < 1e-4:
            assert abs(hitem - h_low) < 1e-4
            dropped += 1
        else:
            assert abs(citem - c_high) < 1e-4
            assert abs(hitem - h_high) < 1e-4
    assert dropped in (1, 2, 3)


# ------------------------------------------------------------------- CompiledWrapperTest


def test_multi_rnn_cell_with_state_tuple():
    """CompiledWrapperTest.testMultiRNNCellWithStateTuple."""
    x = t([[1.0, 1.0]])
    m_bad = torch.zeros(1, 4)
    m_good = (t([[0.1, 0.1]]), t([[0.1, 0.1]]))
    with pytest.raises(ValueError, match="Expected state .* a tuple"):  # TF's own regex
        rnn.MultiRNNCell([rnn.GRUCell(2) for _ in range(2)], state_is_tuple=True)(x, m_bad)
    cell = rnn.MultiRNNCell([rnn.GRUCell(2) for _ in range(2)], state_is_tuple=True)
    _, ml = run_cell(cell, x, m_good)
    close(ml[0], [[0.175991, 0.175991]])
    close(ml[1], [[0.13248, 0.13248]])


# ---------------------------------------------------------------- WeightNormLSTMCellTest


@pytest.mark.parametrize("norm,use_peepholes,expected_c,expected_h", [
    (False, False, [[0.65937078, 0.74983585]], [[0.44923624, 0.49362513]]),
    (False, True, [[0.65937084, 0.7574988]], [[0.4792085, 0.53470564]]),
    (True, False, [[0.50125383, 0.58805949]], [[0.32770363, 0.37397948]]),
    (True, True, [[0.50125383, 0.59587258]], [[0.35041603, 0.40873795]]),
], ids=["testBasicCell", "testNonbasicCell", "testBasicCellWithNorm",
        "testNonBasicCellWithNorm"])
def test_weight_norm_lstm_cell(norm, use_peepholes, expected_c, expected_h):
    """WeightNormLSTMCellTest.testBasicCell, testNonbasicCell, testBasicCellWithNorm,
    testNonBasicCellWithNorm (4 tests upstream, one case each here)."""
    cell = rnn.WeightNormLSTMCell(2, norm=norm, use_peepholes=use_peepholes)
    state0 = rnn.LSTMStateTuple(0.1 * t([[0.0, 1.0]]), 0.1 * t([[2.0, 3.0]]))
    _, state = run_cell(cell, t([[1.0, 1.0]]), state0)
    close(state.c, expected_c, rtol=1e-5)
    close(state.h, expected_h, rtol=1e-5)
