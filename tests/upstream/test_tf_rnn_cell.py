"""Port of TensorFlow's ``tensorflow/python/kernel_tests/nn_ops/rnn_cell_test.py``.

Upstream: tensorflow/tensorflow master, blob 198c80751ab4b95c628d1f05cefc79ea0c6f4358 (the
version of the file read for this port; TF 2.15-era ``tf.compat.v1.nn.rnn_cell`` and
``tf.compat.v1.nn`` drivers).

Each test is named after its upstream method and replays its inputs (upstream's ``setUp``
seeds numpy with 23489 before every test; the autouse fixture below does the same) and its
expected values and tolerances.  TF's ``variable_scope(initializer=...)`` has no rnnkit
counterpart: :func:`scope_initializer` writes what it would have produced (kernels,
peepholes and projections from the scope's initializer, biases from their own initializer)
through the cell's TF variable layout.  Upstream's placeholders fed once for every step
(``max_length * [placeholder]``) become the same tensor at every step.  The tests that are
not translatable (variable scopes, TF kernels, device placement traces, Keras
serialisation, SavedModel) are listed in ``tests/upstream/notes/tf_nn.md``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from rnnkit import compat, initializers, nest, rnn

SEED = 23489


@pytest.fixture(autouse=True)
def _numpy_seed():
    """Upstream's ``setUp``: ``np.random.seed(23489)`` before each test."""
    np.random.seed(SEED)


def assert_all_close(a, b, rtol=1e-6, atol=1e-6):
    """TF's ``assertAllClose``: ``|a - b| <= atol + rtol * |b|``, with its defaults (1e-6)
    raised to 1e-3 when either side is float16, as TF does."""
    a = _np(a)
    b = _np(b)
    if a.dtype == np.float16 or b.dtype == np.float16:
        rtol, atol = max(rtol, 1e-3), max(atol, 1e-3)
    np.testing.assert_allclose(a.astype(np.float64), b.astype(np.float64), rtol=rtol,
                               atol=atol)


def assert_all_equal(a, b):
    np.testing.assert_array_equal(_np(a), _np(b))


def _np(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, (list, tuple)):
        return np.array([_np(v) for v in x])
    return np.asarray(x)


def hstack(state):
    """``np.hstack`` of a state's tensors (TF's ``np.hstack(nest.flatten(state))``)."""
    return np.hstack([_np(t) for t in nest.flatten(state)])


def scope_initializer(cell, value, *example):
    """What ``with variable_scope(..., initializer=constant_initializer(value))`` gives a TF
    cell: every variable without an initializer of its own (kernels, peepholes,
    projections) is ``value``; biases keep the initializer the cell gives them.  The cell is
    built by calling it on ``example`` (TF builds at the first call too)."""
    rnn.build(cell, *example)
    current = compat.tf_variables_of(cell)
    compat.load_tf_variables(cell, {
        name: v if name.rsplit("/", 1)[-1] == "bias" else np.full_like(v, value)
        for name, v in current.items()})
    return cell


def _t(x, dtype=torch.float32):
    return torch.as_tensor(np.asarray(x), dtype=dtype)


def _uniform(low=-0.01, high=0.01, seed=SEED):
    return initializers.random_uniform_initializer(low, high, seed=seed)


class Plus1RNNCell(rnn.RNNCell):
    """RNN cell generating ``(output, new_state) = (input + 1, state + 1)`` (upstream's
    overrides ``__call__``, as here)."""

    @property
    def output_size(self):
        return 5

    @property
    def state_size(self):
        return 5

    def __call__(self, input_, state, scope=None):
        return input_ + 1, state + 1


class DummyMultiDimensionalLSTM(rnn.RNNCell):
    """``(output, new_state) = (input + 1, state + 1)`` for inputs of any rank after
    ``[time, batch]``."""

    def __init__(self, dims):
        super().__init__()
        if not isinstance(dims, tuple):
            raise TypeError("The dimensions passed to DummyMultiDimensionalLSTM should be a "
                            "tuple of ints.")
        self._dims = dims
        self._output_size = torch.Size(dims)
        self._state_size = (torch.Size(dims), torch.Size(dims))

    @property
    def output_size(self):
        return self._output_size

    @property
    def state_size(self):
        return self._state_size

    def __call__(self, input_, state, scope=None):
        h, c = state
        return input_ + 1, (h + 1, c + 1)


class NestedRNNCell(rnn.RNNCell):
    """Input, output and state are pairs of tensors; each is incremented by one."""

    @property
    def output_size(self):
        return (5, 5)

    @property
    def state_size(self):
        return (6, 6)

    def __call__(self, input_, state, scope=None):
        h, c = state
        x, y = input_
        return (x + 1, y + 1), (h + 1, c + 1)


class StateSaver:
    """Upstream's ``TestStateSaver``: zeros for ``state(name)``, records ``save_state``."""

    def __init__(self, batch_size, state_size):
        self._batch_size = batch_size
        self._state_size = state_size
        self.saved_state = {}

    def state(self, name):
        if isinstance(self._state_size, dict):
            state_size = self._state_size[name]
        else:
            state_size = self._state_size
        if isinstance(state_size, int):
            state_size = (state_size,)
        elif not isinstance(state_size, tuple):
            raise TypeError("state_size should either be an int or a tuple")
        return torch.zeros((self._batch_size, *state_size))

    def save_state(self, name, state):
        self.saved_state[name] = state
        return state

    @property
    def batch_size(self):
        return self._batch_size

    @property
    def state_size(self):
        return self._state_size


# --- RNNTest ------------------------------------------------------------------------------


def test_invalid_sequence_length_shape():
    """RNNTest.testInvalidSequenceLengthShape (static_rnn)."""
    cell = Plus1RNNCell()
    inputs = [torch.zeros(3, 4)]
    # TF: "must be a vector"; rnnkit names the argument and the shape it needs
    with pytest.raises(ValueError, match=r"sequence_length must have shape \[batch_size\]"):
        rnn.static_rnn(cell, inputs, dtype=torch.float32, sequence_length=4)


def test_rnn():
    """RNNTest.testRNN."""
    cell = Plus1RNNCell()
    batch_size, input_size, max_length = 2, 5, 8
    input_value = _t(np.random.randn(batch_size, input_size))
    inputs = max_length * [input_value]
    outputs, state = rnn.static_rnn(cell, inputs, dtype=torch.float32)
    assert len(outputs) == len(inputs)
    for out, inp in zip(outputs, inputs, strict=True):
        assert out.shape == inp.shape
        assert out.dtype == inp.dtype
        assert_all_close(out, input_value + 1.0)
    assert_all_close(state, max_length * np.ones((batch_size, input_size), np.float32))


def test_dropout():
    """RNNTest.testDropout."""
    cell = Plus1RNNCell()
    full_dropout_cell = rnn.DropoutWrapper(cell, input_keep_prob=1e-6, seed=0)
    # upstream: _trackable_children()["cell"] is cell
    assert full_dropout_cell.wrapped_cell is cell
    batch_size, input_size, max_length = 2, 5, 8
    input_value = _t(np.random.randn(batch_size, input_size))
    inputs = max_length * [input_value]
    outputs, state = rnn.static_rnn(cell, inputs, dtype=torch.float32)
    dropped_outputs, _ = rnn.static_rnn(full_dropout_cell, inputs, dtype=torch.float32)
    assert len(outputs) == len(inputs)
    for out, inp in zip(outputs, inputs, strict=True):
        assert list(out.shape) == list(inp.shape)
        assert out.dtype == inp.dtype
    for v in outputs:
        assert_all_close(v, input_value + 1.0)
    for d_v in dropped_outputs[:-1]:  # dropped-out inputs (all zeros) plus 1.0
        assert_all_close(d_v, np.ones_like(input_value.numpy()))


def test_dynamic_calculation():
    """RNNTest.testDynamicCalculation."""
    cell = Plus1RNNCell()
    batch_size, input_size, max_length = 2, 5, 8
    input_value = _t(np.random.randn(batch_size, input_size))
    inputs = max_length * [input_value]
    sequence_length = torch.tensor([2, 3], dtype=torch.int64)
    dynamic_outputs, dynamic_state = rnn.static_rnn(
        cell, inputs, sequence_length=sequence_length, dtype=torch.float32)
    assert len(dynamic_outputs) == len(inputs)
    # outputs are fully calculated for t = 0, 1
    for v in dynamic_outputs[:2]:
        assert_all_close(v, input_value + 1.0)
    # outputs at t = 2 are zero for entry 0, calculated for entry 1
    assert_all_close(dynamic_outputs[2],
                     np.vstack((np.zeros(input_size), 1.0 + input_value[1, :].numpy())))
    # outputs at t = 3+ are zero
    for v in dynamic_outputs[3:]:
        assert_all_equal(v, np.zeros((batch_size, input_size), np.float32))
    # final states: entry 0 from t=1, entry 1 from t=2
    assert_all_equal(dynamic_state, np.vstack((2.0 * np.ones(input_size),
                                               3.0 * np.ones(input_size))).astype(np.float32))


# --- LSTMTest -----------------------------------------------------------------------------


def test_dtype():
    """LSTMTest.testDType (GitHub issue 16228)."""
    lstm = rnn.LSTMCell(10)
    input_tensor = torch.ones(10, 50)
    lstm.build(input_tensor.shape)
    assert lstm.bias.dtype == torch.float32
    for dtype in (torch.float16, torch.float32, torch.float64):
        lstm = rnn.LSTMCell(10, dtype=dtype)
        lstm.build(torch.ones(10, 50).shape)
        assert lstm.bias.dtype == dtype


def _lstm_inputs(batch_size=2, input_size=5, max_length=8, dtype=torch.float32):
    input_value = _t(np.random.randn(batch_size, input_size), dtype)
    return input_value, max_length * [input_value]


def test_no_proj_no_sharding():
    """LSTMTest.testNoProjNoSharding."""
    num_units, batch_size = 3, 2
    cell = rnn.LSTMCell(num_units, initializer=_uniform(), state_is_tuple=False)
    _, inputs = _lstm_inputs()
    outputs, _ = rnn.static_rnn(cell, inputs, dtype=torch.float32)
    assert len(outputs) == len(inputs)
    for out in outputs:
        assert list(out.shape) == [batch_size, num_units]
        assert torch.isfinite(out).all()


def test_cell_clipping():
    """LSTMTest.testCellClipping."""
    num_units, batch_size = 3, 2
    cell = rnn.LSTMCell(num_units, use_peepholes=True, cell_clip=0.0, initializer=_uniform(),
                        state_is_tuple=False)
    _, inputs = _lstm_inputs()
    outputs, _ = rnn.static_rnn(cell, inputs, dtype=torch.float32)
    assert len(outputs) == len(inputs)
    for value in outputs:
        assert list(value.shape) == [batch_size, num_units]
        # if cell c is clipped to 0, tanh(c) = 0 => m == 0
        assert_all_equal(value, np.zeros((batch_size, num_units), np.float32))


def test_no_proj_no_sharding_simple_state_saver():
    """LSTMTest.testNoProjNoShardingSimpleStateSaver."""
    num_units, batch_size = 3, 2
    state_saver = StateSaver(batch_size, 2 * num_units)
    cell = rnn.LSTMCell(num_units, use_peepholes=False, initializer=_uniform(),
                        state_is_tuple=False)
    _, inputs = _lstm_inputs()
    outputs, state = rnn.static_state_saving_rnn(cell, inputs, state_saver=state_saver,
                                                 state_name="save_lstm")
    assert len(outputs) == len(inputs)
    for out in outputs:
        assert list(out.shape) == [batch_size, num_units]
    assert_all_equal(state, state_saver.saved_state["save_lstm"])


def test_no_proj_no_sharding_tuple_state_saver():
    """LSTMTest.testNoProjNoShardingTupleStateSaver."""
    num_units, batch_size = 3, 2
    state_saver = StateSaver(batch_size, num_units)
    cell = rnn.LSTMCell(num_units, use_peepholes=False, initializer=_uniform(),
                        state_is_tuple=True)
    _, inputs = _lstm_inputs()
    outputs, state = rnn.static_state_saving_rnn(cell, inputs, state_saver=state_saver,
                                                 state_name=("c", "m"))
    assert len(outputs) == len(inputs)
    for out in outputs:
        assert list(out.shape) == [batch_size, num_units]
    last_and_saved = (*state, state_saver.saved_state["c"], state_saver.saved_state["m"])
    assert len(last_and_saved) == 4
    assert_all_equal(last_and_saved[:2], last_and_saved[2:])


def test_no_proj_no_sharding_nested_tuple_state_saver():
    """LSTMTest.testNoProjNoShardingNestedTupleStateSaver."""
    num_units, batch_size = 3, 2
    state_saver = StateSaver(batch_size, {
        "c0": num_units, "m0": num_units, "c1": num_units + 1, "m1": num_units + 1,
        "c2": num_units + 2, "m2": num_units + 2, "c3": num_units + 3, "m3": num_units + 3})

    def _cell(i):
        return rnn.LSTMCell(num_units + i, use_peepholes=False, initializer=_uniform(),
                            state_is_tuple=True)

    # a state tuple of 4 sub-tuples of length 2 each
    cell = rnn.MultiRNNCell([_cell(i) for i in range(4)], state_is_tuple=True)
    assert len(cell.state_size) == 4
    for i in range(4):
        assert len(cell.state_size[i]) == 2
    _, inputs = _lstm_inputs()
    state_names = (("c0", "m0"), ("c1", "m1"), ("c2", "m2"), ("c3", "m3"))
    outputs, state = rnn.static_state_saving_rnn(cell, inputs, state_saver=state_saver,
                                                 state_name=state_names)
    assert len(outputs) == len(inputs)
    # the final output comes from _cell(3), of state size num_units + 3
    for out in outputs:
        assert list(out.shape) == [batch_size, num_units + 3]
    last_states = [s for layer in state for s in layer]
    assert len(last_states) == 8
    assert len(state_saver.saved_state) == 8
    flat_state_names = [n for pair in state_names for n in pair]
    for i in range(8):
        assert_all_equal(last_states[i], state_saver.saved_state[flat_state_names[i]])


def test_proj_no_sharding():
    """LSTMTest.testProjNoSharding."""
    num_units, batch_size, num_proj = 3, 2, 4
    _, inputs = _lstm_inputs()
    cell = rnn.LSTMCell(num_units, use_peepholes=True, num_proj=num_proj,
                        initializer=_uniform(), state_is_tuple=False)
    outputs, _ = rnn.static_rnn(cell, inputs, dtype=torch.float32)
    assert len(outputs) == len(inputs)
    for out in outputs:
        assert list(out.shape) == [batch_size, num_proj]
        assert torch.isfinite(out).all()


def test_proj_sharding():
    """LSTMTest.testProjSharding (shards are TF's variable partitioning; accepted)."""
    num_units, batch_size, num_proj = 3, 2, 4
    _, inputs = _lstm_inputs()
    cell = rnn.LSTMCell(num_units, use_peepholes=True, num_proj=num_proj, num_unit_shards=2,
                        num_proj_shards=3, initializer=_uniform(), state_is_tuple=False)
    outputs, _ = rnn.static_rnn(cell, inputs, dtype=torch.float32)
    assert len(outputs) == len(inputs)
    for out in outputs:
        assert list(out.shape) == [batch_size, num_proj]
        assert torch.isfinite(out).all()


def test_double_input():
    """LSTMTest.testDoubleInput."""
    num_units, batch_size, num_proj = 3, 2, 4
    cell = rnn.LSTMCell(num_units, use_peepholes=True, num_proj=num_proj, num_unit_shards=2,
                        num_proj_shards=3, initializer=_uniform(-1, 1),
                        state_is_tuple=False)
    input_value, inputs = _lstm_inputs(dtype=torch.float64)
    outputs, _ = rnn.static_rnn(cell, inputs,
                                initial_state=cell.zero_state(batch_size, torch.float64))
    assert len(outputs) == len(inputs)
    assert outputs[0].dtype == input_value.dtype == torch.float64


def test_shard_no_shard_equivalent_output():
    """LSTMTest.testShardNoShardEquivalentOutput."""
    num_units, num_proj = 3, 4
    initializer = initializers.constant_initializer(0.001)
    cell_noshard = rnn.LSTMCell(num_units, num_proj=num_proj, use_peepholes=True,
                                initializer=initializer, num_unit_shards=2, num_proj_shards=3,
                                state_is_tuple=False)
    cell_shard = rnn.LSTMCell(num_units, use_peepholes=True, initializer=initializer,
                              num_proj=num_proj, state_is_tuple=False)
    _, inputs = _lstm_inputs()
    outputs_noshard, state_noshard = rnn.static_rnn(cell_noshard, inputs, dtype=torch.float32)
    outputs_shard, state_shard = rnn.static_rnn(cell_shard, inputs, dtype=torch.float32)
    assert len(outputs_noshard) == len(inputs) == len(outputs_shard)
    for v_noshard, v_shard in zip(outputs_noshard, outputs_shard, strict=True):
        assert_all_close(v_noshard, v_shard, atol=1e-3)
    assert_all_close(state_noshard, state_shard, atol=1e-3)


def test_double_input_with_dropout_and_dynamic_calculation():
    """LSTMTest.testDoubleInputWithDropoutAndDynamicCalculation (a smoke test of doubles,
    dropout and sequence lengths)."""
    num_units, batch_size, num_proj = 3, 2, 4
    sequence_length = [2, 3]
    cell = rnn.LSTMCell(num_units, use_peepholes=True, num_proj=num_proj, num_unit_shards=2,
                        num_proj_shards=3, initializer=_uniform(), state_is_tuple=False)
    dropout_cell = rnn.DropoutWrapper(cell, 0.5, seed=0)
    input_value, inputs = _lstm_inputs(dtype=torch.float64)
    outputs, state = rnn.static_rnn(dropout_cell, inputs, sequence_length=sequence_length,
                                    initial_state=cell.zero_state(batch_size, torch.float64))
    assert len(outputs) == len(inputs)
    assert outputs[0].dtype == input_value.dtype
    assert state.dtype == input_value.dtype


def test_sharing_weights_with_reuse():
    """LSTMTest.testSharingWeightsWithReuse: TF's variable reuse is running the same cell
    object again; a cell of another initializer seed differs."""
    num_units, num_proj = 3, 4
    cell = rnn.LSTMCell(num_units, use_peepholes=True, num_proj=num_proj,
                        initializer=_uniform(-1, 1), state_is_tuple=False)
    cell_d = rnn.LSTMCell(num_units, use_peepholes=True, num_proj=num_proj,
                          initializer=_uniform(-1, 1, seed=SEED + 1), state_is_tuple=False)
    _, inputs = _lstm_inputs()
    outputs0, _ = rnn.static_rnn(cell, inputs, dtype=torch.float32)
    outputs1, _ = rnn.static_rnn(cell, inputs, dtype=torch.float32)
    outputs2, _ = rnn.static_rnn(cell_d, inputs, dtype=torch.float32)
    assert len(outputs0) == len(outputs1) == len(outputs2)
    for o1, o2, o3 in zip(outputs0, outputs1, outputs2, strict=True):
        assert_all_equal(o1, o2)  # same weights
        assert float(np.linalg.norm(_np(o1) - _np(o3))) > 1e-6  # different weights


def test_dynamic_rnn_allows_unknown_time_dimension():
    """LSTMTest.testDynamicRNNAllowsUnknownTimeDimension: one cell runs sequences of any
    length (TF's placeholder of shape [1, None, 20])."""
    cell = rnn.GRUCell(30)
    for steps in (3, 7):
        outputs, _ = rnn.dynamic_rnn(cell, torch.randn(1, steps, 20), dtype=torch.float32)
        assert outputs.shape == (1, steps, 30)


def _static_and_dynamic(cell, inputs, sequence_length):
    inputs_c = torch.stack(inputs)
    outputs_static, state_static = rnn.static_rnn(cell, inputs, dtype=torch.float32,
                                                  sequence_length=sequence_length)
    outputs_dynamic, state_dynamic = rnn.dynamic_rnn(cell, inputs_c, dtype=torch.float32,
                                                     time_major=True,
                                                     sequence_length=sequence_length)
    return outputs_static, state_static, outputs_dynamic, state_dynamic


def test_dynamic_rnn_with_tuple_states():
    """LSTMTest.testDynamicRNNWithTupleStates (eager branch)."""
    num_units, batch_size, num_proj, input_size, max_length = 3, 2, 4, 5, 8
    sequence_length = [4, 6]
    inputs = max_length * [_t(np.random.randn(batch_size, input_size))]
    cell = rnn.LSTMCell(num_units, use_peepholes=True, num_proj=num_proj,
                        initializer=_uniform(), state_is_tuple=True)
    outputs_static, state_static, outputs_dynamic, state_dynamic = _static_and_dynamic(
        cell, inputs, sequence_length)
    assert isinstance(state_static, rnn.LSTMStateTuple)
    assert isinstance(state_dynamic, rnn.LSTMStateTuple)
    assert state_static[0] is state_static.c
    assert state_static[1] is state_static.h
    assert state_dynamic[0] is state_dynamic.c
    assert state_dynamic[1] is state_dynamic.h
    assert_all_equal(torch.stack(outputs_static), outputs_dynamic)
    assert_all_equal(hstack(state_static), hstack(state_dynamic))


def test_dynamic_rnn_with_nested_tuple_states():
    """LSTMTest.testDynamicRNNWithNestedTupleStates (eager branch)."""
    num_units, batch_size, num_proj, input_size, max_length = 3, 2, 4, 5, 8
    sequence_length = [4, 6]
    inputs = max_length * [_t(np.random.randn(batch_size, input_size))]

    def _cell(i):
        return rnn.LSTMCell(num_units + i, use_peepholes=True, num_proj=num_proj + i,
                            initializer=_uniform(), state_is_tuple=True)

    cell = rnn.MultiRNNCell([_cell(i) for i in range(4)], state_is_tuple=True)
    assert len(cell.state_size) == 4
    for i in range(4):
        assert len(cell.state_size[i]) == 2
    test_zero = cell.zero_state(1, torch.float32)
    assert len(test_zero) == 4
    for i in range(4):
        assert test_zero[i][0].shape[1] == cell.state_size[i][0]
        assert test_zero[i][1].shape[1] == cell.state_size[i][1]
    outputs_static, state_static, outputs_dynamic, state_dynamic = _static_and_dynamic(
        cell, inputs, sequence_length)
    assert_all_equal(torch.stack(outputs_static), outputs_dynamic)
    flat_static = [s for layer in state_static for s in layer]
    flat_dynamic = [s for layer in state_dynamic for s in layer]
    assert_all_equal(torch.cat(flat_static, 1), torch.cat(flat_dynamic, 1))


def _dynamic_equivalent_to_static_rnn(use_sequence_length):
    """Upstream's ``_testDynamicEquivalentToStaticRNN``: forward values and the gradients
    (to the inputs and to every variable) of static_rnn and dynamic_rnn agree.  As in
    upstream's eager branch one cell serves both."""
    time_steps, num_units, num_proj, input_size, batch_size = 8, 3, 4, 5, 2
    input_values = np.random.randn(time_steps, batch_size, input_size).astype(np.float32)
    sequence_length = (np.random.randint(0, time_steps, size=batch_size)
                       if use_sequence_length else None)
    cell = rnn.LSTMCell(num_units, use_peepholes=True, initializer=_uniform(),
                        num_proj=num_proj, state_is_tuple=False)
    rnn.build(cell, torch.zeros(batch_size, input_size), cell.zero_state(batch_size))
    variables = list(cell.parameters())
    assert len(variables) > 1

    def run(static):
        concat_inputs = torch.tensor(input_values, requires_grad=True)
        if static:
            outputs, state = rnn.static_rnn(cell, list(concat_inputs.unbind(0)),
                                            sequence_length=sequence_length,
                                            dtype=torch.float32)
        else:
            out, state = rnn.dynamic_rnn(cell, concat_inputs, sequence_length=sequence_length,
                                         time_major=True, dtype=torch.float32)
            outputs = list(out.unbind(0))
        total = sum(o.sum() for o in outputs) + state.sum()
        grads = torch.autograd.grad(total, [concat_inputs], retain_graph=True)
        individual = [torch.autograd.grad(y.sum(), [concat_inputs], retain_graph=True)[0]
                      for y in (outputs[0], outputs[-1], state)]
        var_grads = [g for y in (outputs[0], outputs[-1], state)
                     for g in torch.autograd.grad(y.sum(), variables, retain_graph=True,
                                                  allow_unused=True)]
        return outputs, state, grads, individual, var_grads

    static = run(True)
    dynamic = run(False)
    assert len(static[0]) == len(dynamic[0])
    for value_static, value_dynamic in zip(static[0], dynamic[0], strict=True):
        assert_all_close(value_static, value_dynamic)
    assert_all_close(static[1], dynamic[1])
    assert_all_close(static[2][0], dynamic[2][0])
    assert len(static[3]) == len(dynamic[3])
    assert len(static[4]) == len(dynamic[4])
    for a, b in zip(static[3], dynamic[3], strict=True):
        assert_all_close(a, b)
    for a, b in zip(static[4], dynamic[4], strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            assert_all_close(a, b)


def test_dynamic_equivalent_to_static_rnn():
    """LSTMTest.testDynamicEquivalentToStaticRNN."""
    _dynamic_equivalent_to_static_rnn(use_sequence_length=False)


def test_dynamic_equivalent_to_static_rnn_with_sequence_length():
    """LSTMTest.testDynamicEquivalentToStaticRNNWithSequenceLength."""
    _dynamic_equivalent_to_static_rnn(use_sequence_length=True)


# --- BidirectionalRNNTest -----------------------------------------------------------------


def _create_bidirectional_rnn(use_sequence_length):
    num_units, input_size, batch_size, max_length = 3, 5, 2, 8
    # upstream passes input_size as LSTMCell's second positional argument, use_peepholes
    # (a truthy 5): both cells have peepholes
    cell_fw = rnn.LSTMCell(num_units, True, initializer=_uniform(), state_is_tuple=False)
    cell_bw = rnn.LSTMCell(num_units, True, initializer=_uniform(), state_is_tuple=False)
    input_value = _t(np.random.randn(batch_size, input_size))
    inputs = max_length * [input_value]
    sequence_length = [2, 3] if use_sequence_length else None
    outputs, state_fw, state_bw = rnn.static_bidirectional_rnn(
        cell_fw, cell_bw, inputs, dtype=torch.float32, sequence_length=sequence_length)
    assert len(outputs) == len(inputs)
    for out in outputs:
        assert list(out.shape) == [batch_size, 2 * num_units]
    return _np(torch.stack(outputs)), _np(state_fw), _np(state_bw)


def test_bidirectional_rnn():
    """BidirectionalRNNTest.testBidirectionalRNN (use_shape is a graph-shape option)."""
    out, s_fw, s_bw = _create_bidirectional_rnn(True)
    # Forward and backward cells share their weights, so the backward output is the
    # forward one reversed within each length.  out[time][batch][depth]:
    # forward depth 0..2, backward 3..5.  First sequence, length 2:
    assert_all_close(out[0][0][0], out[1][0][3])
    assert_all_close(out[0][0][1], out[1][0][4])
    assert_all_close(out[0][0][2], out[1][0][5])
    assert_all_close(out[1][0][0], out[0][0][3])
    assert_all_close(out[1][0][1], out[0][0][4])
    assert_all_close(out[1][0][2], out[0][0][5])
    # second sequence, length 3
    assert_all_close(out[0][1][0], out[2][1][3])
    assert_all_close(out[0][1][1], out[2][1][4])
    assert_all_close(out[0][1][2], out[2][1][5])
    assert_all_close(out[1][1][0], out[1][1][3])
    assert_all_close(out[1][1][1], out[1][1][4])
    assert_all_close(out[1][1][2], out[1][1][5])
    assert_all_close(out[2][1][0], out[0][1][3])
    assert_all_close(out[2][1][1], out[0][1][4])
    assert_all_close(out[2][1][2], out[0][1][5])
    # and the final states are the same
    assert_all_close(s_fw, s_bw)


def test_bidirectional_rnn_without_sequence_length():
    """BidirectionalRNNTest.testBidirectionalRNNWithoutSequenceLength."""
    out, s_fw, s_bw = _create_bidirectional_rnn(False)
    for i in range(8):
        assert_all_close(out[i][0][0:3], out[8 - 1 - i][0][3:6])
        assert_all_close(out[i][1][0:3], out[8 - 1 - i][1][3:6])
    assert_all_close(s_fw, s_bw)


def _bidirectional_dynamic_rnn(use_state_tuple, use_time_major, use_sequence_length):
    num_units, input_size, batch_size, max_length = 3, 5, 2, 8
    sequence_length = [2, 3] if use_sequence_length else None
    cell_fw = rnn.LSTMCell(num_units, initializer=_uniform(), state_is_tuple=use_state_tuple)
    cell_bw = rnn.LSTMCell(num_units, initializer=_uniform(), state_is_tuple=use_state_tuple)
    input_value = _t(np.random.randn(batch_size, input_size))
    inputs_c = torch.stack(max_length * [input_value])
    if not use_time_major:
        inputs_c = inputs_c.transpose(0, 1)
    outputs, states = rnn.bidirectional_dynamic_rnn(
        cell_fw, cell_bw, inputs_c, sequence_length, dtype=torch.float32,
        time_major=use_time_major)
    outputs = torch.cat(outputs, 2)
    state_fw, state_bw = states
    outputs_shape = [batch_size, max_length, 2 * num_units]
    if use_time_major:
        outputs_shape[0], outputs_shape[1] = outputs_shape[1], outputs_shape[0]
    assert list(outputs.shape) == outputs_shape
    return _np(outputs), _np(state_fw), _np(state_bw)


def test_bidirectional_dynamic_rnn():
    """BidirectionalRNNTest.testBidirectionalDynamicRNN: every combination of
    use_state_tuple, use_time_major and use_sequence_length (use_shape, upstream's fourth
    option, only chose a static or unknown batch dimension of the placeholders)."""
    for use_state_tuple, use_time_major, use_sequence_length in itertools.product(
            [True, False], repeat=3):
        out, s_fw, s_bw = _bidirectional_dynamic_rnn(use_state_tuple, use_time_major,
                                                     use_sequence_length)
        if not use_time_major:
            out = np.swapaxes(out, 0, 1)
        if use_sequence_length:
            # first sequence, length 2
            assert out[0][0][0] == out[1][0][3]
            assert out[0][0][1] == out[1][0][4]
            assert out[0][0][2] == out[1][0][5]
            assert out[1][0][0] == out[0][0][3]
            assert out[1][0][1] == out[0][0][4]
            assert out[1][0][2] == out[0][0][5]
            # second sequence, length 3
            assert out[0][1][0] == out[2][1][3]
            assert out[0][1][1] == out[2][1][4]
            assert out[0][1][2] == out[2][1][5]
            assert out[1][1][0] == out[1][1][3]
            assert out[1][1][1] == out[1][1][4]
            assert out[1][1][2] == out[1][1][5]
            assert out[2][1][0] == out[0][1][3]
            assert out[2][1][1] == out[0][1][4]
            assert out[2][1][2] == out[0][1][5]
            assert_all_close(s_fw, s_bw)
        else:
            for t in range(8):
                assert_all_equal(out[t, :, 0:3], out[8 - t - 1, :, 3:6])
            assert_all_close(s_fw, s_bw)


# --- MultiDimensionalLSTMTest, NestedLSTMTest ---------------------------------------------


def test_multi_dimensional_lstm_all_rnn_containers():
    """MultiDimensionalLSTMTest.testMultiDimensionalLSTMAllRNNContainers."""
    feature_dims = (3, 4, 5)
    input_size = feature_dims
    batch_size, max_length = 2, 8
    sequence_length = [4, 6]
    input_value = _t(np.random.randn(batch_size, *input_size))
    inputs = max_length * [input_value]
    inputs_c = torch.stack(inputs)
    cell = DummyMultiDimensionalLSTM(feature_dims)
    state_saver = StateSaver(batch_size, input_size)
    outputs_static, state_static = rnn.static_rnn(cell, inputs, dtype=torch.float32,
                                                  sequence_length=sequence_length)
    outputs_dynamic, state_dynamic = rnn.dynamic_rnn(cell, inputs_c, dtype=torch.float32,
                                                     time_major=True,
                                                     sequence_length=sequence_length)
    outputs_bid, state_fw, state_bw = rnn.static_bidirectional_rnn(
        cell, cell, inputs, dtype=torch.float32, sequence_length=sequence_length)
    outputs_sav, state_sav = rnn.static_state_saving_rnn(
        cell, inputs, sequence_length=sequence_length, state_saver=state_saver,
        state_name=("h", "c"))
    assert list(outputs_dynamic.shape) == list(inputs_c.shape)
    for out, inp in zip(outputs_static, inputs, strict=True):
        assert list(out.shape) == list(inp.shape)
    for out, inp in zip(outputs_bid, inputs, strict=True):
        shape = list(inp.shape)
        shape[1] *= 2  # forward and backward activations concatenated on the second axis
        assert list(out.shape) == shape

    assert_all_equal(outputs_static, outputs_dynamic)
    assert_all_equal(outputs_static, outputs_sav)
    outputs_static_array = _np(outputs_static)
    doubled = np.concatenate((outputs_static_array, outputs_static_array), axis=2)
    assert_all_equal(doubled, outputs_bid)
    static = hstack(state_static)
    assert_all_equal(static, hstack(state_dynamic))
    assert_all_equal(static, hstack(state_sav))
    assert_all_equal(static, hstack(state_fw))
    assert_all_equal(static, hstack(state_bw))


def test_nested_io_lstm_all_rnn_containers():
    """NestedLSTMTest.testNestedIOLSTMAllRNNContainers."""
    input_size, batch_size, state_size, max_length = 5, 2, 6, 8
    sequence_length = [4, 6]
    state_saver = StateSaver(batch_size, state_size)
    input_value = (_t(np.random.randn(batch_size, input_size)),
                   _t(np.random.randn(batch_size, input_size)))
    inputs = max_length * [input_value]
    inputs_c = (torch.stack([x[0] for x in inputs]), torch.stack([x[1] for x in inputs]))
    cell = NestedRNNCell()
    outputs_dynamic, state_dynamic = rnn.dynamic_rnn(cell, inputs_c, dtype=torch.float32,
                                                     time_major=True,
                                                     sequence_length=sequence_length)
    outputs_static, state_static = rnn.static_rnn(cell, inputs, dtype=torch.float32,
                                                  sequence_length=sequence_length)
    outputs_bid, state_fw, state_bw = rnn.static_bidirectional_rnn(
        cell, cell, inputs, dtype=torch.float32, sequence_length=sequence_length)
    outputs_sav, state_sav = rnn.static_state_saving_rnn(
        cell, inputs, sequence_length=sequence_length, state_saver=state_saver,
        state_name=("h", "c"))

    def _assert_same_shape(input1, input2, double=False):
        flat1 = [t for step in input1 for t in step] if isinstance(input1, list) else input1
        flat2 = [t for step in input2 for t in step] if isinstance(input2, list) else input2
        assert len(flat1) == len(flat2)
        for inp1, inp2 in zip(flat1, flat2, strict=True):
            shape = list(inp1.shape)
            if double:
                shape[1] *= 2
            assert shape == list(inp2.shape)

    _assert_same_shape(inputs_c, outputs_dynamic)
    _assert_same_shape(inputs, outputs_static)
    _assert_same_shape(inputs, outputs_sav)
    _assert_same_shape(inputs, outputs_bid, double=True)

    static_v = _np(outputs_static)                       # [time, 2, batch, 5]
    assert_all_equal(static_v, np.transpose(_np(outputs_dynamic), (1, 0, 2, 3)))
    assert_all_equal(static_v, _np(outputs_sav))
    doubled = np.concatenate((static_v, static_v), axis=3)
    assert_all_equal(doubled, _np(outputs_bid))
    static = hstack(state_static)
    assert_all_equal(static, hstack(state_dynamic))
    assert_all_equal(static, hstack(state_sav))
    assert_all_equal(static, hstack(state_fw))
    assert_all_equal(static, hstack(state_bw))


# --- GRUTest ------------------------------------------------------------------------------


def test_dynamic():
    """GRUTest.testDynamic."""
    time_steps, num_units, input_size, batch_size = 8, 3, 5, 2
    input_values = _t(np.random.randn(time_steps, batch_size, input_size))
    sequence_length = np.random.randint(0, time_steps, size=batch_size)
    cell = rnn.GRUCell(num_units=num_units)
    outputs, state = rnn.dynamic_rnn(cell, inputs=input_values,
                                     sequence_length=sequence_length, time_major=True,
                                     dtype=torch.float32)
    assert outputs.shape == (time_steps, batch_size, num_units)
    assert state.shape == (batch_size, num_units)
    assert torch.isfinite(outputs).all()


# --- RawRNNTest ---------------------------------------------------------------------------


def _raw_rnn(max_time):
    """Upstream's ``_testRawRNN``: raw_rnn reading its inputs gives dynamic_rnn's outputs,
    final state and gradients."""
    batch_size, input_depth, num_units = 16, 4, 3
    cell = rnn.LSTMCell(num_units, state_is_tuple=True)
    rand_input = np.random.randn(max_time, batch_size, input_depth)
    if max_time == 0:
        rand_seq_len = np.zeros(batch_size)
    else:
        rand_seq_len = np.random.randint(max_time, size=batch_size)
    rand_seq_len[0] = max_time  # the same output length for dynamic_rnn and raw_rnn
    inputs = torch.tensor(rand_input, dtype=torch.float32, requires_grad=True)
    sequence_length = torch.tensor(rand_seq_len, dtype=torch.int32)

    def loop_fn(time_, cell_output, cell_state, unused_loop_state):
        emit_output = cell_output  # None at time 0
        if cell_output is None:
            next_state = cell.zero_state(batch_size, torch.float32)
        else:
            next_state = cell_state
        elements_finished = time_ >= sequence_length
        finished = bool(elements_finished.all())
        # for the very final iteration, a dummy input
        next_input = (torch.zeros(batch_size, input_depth) if finished else inputs[time_])
        return elements_finished, next_input, next_state, emit_output, None

    rnn.build(cell, torch.zeros(batch_size, input_depth), cell.zero_state(batch_size))
    outputs_ta, final_state, _ = rnn.raw_rnn(cell, loop_fn)
    outputs = outputs_ta.stack()
    outputs_dynamic_rnn, final_state_dynamic_rnn = rnn.dynamic_rnn(
        cell, inputs, time_major=True, dtype=torch.float32, sequence_length=sequence_length)
    assert_all_close(outputs_dynamic_rnn, outputs)
    assert_all_close(torch.cat(final_state_dynamic_rnn, 1), torch.cat(final_state, 1))
    if max_time > 0:
        # with 0 steps upstream has no shapes to take gradients with
        variables = list(cell.parameters())

        def grads(out, state):
            total = out.sum() + sum(s.sum() for s in state)
            return torch.autograd.grad(total, [inputs, *variables], retain_graph=True)

        gradients = grads(outputs, final_state)
        gradients_dynamic_rnn = grads(outputs_dynamic_rnn, final_state_dynamic_rnn)
        assert len(gradients) == len(gradients_dynamic_rnn)
        for a, b in zip(gradients, gradients_dynamic_rnn, strict=True):
            assert_all_close(b, a)


def test_raw_rnn_zero_length():
    """RawRNNTest.testRawRNNZeroLength."""
    _raw_rnn(max_time=0)


def test_raw_rnn():
    """RawRNNTest.testRawRNN."""
    _raw_rnn(max_time=10)


def _finished_after(max_time, batch_size, input_depth, inputs):
    def finished_and_input(time_):
        elements_finished = torch.full((batch_size,), time_ >= max_time)
        if bool(elements_finished.all()):
            return elements_finished, torch.zeros(batch_size, input_depth)
        return elements_finished, inputs[time_]
    return finished_and_input


def test_loop_state():
    """RawRNNTest.testLoopState."""
    max_time, batch_size, input_depth, num_units = 10, 16, 4, 3
    inputs = _t(np.random.randn(max_time, batch_size, input_depth))
    cell = rnn.LSTMCell(num_units, state_is_tuple=True)
    step = _finished_after(max_time, batch_size, input_depth, inputs)

    def loop_fn(time_, cell_output, cell_state, loop_state):
        if cell_output is None:
            loop_state = torch.tensor([0])
            next_state = cell.zero_state(batch_size, torch.float32)
        else:
            loop_state = torch.stack([loop_state.squeeze() + 1])
            next_state = cell_state
        elements_finished, next_input = step(time_)
        return elements_finished, next_input, next_state, cell_output, loop_state

    r = rnn.raw_rnn(cell, loop_fn)
    assert_all_equal(r[-1], [10])


def test_loop_state_with_tensor_array():
    """RawRNNTest.testLoopStateWithTensorArray."""
    max_time, batch_size, input_depth, num_units = 4, 16, 4, 3
    inputs = _t(np.random.randn(max_time, batch_size, input_depth))
    cell = rnn.LSTMCell(num_units, state_is_tuple=True)
    step = _finished_after(max_time, batch_size, input_depth, inputs)

    def loop_fn(time_, cell_output, cell_state, loop_state):
        if cell_output is None:
            loop_state = rnn.TensorArray(dynamic_size=True, size=0, dtype=torch.int32,
                                         clear_after_read=False)
            loop_state = loop_state.write(0, torch.tensor(1, dtype=torch.int32))
            next_state = cell.zero_state(batch_size, torch.float32)
        else:
            loop_state = loop_state.write(time_, loop_state.read(time_ - 1) + time_)
            next_state = cell_state
        elements_finished, next_input = step(time_)
        return elements_finished, next_input, next_state, cell_output, loop_state

    r = rnn.raw_rnn(cell, loop_fn)
    assert_all_equal(r[-1].stack(), [1, 2, 2 + 2, 4 + 3, 7 + 4])


def test_emit_different_structure_than_cell_output():
    """RawRNNTest.testEmitDifferentStructureThanCellOutput (upstream's placeholder for an
    emit dimension unknown at graph construction is fed 1)."""
    max_time, batch_size, input_depth, num_units = 10, 16, 4, 3
    inputs = _t(np.random.randn(max_time, batch_size, input_depth))
    unknown_dim = 1
    cell = rnn.LSTMCell(num_units, state_is_tuple=True)
    step = _finished_after(max_time, batch_size, input_depth, inputs)

    def loop_fn(time_, cell_output, cell_state, _):
        if cell_output is None:
            emit_output = (torch.zeros(2, 3, dtype=torch.int32),
                           torch.zeros(unknown_dim, dtype=torch.int64))
            next_state = cell.zero_state(batch_size, torch.float32)
        else:
            emit_output = (torch.ones(batch_size, 2, 3, dtype=torch.int32),
                           torch.ones(batch_size, unknown_dim, dtype=torch.int64))
            next_state = cell_state
        elements_finished, next_input = step(time_)
        return elements_finished, next_input, next_state, emit_output, None

    r = rnn.raw_rnn(cell, loop_fn)
    output_ta = r[0]
    assert len(output_ta) == 2
    assert [ta.dtype for ta in output_ta] == [torch.int32, torch.int64]
    output_vals = [ta.stack() for ta in output_ta]
    assert output_vals[0].dtype == torch.int32
    assert output_vals[1].dtype == torch.int64
    assert_all_equal(np.ones((max_time, batch_size, 2, 3), np.int32), output_vals[0])
    assert_all_equal(np.ones((max_time, batch_size, 1), np.int64), output_vals[1])


# --- RNNCellTest --------------------------------------------------------------------------


def test_basic_rnn_cell():
    """RNNCellTest.testBasicRNNCell (upstream checks only the shape; the value follows from
    the constant weights: tanh(0.5 * (1 + 1 + 0.1 + 0.1)))."""
    x = torch.tensor([[1.0, 1.0]])
    m = torch.tensor([[0.1, 0.1]])
    cell = scope_initializer(rnn.BasicRNNCell(2), 0.5, x, m)
    g, _ = cell(x, m)
    assert compat.tf_variable_names({"root/basic_rnn_cell": cell}) == [
        "root/basic_rnn_cell/bias", "root/basic_rnn_cell/kernel"]
    assert all(p.requires_grad for p in cell.parameters())  # no non-trainable variables
    assert g.shape == (1, 2)
    assert_all_close(g, np.full((1, 2), np.tanh(1.1)))


def test_gru_cell():
    """RNNCellTest.testGRUCell."""
    x = torch.tensor([[1.0, 1.0]])
    m = torch.tensor([[0.1, 0.1]])
    cell = scope_initializer(rnn.GRUCell(2), 0.5, x, m)
    g, _ = cell(x, m)
    assert_all_close(g, [[0.175991, 0.175991]])
    # input_size != num_units
    x = torch.tensor([[1.0, 1.0, 1.0]])
    cell = scope_initializer(rnn.GRUCell(2), 0.5, x, m)
    g, _ = cell(x, m)
    assert_all_close(g, [[0.156736, 0.156736]])


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_basic_lstm_cell(dtype):
    """RNNCellTest.testBasicLSTMCell (float16 and float32)."""
    x = torch.tensor([[1.0, 1.0]], dtype=dtype)
    m = 0.1 * torch.ones(1, 8, dtype=dtype)
    cell = rnn.MultiRNNCell([rnn.BasicLSTMCell(2, state_is_tuple=False) for _ in range(2)],
                            state_is_tuple=False)
    assert cell.dtype is None
    scope_initializer(cell, 0.5, x, m)
    g, out_m = cell(x, m)
    assert cell.dtype == dtype  # the layer takes the inputs' dtype
    expected_variable_names = [
        "root/multi_rnn_cell/cell_0/basic_lstm_cell/kernel",
        "root/multi_rnn_cell/cell_0/basic_lstm_cell/bias",
        "root/multi_rnn_cell/cell_1/basic_lstm_cell/kernel",
        "root/multi_rnn_cell/cell_1/basic_lstm_cell/bias",
    ]
    assert compat.tf_variable_names({"root/multi_rnn_cell": cell}) == sorted(
        expected_variable_names)
    assert all(p.requires_grad for p in cell.parameters())
    assert g.dtype == out_m.dtype == dtype
    assert_all_close(g, np.array([[0.240, 0.240]], dtype=_np(g).dtype), 1e-2)
    expected_mem = np.array([[0.689, 0.689, 0.448, 0.448, 0.398, 0.398, 0.240, 0.240]],
                            dtype=_np(g).dtype)
    assert_all_close(out_m, expected_mem, 1e-2)
    # input_size != num_units
    x = torch.tensor([[1.0, 1.0, 1.0]], dtype=dtype)
    m = 0.1 * torch.ones(1, 4, dtype=dtype)
    other = scope_initializer(rnn.BasicLSTMCell(2, state_is_tuple=False), 0.5, x, m)
    g, out_m = other(x, m)
    assert g.shape == (1, 2)
    assert out_m.shape == (1, 4)


def test_basic_lstm_cell_dimension0_error():
    """RNNCellTest.testBasicLSTMCellDimension0Error: x and m must agree on dimension 0."""
    num_units, batch_size, input_size = 2, 3, 4
    state_size = num_units * 2
    x = torch.ones(batch_size, input_size)
    m = 0.1 * torch.ones(batch_size - 1, state_size)
    with pytest.raises(ValueError, match=r"state must have shape \(3, 4\)"):
        rnn.BasicLSTMCell(num_units, state_is_tuple=False)(x, m)


def test_basic_lstm_cell_state_size_error():
    """RNNCellTest.testBasicLSTMCellStateSizeError: the state must be num_units * 2 wide."""
    num_units, batch_size, input_size = 2, 3, 4
    state_size = num_units * 3
    x = torch.ones(batch_size, input_size)
    m = 0.1 * torch.ones(batch_size, state_size)
    with pytest.raises(ValueError, match=r"state must have shape \(3, 4\)"):
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
    # regular tuples in
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
    x = torch.tensor([[1.0, 1.0]])
    m0 = 0.1 * torch.ones(1, 4)
    m1 = 0.1 * torch.ones(1, 4)
    cell = rnn.MultiRNNCell([rnn.BasicLSTMCell(2, state_is_tuple=False) for _ in range(2)],
                            state_is_tuple=True)
    scope_initializer(cell, 0.5, x, (m0, m1))
    g, (out_m0, out_m1) = cell(x, (m0, m1))
    # these match the state_is_tuple=False version
    assert_all_close(g, [[0.24024698, 0.24024698]])
    assert_all_close(out_m0, [[0.68967271, 0.68967271, 0.44848421, 0.44848421]])
    assert_all_close(out_m1, [[0.39897051, 0.39897051, 0.24024698, 0.24024698]])


def test_lstm_cell():
    """RNNCellTest.testLSTMCell."""
    num_units, num_proj, batch_size = 8, 6, 3
    state_size = num_units + num_proj
    x = torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    m = 0.1 * torch.ones(batch_size, state_size)
    cell = rnn.LSTMCell(num_units=num_units, num_proj=num_proj, forget_bias=1.0,
                        state_is_tuple=False,
                        initializer=initializers.constant_initializer(0.5))
    output, state = cell(x, m)
    assert output.shape == (batch_size, num_proj)
    assert state.shape == (batch_size, state_size)
    # different inputs, so different outputs and states
    for i in range(1, batch_size):
        assert float(torch.linalg.norm(output[0] - output[i]).detach()) > 1e-6
        assert float(torch.linalg.norm(state[0] - state[i]).detach()) > 1e-6


def test_lstm_cell_variables():
    """RNNCellTest.testLSTMCellVariables."""
    num_units, num_proj, batch_size, input_size = 8, 6, 3, 2
    cell = rnn.LSTMCell(num_units=num_units, num_proj=num_proj, forget_bias=1.0,
                        state_is_tuple=False,
                        initializer=initializers.constant_initializer(0.5))
    cell(torch.zeros(batch_size, input_size), torch.zeros(batch_size, num_units + num_proj))
    assert compat.tf_variable_names({"root/lstm_cell": cell}) == [
        "root/lstm_cell/bias", "root/lstm_cell/kernel", "root/lstm_cell/projection/kernel"]


@pytest.mark.parametrize("wrapper_type", [
    rnn.DropoutWrapper, rnn.ResidualWrapper, lambda cell: rnn.MultiRNNCell([cell])],
    ids=["DropoutWrapper", "ResidualWrapper", "MultiRNNCell"])
def test_wrapper_checkpointing(wrapper_type):
    """RNNCellTest.testWrapperCheckpointing: a wrapper's checkpoint (its ``state_dict``)
    carries the wrapped cell's variables and restores them."""
    cell = rnn.BasicRNNCell(1)
    wrapper = wrapper_type(cell)
    wrapper(torch.ones(1, 1), wrapper.zero_state(batch_size=1, dtype=torch.float32))
    with torch.no_grad():
        cell.bias.copy_(torch.tensor([40.0]))
    saved = {k: v.clone() for k, v in wrapper.state_dict().items()}
    with torch.no_grad():
        cell.bias.copy_(torch.tensor([0.0]))
    wrapper.load_state_dict(saved)  # strict: every entry consumed
    assert_all_equal(cell.bias, [40.0])


def _gru_05():
    return rnn.GRUCell(3, kernel_initializer=initializers.constant_initializer(0.5),
                       bias_initializer=initializers.constant_initializer(0.5))


def test_residual_wrapper():
    """RNNCellTest.testResidualWrapper."""
    x = torch.tensor([[1.0, 1.0, 1.0]], dtype=torch.float64)
    m = torch.tensor([[0.1, 0.1, 0.1]], dtype=torch.float64)
    base_cell = _gru_05()
    g, m_new = base_cell(x, m)
    wrapper_object = rnn.ResidualWrapper(base_cell)
    assert wrapper_object.wrapped_cell is base_cell  # upstream: _trackable_children
    g_res, m_new_res = wrapper_object(x, m)
    assert_all_close(g_res, _np(g) + [1.0, 1.0, 1.0])  # residual connection
    assert_all_close(m_new, m_new_res)  # states untouched


def test_residual_wrapper_with_slice():
    """RNNCellTest.testResidualWrapperWithSlice."""
    x = torch.tensor([[1.0, 1.0, 1.0, 1.0, 1.0]], dtype=torch.float64)
    m = torch.tensor([[0.1, 0.1, 0.1]], dtype=torch.float64)
    base_cell = _gru_05()
    g, m_new = base_cell(x, m)

    def residual_with_slice_fn(inp, out):
        return inp[:, :3] + out

    g_res, m_new_res = rnn.ResidualWrapper(base_cell, residual_with_slice_fn)(x, m)
    assert_all_close(g_res, _np(g) + [1.0, 1.0, 1.0])
    assert_all_close(m_new, m_new_res)


def test_device_wrapper():
    """RNNCellTest.testDeviceWrapper (``get_config`` is Keras serialisation, not ported)."""
    x = torch.zeros(1, 3)
    m = torch.zeros(1, 3)
    cell = rnn.GRUCell(3)
    wrapped_cell = rnn.DeviceWrapper(cell, "/cpu:0")
    assert wrapped_cell.wrapped_cell is cell
    outputs, _ = wrapped_cell(x, m)
    assert outputs.device.type == "cpu"


def test_multi_rnn_cell():
    """RNNCellTest.testMultiRNNCell."""
    x = torch.tensor([[1.0, 1.0]])
    m = torch.tensor([[0.1, 0.1, 0.1, 0.1]])
    multi_rnn_cell = rnn.MultiRNNCell([rnn.GRUCell(2) for _ in range(2)],
                                      state_is_tuple=False)
    scope_initializer(multi_rnn_cell, 0.5, x, m)
    _, ml = multi_rnn_cell(x, m)
    assert_all_close(ml, [[0.175991, 0.175991, 0.13248, 0.13248]])
    # TF's ``weights`` are its variables: rnnkit stores them in PyTorch's layout (a GRU's
    # fused TF kernel is two parameters), so they are counted as TF variables
    weights = compat.tf_variables_of(multi_rnn_cell)
    assert len(weights) == 2 * 4
    assert all(w.dtype == np.float32 for w in weights.values())


def test_multi_rnn_cell_with_state_tuple():
    """RNNCellTest.testMultiRNNCellWithStateTuple."""
    x = torch.tensor([[1.0, 1.0]])
    m_bad = torch.zeros(1, 4)
    m_good = (torch.tensor([[0.1, 0.1]]), torch.tensor([[0.1, 0.1]]))
    with pytest.raises(ValueError, match="Expected state .* a tuple"):  # TF's own regex
        rnn.MultiRNNCell([rnn.GRUCell(2) for _ in range(2)], state_is_tuple=True)(x, m_bad)
    cell = rnn.MultiRNNCell([rnn.GRUCell(2) for _ in range(2)], state_is_tuple=True)
    scope_initializer(cell, 0.5, x, m_good)
    _, ml = cell(x, m_good)
    # the same numbers as test_multi_rnn_cell
    assert_all_close(ml[0], [[0.175991, 0.175991]])
    assert_all_close(ml[1], [[0.13248, 0.13248]])


# --- DropoutWrapperTest -------------------------------------------------------------------

TRUE_FULL_OUTPUT = np.array(
    [[[0.751109, 0.751109, 0.751109]], [[0.895509, 0.895509, 0.895509]]], dtype=np.float32)
TRUE_FULL_FINAL_C = np.array([[1.949385, 1.949385, 1.949385]], dtype=np.float32)


def _dropout_wrapper(batch_size=None, time_steps=None, parallel_iterations=None,
                     wrapper_type=rnn.DropoutWrapper, **kwargs):
    """Upstream's ``_testDropoutWrapper``: an LSTMCell(3) of constant 0.5 weights, wrapped,
    over two steps of batch 1 (or random inputs of the given size), from c = h = 0.1."""
    if batch_size is None and time_steps is None:
        batch_size, time_steps = 1, 2
        x = torch.tensor([[[2.0, 2.0, 2.0]], [[1.0, 1.0, 1.0]]])
        m = rnn.LSTMStateTuple(*[torch.tensor([[0.1, 0.1, 0.1]])] * 2)
    else:
        x = torch.tensor(np.random.randn(time_steps, batch_size, 3).astype(np.float32))
        m = rnn.LSTMStateTuple(*[torch.tensor([[0.1, 0.1, 0.1]] * batch_size)] * 2)
    cell = wrapper_type(
        rnn.LSTMCell(3, initializer=initializers.constant_initializer(0.5)),
        dtype=x.dtype, **kwargs)
    outputs, final_state = rnn.dynamic_rnn(cell=cell, time_major=True,
                                           parallel_iterations=parallel_iterations,
                                           inputs=x, initial_state=m)
    assert outputs.shape == (time_steps, batch_size, 3)
    assert final_state.c.shape == (batch_size, 3)
    assert final_state.h.shape == (batch_size, 3)
    return _np(outputs), rnn.LSTMStateTuple(*(_np(s) for s in final_state))


def test_dropout_wrapper_properties():
    """DropoutWrapperTest.testDropoutWrapperProperties (GitHub issue 15810)."""
    cell = rnn.BasicRNNCell(10)
    wrapper = rnn.DropoutWrapper(cell)
    assert wrapper.wrapped_cell is cell
    assert wrapper.state_size == 10
    assert wrapper.output_size == 10


def test_dropout_wrapper_zero_state():
    """DropoutWrapperTest.testDropoutWrapperZeroState."""

    class _Cell(rnn.BasicRNNCell):

        def zero_state(self, batch_size=None, dtype=None):
            return "wrapped_cell_zero_state"

    wrapper = rnn.DropoutWrapper(_Cell(10))
    assert wrapper.zero_state(10, torch.float32) == "wrapped_cell_zero_state"


def test_dropout_wrapper_keep_all_constant_input():
    """DropoutWrapperTest.testDropoutWrapperKeepAllConstantInput."""
    keep = torch.ones([])
    res = _dropout_wrapper(input_keep_prob=keep, output_keep_prob=keep, state_keep_prob=keep)
    assert_all_close(TRUE_FULL_OUTPUT, res[0])
    assert_all_close(TRUE_FULL_OUTPUT[1], res[1].h)
    assert_all_close(TRUE_FULL_FINAL_C, res[1].c)


def test_dropout_wrapper_keep_all():
    """DropoutWrapperTest.testDropoutWrapperKeepAll (upstream's keep probability is a
    variable of value 1.0)."""
    keep = torch.nn.Parameter(torch.tensor(1.0))
    res = _dropout_wrapper(input_keep_prob=keep, output_keep_prob=keep, state_keep_prob=keep)
    assert_all_close(TRUE_FULL_OUTPUT, res[0])
    assert_all_close(TRUE_FULL_OUTPUT[1], res[1].h)
    assert_all_close(TRUE_FULL_FINAL_C, res[1].c)


def test_dropout_wrapper_with_seed():
    """DropoutWrapperTest.testDropoutWrapperWithSeed (TF's graph seed is PyTorch's global
    seed here)."""
    keep_some = 0.5
    torch.manual_seed(2)
    res_standard_1 = _dropout_wrapper(input_keep_prob=keep_some, output_keep_prob=keep_some,
                                      state_keep_prob=keep_some, seed=10,
                                      parallel_iterations=1)
    torch.manual_seed(2)
    res_standard_2 = _dropout_wrapper(input_keep_prob=keep_some, output_keep_prob=keep_some,
                                      state_keep_prob=keep_some, seed=10,
                                      parallel_iterations=1)
    assert_all_close(res_standard_1[0], res_standard_2[0])
    assert_all_close(res_standard_1[1].c, res_standard_2[1].c)
    assert_all_close(res_standard_1[1].h, res_standard_2[1].h)


def test_dropout_wrapper_keep_no_output():
    """DropoutWrapperTest.testDropoutWrapperKeepNoOutput."""
    keep_all = torch.nn.Parameter(torch.tensor(1.0))
    keep_none = torch.nn.Parameter(torch.tensor(1e-6))
    res = _dropout_wrapper(input_keep_prob=keep_all, output_keep_prob=keep_none,
                           state_keep_prob=keep_all)
    assert_all_close(np.zeros(res[0].shape), res[0])
    assert_all_close(TRUE_FULL_OUTPUT[1], res[1].h)
    assert_all_close(TRUE_FULL_FINAL_C, res[1].c)


def test_dropout_wrapper_keep_no_state_except_lstm_cell_memory():
    """DropoutWrapperTest.testDropoutWrapperKeepNoStateExceptLSTMCellMemory: by default the
    state dropout never drops an LSTMStateTuple's memory c."""
    keep_all = torch.nn.Parameter(torch.tensor(1.0))
    keep_none = torch.nn.Parameter(torch.tensor(1e-6))
    res = _dropout_wrapper(input_keep_prob=keep_all, output_keep_prob=keep_all,
                           state_keep_prob=keep_none)
    true_c_state = np.array([[1.713925, 1.713925, 1.713925]], dtype=np.float32)
    assert_all_close(TRUE_FULL_OUTPUT[0], res[0][0])
    # the second output is changed by the zeroed input state
    assert np.linalg.norm(TRUE_FULL_OUTPUT[1] - res[0][1]) > 1e-4
    # h state set to zero
    assert_all_close(np.zeros(res[1].h.shape), res[1].h)
    # the c state of an LSTMStateTuple is never dropped
    assert_all_close(true_c_state, res[1].c)


def test_dropout_wrapper_keep_no_input():
    """DropoutWrapperTest.testDropoutWrapperKeepNoInput."""
    keep_all = torch.nn.Parameter(torch.tensor(1.0))
    keep_none = torch.nn.Parameter(torch.tensor(1e-6))
    # every output differs: the inputs are zeroed
    res = _dropout_wrapper(input_keep_prob=keep_none, output_keep_prob=keep_all,
                           state_keep_prob=keep_all)
    assert np.linalg.norm(res[0] - TRUE_FULL_OUTPUT) > 1e-4
    assert np.linalg.norm(res[1].h - TRUE_FULL_OUTPUT[1]) > 1e-4
    assert np.linalg.norm(res[1].c - TRUE_FULL_FINAL_C) > 1e-4


def test_dropout_wrapper_recurrent_output():
    """DropoutWrapperTest.testDropoutWrapperRecurrentOutput."""
    keep_some = 0.8
    keep_all = torch.nn.Parameter(torch.tensor(1.0))
    res = _dropout_wrapper(input_keep_prob=keep_all, output_keep_prob=keep_some,
                           state_keep_prob=keep_all, variational_recurrent=True,
                           input_size=3, batch_size=5, time_steps=7)
    # the same dropout pattern at every step
    output_mask = np.abs(res[0]) > 1e-6
    for m in output_mask[1:]:
        assert_all_close(output_mask[0], m)


def _assert_variational_masks(res):
    output_mask = np.abs(res[0]) > 1e-6
    for time_step in output_mask:
        # the same output pattern at every step
        assert_all_close(output_mask[0], time_step)
        for batch_entry in time_step:
            # every batch entry gets the same mask
            assert_all_close(batch_entry, time_step[0])
    # the state's mask is the same for every batch entry
    state_c_mask = np.abs(res[1].c) > 1e-6
    state_h_mask = np.abs(res[1].h) > 1e-6
    for batch_entry in state_c_mask:
        assert_all_close(batch_entry, state_c_mask[0])
    for batch_entry in state_h_mask:
        assert_all_close(batch_entry, state_h_mask[0])


def test_dropout_wrapper_recurrent_state_input_and_output():
    """DropoutWrapperTest.testDropoutWrapperRecurrentStateInputAndOutput."""
    keep_some = 0.9
    res = _dropout_wrapper(input_keep_prob=keep_some, output_keep_prob=keep_some,
                           state_keep_prob=keep_some, variational_recurrent=True,
                           input_size=3, batch_size=5, time_steps=7)
    _assert_variational_masks(res)


def test_dropout_wrapper_recurrent_state_input_and_output_with_seed():
    """DropoutWrapperTest.testDropoutWrapperRecurrentStateInputAndOutputWithSeed."""
    keep_some = 0.9
    runs = []
    for _ in range(2):
        torch.manual_seed(2347)
        np.random.seed(23487)
        runs.append(_dropout_wrapper(
            input_keep_prob=keep_some, output_keep_prob=keep_some, state_keep_prob=keep_some,
            variational_recurrent=True, input_size=3, batch_size=5, time_steps=7,
            seed=-234987))
    res0, res1 = runs
    _assert_variational_masks(res0)
    # the seeded computation is identical
    assert_all_close(res0[0], res1[0])
    assert_all_close(res0[1].c, res1[1].c)
    assert_all_close(res0[1].h, res1[1].h)
