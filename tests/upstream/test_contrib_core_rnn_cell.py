"""Port of TensorFlow r1.15 ``tensorflow/contrib/rnn/python/kernel_tests/core_rnn_cell_test.py``
(``RNNCellTest``, ``DropoutWrapperTest``; read at commit 13aeec48521c).

Upstream builds its cells under ``variable_scope("root", initializer=constant_initializer(v))``:
every variable created without an initializer of its own (kernels, peepholes, projections,
embeddings) starts at ``v``, biases keep the cell's own initializer (zeros; 1.0 for the GRU
gates).  :func:`scope_initializer` does the same to a built rnnkit cell through its TF
variable layout.  Variable scopes, sessions and device traces are not ported (see
``tests/upstream/notes/contrib_core.md``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit import compat, rnn


def scope_initializer(cell: rnn.RNNCell, value: float) -> rnn.RNNCell:
    """TF's ``variable_scope(initializer=constant_initializer(value))`` on a built cell:
    every TF variable but the biases set to ``value``."""
    variables = compat.tf_variables_of(cell)
    compat.load_tf_variables(cell, {
        name: v if name.rsplit("/", 1)[-1] == "bias" else np.full_like(v, value)
        for name, v in variables.items()})
    return cell


def run_cell(cell, x, m, value=0.5):
    """Build ``cell`` on ``x``, apply the scope initializer, run one step."""
    rnn.build(cell, x, m)
    scope_initializer(cell, value)
    with torch.no_grad():
        return cell(x, m)


def t(a, dtype=torch.float32):
    return torch.tensor(a, dtype=dtype)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_lstm(x, c, h, w, forget_bias=1.0, num_proj=None, wp=None):
    """TF's LSTM step with every kernel entry ``w`` and zero bias (``[i, j, f, o]``)."""
    z = (x.sum(-1, keepdims=True) + h.sum(-1, keepdims=True)) * w
    i = j = o = z
    f = z + forget_bias
    new_c = c * sigmoid(f) + sigmoid(i) * np.tanh(j)
    new_h = sigmoid(o) * np.tanh(new_c)
    if num_proj is not None:
        new_h = np.broadcast_to(new_h.sum(-1, keepdims=True) * wp, (x.shape[0], num_proj))
    return new_c * np.ones_like(c), new_h * np.ones((1, new_h.shape[-1]))


# --------------------------------------------------------------------------- RNNCellTest


@pytest.mark.skipif(not hasattr(rnn, "_Linear"), reason="pending: rnnkit.rnn._Linear (issue 25)")
def test_linear():
    """RNNCellTest.testLinear (values; the scope-sharing checks are not ported)."""
    x = t([[1.0, 2.0]])
    linear = rnn._Linear([x], 2, False, kernel_initializer=1.0)
    with torch.no_grad():
        res = linear([x])
    np.testing.assert_allclose(res.numpy(), [[3.0, 3.0]], rtol=1e-6, atol=1e-6)


def test_basic_rnn_cell():
    """RNNCellTest.testBasicRNNCell."""
    cell = rnn.BasicRNNCell(2)
    g, _ = run_cell(cell, t([[1.0, 1.0]]), t([[0.1, 0.1]]))
    assert compat.tf_variable_names(cell) == ["basic_rnn_cell/bias", "basic_rnn_cell/kernel"]
    assert all(p.requires_grad for p in cell.parameters())
    assert g.shape == (1, 2)
    # upstream checks the shape only; with kernel 0.5 and zero bias the value is closed form
    np.testing.assert_allclose(g.numpy(), np.tanh([[0.5 * 2.2] * 2]), rtol=1e-6)


def test_basic_rnn_cell_not_trainable():
    """RNNCellTest.testBasicRNNCellNotTrainable: TF's custom getter made the variables
    non-trainable; rnnkit keeps TF's trainable flag on the parameters (README)."""
    cell = rnn.BasicRNNCell(2)
    rnn.build(cell, t([[1.0, 1.0]]), t([[0.1, 0.1]]))
    cell.requires_grad_(False)
    g, _ = run_cell(cell, t([[1.0, 1.0]]), t([[0.1, 0.1]]))
    assert not [p for p in cell.parameters() if p.requires_grad]
    assert compat.tf_variable_names(cell) == ["basic_rnn_cell/bias", "basic_rnn_cell/kernel"]
    assert len(list(cell.parameters())) > 0
    assert g.shape == (1, 2)
    np.testing.assert_allclose(g.numpy(), np.tanh([[0.5 * 2.2] * 2]), rtol=1e-6)


def test_gru_cell():
    """RNNCellTest.testGRUCell."""
    g, _ = run_cell(rnn.GRUCell(2), t([[1.0, 1.0]]), t([[0.1, 0.1]]))
    np.testing.assert_allclose(g.numpy(), [[0.175991, 0.175991]], rtol=1e-6, atol=1e-6)
    # input_size != num_units
    g, _ = run_cell(rnn.GRUCell(2), t([[1.0, 1.0, 1.0]]), t([[0.1, 0.1]]))
    np.testing.assert_allclose(g.numpy(), [[0.156736, 0.156736]], rtol=1e-6, atol=1e-6)


@pytest.mark.skipif(not hasattr(rnn, "SRUCell"), reason="pending: rnnkit.rnn.SRUCell (issue 25)")
def test_sru_cell():
    """RNNCellTest.testSRUCell."""
    g, _ = run_cell(rnn.SRUCell(2), t([[1.0, 1.0]]), t([[0.1, 0.1]]))
    np.testing.assert_allclose(g.numpy(), [[0.509682, 0.509682]], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_basic_lstm_cell(dtype):
    """RNNCellTest.testBasicLSTMCell (float16 and float32)."""
    cell = rnn.MultiRNNCell([rnn.BasicLSTMCell(2, state_is_tuple=False) for _ in range(2)],
                            state_is_tuple=False)
    assert cell.dtype is None
    x = t([[1.0, 1.0]], dtype)
    m = torch.full((1, 8), 0.1, dtype=dtype)
    g, out_m = run_cell(cell, x, m)
    assert cell.dtype == dtype  # the layer infers the input type
    expected_names = [
        "multi_rnn_cell/cell_0/basic_lstm_cell/bias",
        "multi_rnn_cell/cell_0/basic_lstm_cell/kernel",
        "multi_rnn_cell/cell_1/basic_lstm_cell/bias",
        "multi_rnn_cell/cell_1/basic_lstm_cell/kernel",
    ]
    assert compat.tf_variable_names(cell) == expected_names
    assert all(p.requires_grad for p in cell.parameters())
    assert g.dtype == out_m.dtype == dtype
    np.testing.assert_allclose(g.float().numpy(), [[0.240, 0.240]], rtol=1e-2, atol=1e-2)
    expected_mem = [[0.689, 0.689, 0.448, 0.448, 0.398, 0.398, 0.240, 0.240]]
    np.testing.assert_allclose(out_m.float().numpy(), expected_mem, rtol=1e-2, atol=1e-2)

    # input_size != num_units: upstream runs it without a value check; closed form here
    x = t([[1.0, 1.0, 1.0]], dtype)
    m = torch.full((1, 4), 0.1, dtype=dtype)
    g, out_m = run_cell(rnn.BasicLSTMCell(2, state_is_tuple=False), x, m)
    c, h = np_lstm(np.ones((1, 3)), np.full((1, 2), 0.1), np.full((1, 2), 0.1), 0.5)
    np.testing.assert_allclose(g.float().numpy(), h, rtol=1e-2, atol=1e-2)
    np.testing.assert_allclose(out_m.float().numpy(), np.hstack([c, h]), rtol=1e-2, atol=1e-2)


def test_basic_lstm_cell_dimension0_error():
    """RNNCellTest.testBasicLSTMCellDimension0Error: x and m must agree on dimension 0."""
    num_units, batch_size, input_size = 2, 3, 4
    x = torch.ones(batch_size, input_size)
    m = torch.full((batch_size - 1, 2 * num_units), 0.1)
    with pytest.raises(ValueError):
        rnn.BasicLSTMCell(num_units, state_is_tuple=False)(x, m)


def test_basic_lstm_cell_state_size_error():
    """RNNCellTest.testBasicLSTMCellStateSizeError: the state must be num_units * 2 wide."""
    num_units, batch_size, input_size = 2, 3, 4
    x = torch.ones(batch_size, input_size)
    m = torch.full((batch_size, 3 * num_units), 0.1)
    with pytest.raises(ValueError):
        rnn.BasicLSTMCell(num_units, state_is_tuple=False)(x, m)


def test_basic_lstm_cell_state_tuple_type():
    """RNNCellTest.testBasicLSTMCellStateTupleType."""
    x = torch.zeros(1, 2)
    m0 = (torch.zeros(1, 2),) * 2
    m1 = (torch.zeros(1, 2),) * 2
    cell = rnn.MultiRNNCell([rnn.BasicLSTMCell(2) for _ in range(2)], state_is_tuple=True)
    assert isinstance(cell.state_size, tuple)
    assert isinstance(cell.state_size[0], rnn.LSTMStateTuple)
    assert isinstance(cell.state_size[1], rnn.LSTMStateTuple)

    # plain tuples in
    _, (out_m0, out_m1) = cell(x, (m0, m1))
    assert isinstance(out_m0, rnn.LSTMStateTuple)
    assert isinstance(out_m1, rnn.LSTMStateTuple)

    # LSTMStateTuples in
    zero_state = cell.zero_state(1, torch.float32)
    assert isinstance(zero_state, tuple)
    assert isinstance(zero_state[0], rnn.LSTMStateTuple)
    assert isinstance(zero_state[1], rnn.LSTMStateTuple)
    _, (out_m0, out_m1) = cell(x, zero_state)
    assert isinstance(out_m0, rnn.LSTMStateTuple)
    assert isinstance(out_m1, rnn.LSTMStateTuple)


def test_basic_lstm_cell_with_state_tuple():
    """RNNCellTest.testBasicLSTMCellWithStateTuple."""
    cell = rnn.MultiRNNCell([rnn.BasicLSTMCell(2, state_is_tuple=False) for _ in range(2)],
                            state_is_tuple=True)
    m = (torch.full((1, 4), 0.1), torch.full((1, 4), 0.1))
    g, (out_m0, out_m1) = run_cell(cell, t([[1.0, 1.0]]), m)
    np.testing.assert_allclose(g.numpy(), [[0.24024698, 0.24024698]], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out_m0.numpy(),
                               [[0.68967271, 0.68967271, 0.44848421, 0.44848421]],
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out_m1.numpy(),
                               [[0.39897051, 0.39897051, 0.24024698, 0.24024698]],
                               rtol=1e-6, atol=1e-6)


def test_lstm_cell():
    """RNNCellTest.testLSTMCell."""
    num_units, num_proj, batch_size = 8, 6, 3
    state_size = num_units + num_proj
    cell = rnn.LSTMCell(num_units=num_units, num_proj=num_proj, forget_bias=1.0,
                        state_is_tuple=False)
    x = t([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    m = torch.full((batch_size, state_size), 0.1)
    output, state = run_cell(cell, x, m)
    assert output.shape == (batch_size, num_proj)
    assert state.shape == (batch_size, state_size)
    # different inputs, so different outputs and states
    for i in range(1, batch_size):
        assert float(np.linalg.norm(output[0] - output[i])) > 1e-6
        assert float(np.linalg.norm(state[0] - state[i])) > 1e-6
    # upstream checks no value; the closed form with every weight 0.5
    c, h = np_lstm(x.numpy().astype(np.float64), np.full((3, num_units), 0.1),
                   np.full((3, num_proj), 0.1), 0.5, num_proj=num_proj, wp=0.5)
    np.testing.assert_allclose(output.numpy(), h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state.numpy(), np.hstack([c, h]), rtol=1e-5, atol=1e-6)


def test_lstm_cell_variables():
    """RNNCellTest.testLSTMCellVariables (names relative to the cell's scope)."""
    cell = rnn.LSTMCell(num_units=8, num_proj=6, forget_bias=1.0, state_is_tuple=False)
    cell(torch.zeros(3, 2), torch.zeros(3, 14))
    assert compat.tf_variable_names(cell) == [
        "lstm_cell/bias", "lstm_cell/kernel", "lstm_cell/projection/kernel"]


@pytest.mark.skipif(not hasattr(rnn, "LayerNormLSTMCell"),
                    reason="pending: rnnkit.rnn.LayerNormLSTMCell (issue 25)")
def test_lstm_cell_layer_norm():
    """RNNCellTest.testLSTMCellLayerNorm (contrib ``LayerNormLSTMCell``)."""
    num_units, num_proj, batch_size, input_size = 2, 3, 1, 4
    cell = rnn.LayerNormLSTMCell(num_units=num_units, num_proj=num_proj, forget_bias=1.0,
                                 layer_norm=True, norm_gain=1.0, norm_shift=0.0)
    state = rnn.LSTMStateTuple(torch.full((batch_size, num_units), 0.1),
                               torch.full((batch_size, num_proj), 0.1))
    g, out_m = run_cell(cell, torch.ones(batch_size, input_size), state)
    assert g.shape == (batch_size, num_proj)
    assert out_m[0].shape == (batch_size, num_units)
    assert out_m[1].shape == (batch_size, num_proj)
    assert torch.isfinite(g).all()
    # every row sees the same inputs, so the same outputs
    for i in range(1, batch_size):
        assert float(np.linalg.norm(g[0] - g[i])) < 1e-6
        assert float(np.linalg.norm(out_m[0][0] - out_m[0][i])) < 1e-6


def test_output_projection_wrapper():
    """RNNCellTest.testOutputProjectionWrapper."""
    cell = rnn.OutputProjectionWrapper(rnn.GRUCell(3), 2)
    g, new_m = run_cell(cell, t([[1.0, 1.0, 1.0]]), t([[0.1, 0.1, 0.1]]))
    assert new_m.shape == (1, 3)
    np.testing.assert_allclose(g.numpy(), [[0.231907, 0.231907]], rtol=1e-6, atol=1e-6)


def test_input_projection_wrapper():
    """RNNCellTest.testInputProjectionWrapper."""
    cell = rnn.InputProjectionWrapper(rnn.GRUCell(3), num_proj=3)
    g, new_m = run_cell(cell, t([[1.0, 1.0]]), t([[0.1, 0.1, 0.1]]))
    assert new_m.shape == (1, 3)
    np.testing.assert_allclose(g.numpy(), [[0.154605, 0.154605, 0.154605]],
                               rtol=1e-6, atol=1e-6)


def test_residual_wrapper():
    """RNNCellTest.testResidualWrapper (one GRUCell shared, as TF's reused scope)."""
    x, m = t([[1.0, 1.0, 1.0]]), t([[0.1, 0.1, 0.1]])
    base_cell = rnn.GRUCell(3)
    g, m_new = run_cell(base_cell, x, m)
    with torch.no_grad():
        g_res, m_new_res = rnn.ResidualWrapper(base_cell)(x, m)
    np.testing.assert_allclose(g_res.numpy(), g.numpy() + [1.0, 1.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(m_new.numpy(), m_new_res.numpy(), rtol=1e-6)


def test_residual_wrapper_with_slice():
    """RNNCellTest.testResidualWrapperWithSlice."""
    x, m = t([[1.0, 1.0, 1.0, 1.0, 1.0]]), t([[0.1, 0.1, 0.1]])
    base_cell = rnn.GRUCell(3)
    g, m_new = run_cell(base_cell, x, m)

    def residual_with_slice_fn(inp, out):
        return inp[:, :3] + out

    with torch.no_grad():
        g_res, m_new_res = rnn.ResidualWrapper(base_cell, residual_with_slice_fn)(x, m)
    np.testing.assert_allclose(g_res.numpy(), g.numpy() + [1.0, 1.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(m_new.numpy(), m_new_res.numpy(), rtol=1e-6)


def test_device_wrapper():
    """RNNCellTest.testDeviceWrapper: the outputs are made on the wrapper's device.  PyTorch
    has one CPU device, so TF's ``/cpu:14159`` is the CPU."""
    cell = rnn.DeviceWrapper(rnn.GRUCell(3), "/cpu:14159")
    outputs, _ = cell(torch.zeros(1, 3), torch.zeros(1, 3))
    assert outputs.device.type == "cpu"
    assert cell.device == torch.device("cpu")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_device_wrapper_dynamic_execution_nodes_are_all_properly_located():
    """RNNCellTest.testDeviceWrapperDynamicExecutionNodesAreAllProperlyLocated: TF reads
    the run's node placement; here the cell's parameters and results are on the GPU while
    the inputs stay on the CPU, with the values of the same cell on the CPU."""
    x = torch.ones(1, 1, 3)  # TF feeds zeros: with zeros every output here is 0
    cpu_cell = rnn.GRUCell(3)
    rnn.build(cpu_cell, x[:, 0], torch.zeros(1, 3))
    scope_initializer(cpu_cell, 0.5)
    gpu_cell = rnn.GRUCell(3)
    rnn.build(gpu_cell, x[:, 0], torch.zeros(1, 3))
    compat.load_tf_variables(gpu_cell, compat.tf_variables_of(cpu_cell))
    cell = rnn.DeviceWrapper(gpu_cell, "/gpu:0")
    with torch.no_grad():
        outputs, _ = rnn.dynamic_rnn(cell, x, dtype=torch.float32)
        expected, _ = rnn.dynamic_rnn(cpu_cell, x, dtype=torch.float32)
    assert all(p.device.type == "cuda" for p in gpu_cell.parameters())
    assert outputs.device.type == "cuda"
    assert expected.abs().min() > 0.05  # a real output, not zeros
    np.testing.assert_allclose(outputs.cpu().numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not hasattr(rnn, "EmbeddingWrapper"),
                    reason="pending: rnnkit.rnn.EmbeddingWrapper (issue 25)")
def test_embedding_wrapper():
    """RNNCellTest.testEmbeddingWrapper."""
    embedding_cell = rnn.EmbeddingWrapper(rnn.GRUCell(2), embedding_classes=3,
                                          embedding_size=2)
    assert embedding_cell.output_size == 2
    x = torch.tensor([[1]], dtype=torch.int64)  # TF: int32 ids; rnnkit's ids are int64
    g, new_m = run_cell(embedding_cell, x, t([[0.1, 0.1]]))
    assert new_m.shape == (1, 2)
    np.testing.assert_allclose(g.numpy(), [[0.17139, 0.17139]], rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not hasattr(rnn, "EmbeddingWrapper"),
                    reason="pending: rnnkit.rnn.EmbeddingWrapper (issue 25)")
def test_embedding_wrapper_with_dynamic_rnn():
    """RNNCellTest.testEmbeddingWrapperWithDynamicRnn: the output dtype is the embedding's,
    not the ids'."""
    inputs = torch.tensor([[[0], [0]]], dtype=torch.int64)
    input_lengths = torch.tensor([2], dtype=torch.int64)
    embedding_cell = rnn.EmbeddingWrapper(rnn.BasicLSTMCell(1, state_is_tuple=True),
                                          embedding_classes=1, embedding_size=2)
    outputs, _ = rnn.dynamic_rnn(embedding_cell, inputs, sequence_length=input_lengths,
                                 dtype=torch.float32)
    assert outputs.dtype == torch.float32
    assert outputs.shape == (1, 2, 1)
    assert torch.isfinite(outputs).all()


def test_multi_rnn_cell():
    """RNNCellTest.testMultiRNNCell."""
    cell = rnn.MultiRNNCell([rnn.GRUCell(2) for _ in range(2)], state_is_tuple=False)
    _, ml = run_cell(cell, t([[1.0, 1.0]]), t([[0.1, 0.1, 0.1, 0.1]]))
    np.testing.assert_allclose(ml.numpy(), [[0.175991, 0.175991, 0.13248, 0.13248]],
                               rtol=1e-5, atol=1e-6)


def test_multi_rnn_cell_with_state_tuple():
    """RNNCellTest.testMultiRNNCellWithStateTuple."""
    x = t([[1.0, 1.0]])
    m_bad = torch.zeros(1, 4)
    m_good = (t([[0.1, 0.1]]), t([[0.1, 0.1]]))
    with pytest.raises(ValueError, match="Expected state .* a tuple"):  # TF's own regex
        rnn.MultiRNNCell([rnn.GRUCell(2) for _ in range(2)], state_is_tuple=True)(x, m_bad)
    cell = rnn.MultiRNNCell([rnn.GRUCell(2) for _ in range(2)], state_is_tuple=True)
    _, ml = run_cell(cell, x, m_good)
    # these match testMultiRNNCell's
    np.testing.assert_allclose(ml[0].numpy(), [[0.175991, 0.175991]], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ml[1].numpy(), [[0.13248, 0.13248]], rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------- DropoutWrapperTest

TRUE_FULL_OUTPUT = np.array([[[0.751109, 0.751109, 0.751109]],
                             [[0.895509, 0.895509, 0.895509]]], dtype=np.float32)
TRUE_FULL_FINAL_C = np.array([[1.949385, 1.949385, 1.949385]], dtype=np.float32)


def _dropout_run(batch_size=None, time_steps=None, **kwargs):
    """Upstream's ``_testDropoutWrapper``: a DropoutWrapper around ``LSTMCell(3)`` (scope
    initializer 0.5) run time-major from ``c = h = 0.1``."""
    if batch_size is None and time_steps is None:
        batch_size, time_steps = 1, 2
        x = t([[[2.0, 2.0, 2.0]], [[1.0, 1.0, 1.0]]])
    else:
        x = torch.from_numpy(np.random.randn(time_steps, batch_size, 3).astype(np.float32))
    m = rnn.LSTMStateTuple(*[t([[0.1, 0.1, 0.1]] * batch_size)] * 2)
    inner = rnn.LSTMCell(3)
    rnn.build(inner, x[0], m)
    scope_initializer(inner, 0.5)
    cell = rnn.DropoutWrapper(inner, dtype=x.dtype, **kwargs)  # train() mode: dropout on
    with torch.no_grad():
        outputs, final_state = rnn.dynamic_rnn(cell, x, time_major=True, initial_state=m)
    assert outputs.shape == (time_steps, batch_size, 3)
    assert final_state.c.shape == (batch_size, 3)
    assert final_state.h.shape == (batch_size, 3)
    return outputs.numpy(), rnn.LSTMStateTuple(final_state.c.numpy(), final_state.h.numpy())


def test_dropout_wrapper_keep_all_constant_input():
    """DropoutWrapperTest.testDropoutWrapperKeepAllConstantInput (keep probs as tensors)."""
    keep = torch.ones([])
    out, state = _dropout_run(input_keep_prob=keep, output_keep_prob=keep,
                              state_keep_prob=keep)
    np.testing.assert_allclose(out, TRUE_FULL_OUTPUT, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(state.h, TRUE_FULL_OUTPUT[1], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(state.c, TRUE_FULL_FINAL_C, rtol=1e-6, atol=1e-6)


def test_dropout_wrapper_keep_all():
    """DropoutWrapperTest.testDropoutWrapperKeepAll (TF: a variable; here a parameter)."""
    keep = torch.nn.Parameter(torch.tensor(1.0))
    out, state = _dropout_run(input_keep_prob=keep, output_keep_prob=keep,
                              state_keep_prob=keep)
    np.testing.assert_allclose(out, TRUE_FULL_OUTPUT, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(state.h, TRUE_FULL_OUTPUT[1], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(state.c, TRUE_FULL_FINAL_C, rtol=1e-6, atol=1e-6)


def test_dropout_wrapper_with_seed():
    """DropoutWrapperTest.testDropoutWrapperWithSeed: the same seed, the same results."""
    keep_some = 0.5
    torch.manual_seed(2)
    res_1 = _dropout_run(input_keep_prob=keep_some, output_keep_prob=keep_some,
                         state_keep_prob=keep_some, seed=10)
    torch.manual_seed(2)
    res_2 = _dropout_run(input_keep_prob=keep_some, output_keep_prob=keep_some,
                         state_keep_prob=keep_some, seed=10)
    np.testing.assert_allclose(res_1[0], res_2[0])
    np.testing.assert_allclose(res_1[1].c, res_2[1].c)
    np.testing.assert_allclose(res_1[1].h, res_2[1].h)


def test_dropout_wrapper_keep_no_output():
    """DropoutWrapperTest.testDropoutWrapperKeepNoOutput."""
    out, state = _dropout_run(input_keep_prob=1.0, output_keep_prob=1e-10,
                              state_keep_prob=1.0)
    np.testing.assert_allclose(out, np.zeros(out.shape), atol=1e-6)
    np.testing.assert_allclose(state.h, TRUE_FULL_OUTPUT[1], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(state.c, TRUE_FULL_FINAL_C, rtol=1e-6, atol=1e-6)


def test_dropout_wrapper_keep_no_state_except_lstm_cell_memory():
    """DropoutWrapperTest.testDropoutWrapperKeepNoStateExceptLSTMCellMemory: state dropout
    never drops the memory ``c`` of an LSTMStateTuple."""
    out, state = _dropout_run(input_keep_prob=1.0, output_keep_prob=1.0,
                              state_keep_prob=1e-10)
    true_c_state = np.array([[1.713925, 1.713925, 1.713925]], dtype=np.float32)
    np.testing.assert_allclose(out[0], TRUE_FULL_OUTPUT[0], rtol=1e-6, atol=1e-6)
    # the second output sees the zeroed h state
    assert np.linalg.norm(TRUE_FULL_OUTPUT[1] - out[1]) > 1e-4
    np.testing.assert_allclose(state.h, np.zeros(state.h.shape), atol=1e-6)
    np.testing.assert_allclose(state.c, true_c_state, rtol=1e-6, atol=1e-6)


def test_dropout_wrapper_keep_no_input():
    """DropoutWrapperTest.testDropoutWrapperKeepNoInput: zeroed inputs change everything."""
    out, state = _dropout_run(input_keep_prob=1e-10, output_keep_prob=1.0,
                              state_keep_prob=1.0)
    assert np.isfinite(out).all() and np.isfinite(state.c).all()
    assert np.linalg.norm(out - TRUE_FULL_OUTPUT) > 1e-4
    assert np.linalg.norm(state.h - TRUE_FULL_OUTPUT[1]) > 1e-4
    assert np.linalg.norm(state.c - TRUE_FULL_FINAL_C) > 1e-4


def _assert_variational_masks(out, state, check_batch=True):
    output_mask = np.abs(out) > 1e-6
    for time_step in output_mask:
        # the same output dropout pattern at every step
        np.testing.assert_array_equal(output_mask[0], time_step)
        if check_batch:
            for batch_entry in time_step:  # the same mask for every batch entry
                np.testing.assert_array_equal(batch_entry, time_step[0])
    if check_batch:
        for mask in (np.abs(state.c) > 1e-6, np.abs(state.h) > 1e-6):
            for batch_entry in mask:
                np.testing.assert_array_equal(batch_entry, mask[0])


def test_dropout_wrapper_recurrent_output():
    """DropoutWrapperTest.testDropoutWrapperRecurrentOutput."""
    out, state = _dropout_run(input_keep_prob=1.0, output_keep_prob=0.8, state_keep_prob=1.0,
                              variational_recurrent=True, input_size=3, batch_size=5,
                              time_steps=7)
    assert np.isfinite(out).all()
    _assert_variational_masks(out, state, check_batch=False)


def test_dropout_wrapper_recurrent_state_input_and_output():
    """DropoutWrapperTest.testDropoutWrapperRecurrentStateInputAndOutput."""
    out, state = _dropout_run(input_keep_prob=0.9, output_keep_prob=0.9, state_keep_prob=0.9,
                              variational_recurrent=True, input_size=3, batch_size=5,
                              time_steps=7)
    assert np.isfinite(out).all()
    _assert_variational_masks(out, state)


def test_dropout_wrapper_recurrent_state_input_and_output_with_seed():
    """DropoutWrapperTest.testDropoutWrapperRecurrentStateInputAndOutputWithSeed."""
    kwargs = dict(input_keep_prob=0.9, output_keep_prob=0.9, state_keep_prob=0.9,
                  variational_recurrent=True, input_size=3, batch_size=5, time_steps=7,
                  seed=-234987)
    torch.manual_seed(2347)
    np.random.seed(23487)
    res0 = _dropout_run(**kwargs)
    torch.manual_seed(2347)
    np.random.seed(23487)
    res1 = _dropout_run(**kwargs)
    _assert_variational_masks(*res0)
    np.testing.assert_allclose(res0[0], res1[0])
    np.testing.assert_allclose(res0[1].c, res1[1].c)
    np.testing.assert_allclose(res0[1].h, res1[1].h)
