"""Port of TensorFlow r1.15 ``tensorflow/contrib/rnn/python/kernel_tests/core_rnn_test.py``
(``RNNTest``, ``LSTMTest``, ``BidirectionalRNNTest``, ``MultiDimensionalLSTMTest``,
``NestedLSTMTest``, ``GRUTest``, ``RawRNNTest``; read at commits 403a18415a45 and
0802b32512e8).

Upstream feeds one placeholder as every step (``max_length * [placeholder]``): each step
gets the same input, replayed here as ``[x] * max_length``.  Its initializers are TF's
seeded ``random_uniform_initializer``; the tests compare drivers with each other (static
against dynamic, forward against backward), so rnnkit's own seeded initializer of the same
range stands in for TF's random numbers.  ``use_gpu`` / ``use_shape`` variants, variable
scopes and device placement are not ported (``tests/upstream/notes/contrib_core.md``).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from rnnkit import initializers, nest, rnn
from rnnkit.tensor_array import TensorArray

SEED = 23489


@pytest.fixture(autouse=True)
def _upstream_seed():
    """Upstream's ``setUp``: ``np.random.seed(23489)``."""
    np.random.seed(SEED)


def uniform(low=-0.01, high=0.01, seed=SEED):
    return initializers.random_uniform_initializer(low, high, seed=seed)


def randn(*shape, dtype=torch.float32):
    return torch.from_numpy(np.random.randn(*shape)).to(dtype)


def flat(state):
    return [s.detach().numpy() for s in nest.flatten(state)]


class Plus1RNNCell(rnn.RNNCell):
    """``(output, new_state) = (input + 1, state + 1)``, written as TF programs write it."""

    @property
    def output_size(self):
        return 5

    @property
    def state_size(self):
        return 5

    def __call__(self, input_, state, scope=None):
        return input_ + 1, state + 1


class DummyMultiDimensionalLSTM(rnn.RNNCell):
    """``(output, (h, c)) = (input + 1, (h + 1, c + 1))`` on inputs of any rank."""

    def __init__(self, dims):
        super().__init__()
        if not isinstance(dims, tuple):
            raise TypeError("dims must be a tuple of ints")
        self._dims = dims

    @property
    def output_size(self):
        return torch.Size(self._dims)

    @property
    def state_size(self):
        return torch.Size(self._dims), torch.Size(self._dims)

    def __call__(self, input_, state, scope=None):
        h, c = state
        return input_ + 1, (h + 1, c + 1)


class NestedRNNCell(rnn.RNNCell):
    """Inputs, outputs and state are pairs: ``((x + 1, y + 1), (h + 1, c + 1))``."""

    @property
    def output_size(self):
        return 5, 5

    @property
    def state_size(self):
        return 6, 6

    def __call__(self, input_, state, scope=None):
        h, c = state
        x, y = input_
        return (x + 1, y + 1), (h + 1, c + 1)


class StateSaver:
    """Upstream's ``TestStateSaver``: zero states by name, saved states kept by name."""

    def __init__(self, batch_size, state_size):
        self._batch_size = batch_size
        self._state_size = state_size
        self.saved_state = {}

    def state(self, name):
        size = self._state_size[name] if isinstance(self._state_size, dict) else \
            self._state_size
        if isinstance(size, int):
            size = (size,)
        elif not isinstance(size, tuple):
            raise TypeError("state_size should either be an int or a tuple")
        return torch.zeros((self._batch_size, *size))

    def save_state(self, name, state):
        self.saved_state[name] = state
        return state.clone()


def manual_loop(cell, steps, state):
    """The cell called step by step: what a static RNN means."""
    outs = []
    for x in steps:
        out, state = cell(x, state)
        outs.append(out)
    return outs, state


# ------------------------------------------------------------------------------- RNNTest


def test_invalid_sequence_length_shape():
    """RNNTest.testInvalidSequenceLengthShape (TF: "must be a vector"; rnnkit names the
    shape it expects)."""
    with pytest.raises(ValueError, match=r"sequence_length must have shape \[batch_size\]"):
        rnn.static_rnn(Plus1RNNCell(), [torch.zeros(3, 4)], dtype=torch.float32,
                       sequence_length=4)


def test_rnn():
    """RNNTest.testRNN."""
    batch_size, input_size, max_length = 2, 5, 8
    x = randn(batch_size, input_size)
    inputs = max_length * [x]
    outputs, state = rnn.static_rnn(Plus1RNNCell(), inputs, dtype=torch.float32)
    assert len(outputs) == len(inputs)
    for out, inp in zip(outputs, inputs, strict=True):
        assert out.shape == inp.shape
        assert out.dtype == inp.dtype
        np.testing.assert_allclose(out.numpy(), x.numpy() + 1.0, rtol=1e-6)
    np.testing.assert_allclose(state.numpy(), max_length * np.ones((batch_size, input_size)))


def test_dropout():
    """RNNTest.testDropout."""
    cell = Plus1RNNCell()
    full_dropout_cell = rnn.DropoutWrapper(cell, input_keep_prob=1e-12, seed=0)
    batch_size, input_size, max_length = 2, 5, 8
    x = randn(batch_size, input_size)
    inputs = max_length * [x]
    outputs, state = rnn.static_rnn(cell, inputs, dtype=torch.float32)
    dropped_outputs, _ = rnn.static_rnn(full_dropout_cell, inputs, dtype=torch.float32)
    assert len(outputs) == len(inputs)
    for out, inp in zip(outputs, inputs, strict=True):
        assert out.shape == inp.shape
        assert out.dtype == inp.dtype
    for v in outputs:
        np.testing.assert_allclose(v.numpy(), x.numpy() + 1.0, rtol=1e-6)
    for d_v in dropped_outputs[:-1]:  # dropped inputs are zeros, plus one
        np.testing.assert_allclose(d_v.numpy(), np.ones_like(x.numpy()))


def test_dynamic_calculation():
    """RNNTest.testDynamicCalculation."""
    batch_size, input_size, max_length = 2, 5, 8
    x = randn(batch_size, input_size)
    outputs, state = rnn.static_rnn(Plus1RNNCell(), max_length * [x],
                                    sequence_length=torch.tensor([2, 3]),
                                    dtype=torch.float32)
    assert len(outputs) == max_length
    values = [o.numpy() for o in outputs]
    for v in values[:2]:  # fully computed at t = 0, 1
        np.testing.assert_allclose(v, x.numpy() + 1.0, rtol=1e-6)
    # t = 2: zero for entry 0, computed for entry 1
    np.testing.assert_allclose(values[2], np.vstack((np.zeros(input_size),
                                                     1.0 + x.numpy()[1])), rtol=1e-6)
    for v in values[3:]:  # t >= 3: zeros
        np.testing.assert_array_equal(v, np.zeros_like(x.numpy()))
    # final states: entry 0 after t = 1, entry 1 after t = 2
    np.testing.assert_array_equal(state.numpy(), np.vstack((2.0 * np.ones(input_size),
                                                            3.0 * np.ones(input_size))))


# ------------------------------------------------------------------------------ LSTMTest

NUM_UNITS, INPUT_SIZE, BATCH_SIZE, NUM_PROJ, MAX_LENGTH = 3, 5, 2, 4, 8


def test_no_proj_no_sharding():
    """LSTMTest.testNoProjNoSharding (the outputs also checked against the cell stepped by
    hand)."""
    cell = rnn.LSTMCell(NUM_UNITS, initializer=uniform(), state_is_tuple=False)
    x = randn(BATCH_SIZE, INPUT_SIZE)
    outputs, state = rnn.static_rnn(cell, MAX_LENGTH * [x], dtype=torch.float32)
    assert len(outputs) == MAX_LENGTH
    for out in outputs:
        assert out.shape == (BATCH_SIZE, NUM_UNITS)
    with torch.no_grad():
        ref, ref_state = manual_loop(cell, MAX_LENGTH * [x], cell.zero_state(BATCH_SIZE))
    for out, r in zip(outputs, ref, strict=True):
        np.testing.assert_allclose(out.detach().numpy(), r.numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(state.detach().numpy(), ref_state.numpy(), rtol=1e-5, atol=1e-7)


def test_cell_clipping():
    """LSTMTest.testCellClipping: c clipped to 0 makes every output 0."""
    cell = rnn.LSTMCell(NUM_UNITS, use_peepholes=True, cell_clip=0.0, initializer=uniform(),
                        state_is_tuple=False)
    outputs, _ = rnn.static_rnn(cell, MAX_LENGTH * [randn(BATCH_SIZE, INPUT_SIZE)],
                                dtype=torch.float32)
    assert len(outputs) == MAX_LENGTH
    for value in outputs:
        assert value.shape == (BATCH_SIZE, NUM_UNITS)
        np.testing.assert_array_equal(value.detach().numpy(),
                                      np.zeros((BATCH_SIZE, NUM_UNITS)))


def test_no_proj_no_sharding_simple_state_saver():
    """LSTMTest.testNoProjNoShardingSimpleStateSaver."""
    state_saver = StateSaver(BATCH_SIZE, 2 * NUM_UNITS)
    cell = rnn.LSTMCell(NUM_UNITS, use_peepholes=False, initializer=uniform(),
                        state_is_tuple=False)
    outputs, state = rnn.static_state_saving_rnn(
        cell, MAX_LENGTH * [randn(BATCH_SIZE, INPUT_SIZE)], state_saver=state_saver,
        state_name="save_lstm")
    assert len(outputs) == MAX_LENGTH
    for out in outputs:
        assert out.shape == (BATCH_SIZE, NUM_UNITS)
    np.testing.assert_array_equal(state.detach().numpy(),
                                  state_saver.saved_state["save_lstm"].detach().numpy())


def test_no_proj_no_sharding_tuple_state_saver():
    """LSTMTest.testNoProjNoShardingTupleStateSaver."""
    state_saver = StateSaver(BATCH_SIZE, NUM_UNITS)
    cell = rnn.LSTMCell(NUM_UNITS, use_peepholes=False, initializer=uniform(),
                        state_is_tuple=True)
    outputs, state = rnn.static_state_saving_rnn(
        cell, MAX_LENGTH * [randn(BATCH_SIZE, INPUT_SIZE)], state_saver=state_saver,
        state_name=("c", "m"))
    assert len(outputs) == MAX_LENGTH
    for out in outputs:
        assert out.shape == (BATCH_SIZE, NUM_UNITS)
    last_and_saved = flat(state) + flat((state_saver.saved_state["c"],
                                         state_saver.saved_state["m"]))
    assert len(last_and_saved) == 4
    np.testing.assert_array_equal(last_and_saved[:2], last_and_saved[2:])


def test_no_proj_no_sharding_nested_tuple_state_saver():
    """LSTMTest.testNoProjNoShardingNestedTupleStateSaver."""
    state_saver = StateSaver(BATCH_SIZE, {f"{k}{i}": NUM_UNITS + i
                                          for i in range(4) for k in ("c", "m")})
    cell = rnn.MultiRNNCell([
        rnn.LSTMCell(NUM_UNITS + i, use_peepholes=False, initializer=uniform(),
                     state_is_tuple=True) for i in range(4)], state_is_tuple=True)
    assert len(cell.state_size) == 4
    for i in range(4):
        assert len(cell.state_size[i]) == 2
    state_names = (("c0", "m0"), ("c1", "m1"), ("c2", "m2"), ("c3", "m3"))
    outputs, state = rnn.static_state_saving_rnn(
        cell, MAX_LENGTH * [randn(BATCH_SIZE, INPUT_SIZE)], state_saver=state_saver,
        state_name=state_names)
    assert len(outputs) == MAX_LENGTH
    for out in outputs:  # the last cell has NUM_UNITS + 3 units
        assert out.shape == (BATCH_SIZE, NUM_UNITS + 3)
    last_states = flat(state)
    assert len(last_states) == 8
    assert len(state_saver.saved_state) == 8
    for value, name in zip(last_states, nest.flatten(state_names), strict=True):
        np.testing.assert_array_equal(value, state_saver.saved_state[name].detach().numpy())


def _proj_run(**kwargs):
    cell = rnn.LSTMCell(NUM_UNITS, use_peepholes=True, num_proj=NUM_PROJ,
                        initializer=uniform(), state_is_tuple=False, **kwargs)
    x = randn(BATCH_SIZE, INPUT_SIZE)
    outputs, state = rnn.static_rnn(cell, MAX_LENGTH * [x], dtype=torch.float32)
    assert len(outputs) == MAX_LENGTH
    with torch.no_grad():
        ref, ref_state = manual_loop(cell, MAX_LENGTH * [x], cell.zero_state(BATCH_SIZE))
    for out, r in zip(outputs, ref, strict=True):
        assert out.shape == (BATCH_SIZE, NUM_PROJ)
        np.testing.assert_allclose(out.detach().numpy(), r.numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(state.detach().numpy(), ref_state.numpy(), rtol=1e-5, atol=1e-7)


def test_proj_no_sharding():
    """LSTMTest.testProjNoSharding (outputs checked against the cell stepped by hand)."""
    _proj_run()


def test_proj_sharding():
    """LSTMTest.testProjSharding: TF's variable shards are accepted and compute the same
    thing (outputs checked against the cell stepped by hand)."""
    _proj_run(num_unit_shards=2, num_proj_shards=3)


def test_double_input():
    """LSTMTest.testDoubleInput."""
    cell = rnn.LSTMCell(NUM_UNITS, use_peepholes=True, num_proj=NUM_PROJ, num_unit_shards=2,
                        num_proj_shards=3, initializer=uniform(-1, 1), state_is_tuple=False)
    x = randn(BATCH_SIZE, INPUT_SIZE, dtype=torch.float64)
    outputs, _ = rnn.static_rnn(cell, MAX_LENGTH * [x],
                                initial_state=cell.zero_state(BATCH_SIZE, torch.float64))
    assert len(outputs) == MAX_LENGTH
    assert outputs[0].dtype == x.dtype


def test_shard_no_shard_equivalent_output():
    """LSTMTest.testShardNoShardEquivalentOutput."""
    initializer = initializers.constant_initializer(0.001)
    cell_noshard = rnn.LSTMCell(NUM_UNITS, num_proj=NUM_PROJ, use_peepholes=True,
                                initializer=initializer, num_unit_shards=2, num_proj_shards=3,
                                state_is_tuple=False)
    cell_shard = rnn.LSTMCell(NUM_UNITS, use_peepholes=True, initializer=initializer,
                              num_proj=NUM_PROJ, state_is_tuple=False)
    inputs = MAX_LENGTH * [randn(BATCH_SIZE, INPUT_SIZE)]
    outputs_noshard, state_noshard = rnn.static_rnn(cell_noshard, inputs, dtype=torch.float32)
    outputs_shard, state_shard = rnn.static_rnn(cell_shard, inputs, dtype=torch.float32)
    assert len(outputs_noshard) == len(outputs_shard) == MAX_LENGTH
    for v_noshard, v_shard in zip(outputs_noshard, outputs_shard, strict=True):
        np.testing.assert_allclose(v_noshard.detach().numpy(), v_shard.detach().numpy(),
                                   atol=1e-3)
    np.testing.assert_allclose(state_noshard.detach().numpy(), state_shard.detach().numpy(),
                               atol=1e-3)


def test_double_input_with_dropout_and_dynamic_calculation():
    """LSTMTest.testDoubleInputWithDropoutAndDynamicCalculation."""
    cell = rnn.LSTMCell(NUM_UNITS, use_peepholes=True, num_proj=NUM_PROJ, num_unit_shards=2,
                        num_proj_shards=3, initializer=uniform(), state_is_tuple=False)
    dropout_cell = rnn.DropoutWrapper(cell, 0.5, seed=0)
    x = randn(BATCH_SIZE, INPUT_SIZE, dtype=torch.float64)
    outputs, state = rnn.static_rnn(dropout_cell, MAX_LENGTH * [x],
                                    sequence_length=[2, 3],
                                    initial_state=cell.zero_state(BATCH_SIZE, torch.float64))
    assert len(outputs) == MAX_LENGTH
    assert outputs[0].dtype == x.dtype
    assert state.dtype == x.dtype
    # past each length the outputs are zero (upstream checks the dtypes only)
    assert not outputs[2][0].any() and not outputs[3].any()


def test_sharing_weights_with_reuse():
    """LSTMTest.testSharingWeightsWithReuse: TF's reused scope is the same cell object."""
    cell = rnn.LSTMCell(NUM_UNITS, use_peepholes=True, num_proj=NUM_PROJ,
                        initializer=uniform(-1, 1), state_is_tuple=False)
    cell_d = rnn.LSTMCell(NUM_UNITS, use_peepholes=True, num_proj=NUM_PROJ,
                          initializer=uniform(-1, 1, seed=SEED + 1), state_is_tuple=False)
    inputs = MAX_LENGTH * [randn(BATCH_SIZE, INPUT_SIZE)]
    outputs0, _ = rnn.static_rnn(cell, inputs, dtype=torch.float32)
    outputs1, _ = rnn.static_rnn(cell, inputs, dtype=torch.float32)
    outputs2, _ = rnn.static_rnn(cell_d, inputs, dtype=torch.float32)
    assert len(outputs0) == len(outputs1) == len(outputs2)
    for o1, o2, o3 in zip(outputs0, outputs1, outputs2, strict=True):
        o1, o2, o3 = (o.detach().numpy() for o in (o1, o2, o3))
        np.testing.assert_array_equal(o1, o2)  # the same weights
        assert np.linalg.norm(o1 - o3) > 1e-6  # different weights


def test_dynamic_rnn_allows_unknown_time_dimension():
    """LSTMTest.testDynamicRNNAllowsUnknownTimeDimension: one cell runs sequences of any
    length (the shorter run is the longer one's beginning)."""
    cell = rnn.GRUCell(30)
    x = randn(1, 9, 20)
    long, _ = rnn.dynamic_rnn(cell, x, dtype=torch.float32)
    short, _ = rnn.dynamic_rnn(cell, x[:, :4], dtype=torch.float32)
    assert long.shape == (1, 9, 30) and short.shape == (1, 4, 30)
    np.testing.assert_allclose(short.detach().numpy(), long[:, :4].detach().numpy(),
                               rtol=1e-5, atol=1e-6)


def test_dynamic_rnn_with_tuple_states():
    """LSTMTest.testDynamicRNNWithTupleStates."""
    sequence_length = [4, 6]
    cell = rnn.LSTMCell(NUM_UNITS, use_peepholes=True, num_proj=NUM_PROJ,
                        initializer=uniform(), state_is_tuple=True)
    inputs = MAX_LENGTH * [randn(BATCH_SIZE, INPUT_SIZE)]
    outputs_static, state_static = rnn.static_rnn(cell, inputs, dtype=torch.float32,
                                                  sequence_length=sequence_length)
    outputs_dynamic, state_dynamic = rnn.dynamic_rnn(cell, torch.stack(inputs),
                                                     dtype=torch.float32, time_major=True,
                                                     sequence_length=sequence_length)
    for st in (state_static, state_dynamic):
        assert isinstance(st, rnn.LSTMStateTuple)
        assert st[0] is st.c and st[1] is st.h
    np.testing.assert_array_equal(torch.stack(outputs_static).detach().numpy(),
                                  outputs_dynamic.detach().numpy())
    np.testing.assert_array_equal(np.hstack(flat(state_static)), np.hstack(flat(state_dynamic)))


def test_dynamic_rnn_with_nested_tuple_states():
    """LSTMTest.testDynamicRNNWithNestedTupleStates."""
    sequence_length = [4, 6]
    cell = rnn.MultiRNNCell([
        rnn.LSTMCell(NUM_UNITS + i, use_peepholes=True, num_proj=NUM_PROJ + i,
                     initializer=uniform(), state_is_tuple=True) for i in range(4)],
        state_is_tuple=True)
    assert len(cell.state_size) == 4
    for i in range(4):
        assert len(cell.state_size[i]) == 2
    test_zero = cell.zero_state(1, torch.float32)
    assert len(test_zero) == 4
    for i in range(4):
        assert test_zero[i][0].shape[1] == cell.state_size[i][0]
        assert test_zero[i][1].shape[1] == cell.state_size[i][1]
    inputs = MAX_LENGTH * [randn(BATCH_SIZE, INPUT_SIZE)]
    outputs_static, state_static = rnn.static_rnn(cell, inputs, dtype=torch.float32,
                                                  sequence_length=sequence_length)
    outputs_dynamic, state_dynamic = rnn.dynamic_rnn(cell, torch.stack(inputs),
                                                     dtype=torch.float32, time_major=True,
                                                     sequence_length=sequence_length)
    np.testing.assert_array_equal(torch.stack(outputs_static).detach().numpy(),
                                  outputs_dynamic.detach().numpy())
    np.testing.assert_array_equal(np.hstack(flat(state_static)), np.hstack(flat(state_dynamic)))


def _gradient_readouts(cell, run, input_values):
    """Forward values and the gradients upstream compares: of all outputs and the state
    w.r.t. the inputs; of the first output, the last output and the state each w.r.t. the
    inputs and w.r.t. the variables."""
    concat_inputs = torch.tensor(input_values, dtype=torch.float32, requires_grad=True)
    outputs, state = run(cell, concat_inputs)  # outputs: a list of steps
    variables = list(cell.parameters())
    assert len(variables) > 1
    grads = torch.autograd.grad(sum(o.sum() for o in outputs) + state.sum(), concat_inputs,
                                retain_graph=True)
    individual, var_grads = [], []
    for y in (outputs[0], outputs[-1], state):
        individual += torch.autograd.grad(y.sum(), concat_inputs, retain_graph=True)
        var_grads += torch.autograd.grad(y.sum(), variables, retain_graph=True,
                                         allow_unused=True)
    as_np = [None if g is None else g.numpy() for g in var_grads]
    return ([o.detach().numpy() for o in outputs], state.detach().numpy(), grads[0].numpy(),
            [g.numpy() for g in individual], as_np)


@pytest.mark.parametrize("use_sequence_length", [False, True])
def test_dynamic_equivalent_to_static_rnn(use_sequence_length):
    """LSTMTest.testDynamicEquivalentToStaticRNN: forward values and gradients equal."""
    time_steps = 8
    input_values = np.random.randn(time_steps, BATCH_SIZE, INPUT_SIZE)
    sequence_length = (np.random.randint(0, time_steps, size=BATCH_SIZE)
                       if use_sequence_length else None)

    def make():
        return rnn.LSTMCell(NUM_UNITS, use_peepholes=True, initializer=uniform(),
                            num_proj=NUM_PROJ, state_is_tuple=False)

    def static(cell, x):
        return rnn.static_rnn(cell, list(x.unbind(0)), sequence_length=sequence_length,
                              dtype=torch.float32)

    def dynamic(cell, x):
        out, state = rnn.dynamic_rnn(cell, x, sequence_length=sequence_length,
                                     time_major=True, dtype=torch.float32)
        return list(out.unbind(0)), state

    s = _gradient_readouts(make(), static, input_values)
    d = _gradient_readouts(make(), dynamic, input_values)
    assert len(s[0]) == len(d[0])
    for a, b in zip(s[0], d[0], strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(s[1], d[1])
    np.testing.assert_array_equal(s[2], d[2])
    assert len(s[3]) == len(d[3]) and len(s[4]) == len(d[4])
    for a, b in zip(s[3], d[3], strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(s[4], d[4], strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------- BidirectionalRNNTest


def _bidirectional_rnn(use_sequence_length):
    """Upstream's ``_createBidirectionalRNN``.  Upstream passes ``input_size`` as
    ``LSTMCell``'s second positional argument, which is ``use_peepholes`` in TF 1.x (read
    as true); rnnkit takes True/False only (README), so ``use_peepholes=True``."""
    cell_fw = rnn.LSTMCell(NUM_UNITS, True, initializer=uniform(), state_is_tuple=False)
    cell_bw = rnn.LSTMCell(NUM_UNITS, True, initializer=uniform(), state_is_tuple=False)
    x = randn(BATCH_SIZE, INPUT_SIZE)
    inputs = MAX_LENGTH * [x]
    outputs, state_fw, state_bw = rnn.static_bidirectional_rnn(
        cell_fw, cell_bw, inputs, dtype=torch.float32,
        sequence_length=[2, 3] if use_sequence_length else None)
    assert len(outputs) == len(inputs)
    for out in outputs:
        assert out.shape == (BATCH_SIZE, 2 * NUM_UNITS)
    return (torch.stack(outputs).detach().numpy(), state_fw.detach().numpy(),
            state_bw.detach().numpy())


def _assert_mirrored(out, b, t_fw, t_bw):
    """The forward output at ``t_fw`` equals the backward output at ``t_bw`` (entry b)."""
    for k in range(3):
        assert out[t_fw][b][k] == out[t_bw][b][k + 3]


def _assert_mirrored_lengths_2_3(out):
    # entry 0 has length 2, entry 1 length 3
    for t_fw, t_bw in ((0, 1), (1, 0)):
        _assert_mirrored(out, 0, t_fw, t_bw)
    for t_fw, t_bw in ((0, 2), (1, 1), (2, 0)):
        _assert_mirrored(out, 1, t_fw, t_bw)


def test_bidirectional_rnn():
    """BidirectionalRNNTest.testBidirectionalRNN: equal weights make the backward outputs
    the forward ones reversed in time within each length."""
    out, s_fw, s_bw = _bidirectional_rnn(use_sequence_length=True)
    _assert_mirrored_lengths_2_3(out)
    np.testing.assert_allclose(s_fw, s_bw, rtol=1e-6, atol=1e-6)


def test_bidirectional_rnn_without_sequence_length():
    """BidirectionalRNNTest.testBidirectionalRNNWithoutSequenceLength."""
    out, s_fw, s_bw = _bidirectional_rnn(use_sequence_length=False)
    for b in range(BATCH_SIZE):
        for i in range(MAX_LENGTH):
            _assert_mirrored(out, b, i, MAX_LENGTH - 1 - i)
    np.testing.assert_allclose(s_fw, s_bw, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("use_state_tuple,use_time_major,use_sequence_length",
                         list(itertools.product([True, False], repeat=3)))
def test_bidirectional_dynamic_rnn(use_state_tuple, use_time_major, use_sequence_length):
    """BidirectionalRNNTest.testBidirectionalDynamicRNN (upstream's use_gpu and use_shape
    options change nothing here)."""
    cell_fw = rnn.LSTMCell(NUM_UNITS, initializer=uniform(), state_is_tuple=use_state_tuple)
    cell_bw = rnn.LSTMCell(NUM_UNITS, initializer=uniform(), state_is_tuple=use_state_tuple)
    inputs_c = torch.stack(MAX_LENGTH * [randn(BATCH_SIZE, INPUT_SIZE)])
    if not use_time_major:
        inputs_c = inputs_c.transpose(0, 1)
    outputs, (state_fw, state_bw) = rnn.bidirectional_dynamic_rnn(
        cell_fw, cell_bw, inputs_c, [2, 3] if use_sequence_length else None,
        dtype=torch.float32, time_major=use_time_major)
    outputs = torch.cat(outputs, 2)
    shape = [BATCH_SIZE, MAX_LENGTH, 2 * NUM_UNITS]
    if use_time_major:
        shape[0], shape[1] = shape[1], shape[0]
    assert list(outputs.shape) == shape
    out = outputs.detach().numpy()
    if not use_time_major:
        out = np.swapaxes(out, 0, 1)
    s_fw, s_bw = flat(state_fw), flat(state_bw)
    if use_sequence_length:
        _assert_mirrored_lengths_2_3(out)
    else:
        for t in range(MAX_LENGTH):
            np.testing.assert_array_equal(out[t, :, 0:3], out[MAX_LENGTH - t - 1, :, 3:6])
    for a, b in zip(s_fw, s_bw, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


# ------------------------------------------------------- MultiDimensionalLSTMTest, NestedLSTMTest


def test_multi_dimensional_lstm_all_rnn_containers():
    """MultiDimensionalLSTMTest.testMultiDimensionalLSTMAllRNNContainers."""
    feature_dims = (3, 4, 5)
    batch_size, max_length, sequence_length = 2, 8, [4, 6]
    x = randn(batch_size, *feature_dims)
    inputs = max_length * [x]
    cell = DummyMultiDimensionalLSTM(feature_dims)  # no variables: one cell for every driver
    state_saver = StateSaver(batch_size, feature_dims)
    outputs_static, state_static = rnn.static_rnn(cell, inputs, dtype=torch.float32,
                                                  sequence_length=sequence_length)
    inputs_c = torch.stack(inputs)
    outputs_dynamic, state_dynamic = rnn.dynamic_rnn(cell, inputs_c, dtype=torch.float32,
                                                     time_major=True,
                                                     sequence_length=sequence_length)
    outputs_bid, state_fw, state_bw = rnn.static_bidirectional_rnn(
        cell, cell, inputs, dtype=torch.float32, sequence_length=sequence_length)
    outputs_sav, state_sav = rnn.static_state_saving_rnn(
        cell, inputs, sequence_length=sequence_length, state_saver=state_saver,
        state_name=("h", "c"))

    assert outputs_dynamic.shape == inputs_c.shape
    for out, inp in zip(outputs_static, inputs, strict=True):
        assert out.shape == inp.shape
    for out, inp in zip(outputs_bid, inputs, strict=True):
        shape = list(inp.shape)
        shape[1] *= 2  # forward and backward joined on the second axis
        assert list(out.shape) == shape

    static = torch.stack(outputs_static).numpy()
    np.testing.assert_array_equal(static, outputs_dynamic.numpy())
    np.testing.assert_array_equal(static, torch.stack(outputs_sav).numpy())
    np.testing.assert_array_equal(np.concatenate((static, static), axis=2),
                                  torch.stack(outputs_bid).numpy())
    ref = np.hstack(flat(state_static))
    for other in (state_dynamic, state_sav, state_fw, state_bw):
        np.testing.assert_array_equal(ref, np.hstack(flat(other)))
    # the values themselves: input + 1 up to each length, zeros after; states count steps
    np.testing.assert_array_equal(static[3, 0], x[0].numpy() + 1)
    np.testing.assert_array_equal(static[4, 0], np.zeros(feature_dims))
    np.testing.assert_array_equal(state_static[0][:, 0, 0, 0].numpy(), [4.0, 6.0])


def test_nested_io_lstm_all_rnn_containers():
    """NestedLSTMTest.testNestedIOLSTMAllRNNContainers."""
    input_size, batch_size, state_size, max_length = 5, 2, 6, 8
    sequence_length = [4, 6]
    state_saver = StateSaver(batch_size, state_size)
    single_input = (randn(batch_size, input_size), randn(batch_size, input_size))
    inputs = max_length * [single_input]
    inputs_c = (torch.stack([i[0] for i in inputs]), torch.stack([i[1] for i in inputs]))
    cell = NestedRNNCell()  # no variables: one cell for every driver
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

    def assert_same_shape(a, b, double=False):
        for x, y in zip(nest.flatten(a), nest.flatten(b), strict=True):
            shape = list(x.shape)
            if double:
                shape[1] *= 2
            assert shape == list(y.shape)

    assert_same_shape(inputs_c, outputs_dynamic)
    assert_same_shape(inputs, outputs_static)
    assert_same_shape(inputs, outputs_sav)
    assert_same_shape(inputs, outputs_bid, double=True)

    def as_array(steps):  # a list of (x, y) per step -> [time, 2, batch, 5]
        return np.array([[t.numpy() for t in step] for step in steps])

    static = as_array(outputs_static)
    dynamic = np.array([o.numpy() for o in outputs_dynamic])  # [2, time, batch, 5]
    np.testing.assert_array_equal(static, np.transpose(dynamic, (1, 0, 2, 3)))
    np.testing.assert_array_equal(static, as_array(outputs_sav))
    np.testing.assert_array_equal(np.concatenate((static, static), axis=3),
                                  as_array(outputs_bid))
    ref = np.hstack(flat(state_static))
    for other in (state_dynamic, state_sav, state_fw, state_bw):
        np.testing.assert_array_equal(ref, np.hstack(flat(other)))
    np.testing.assert_array_equal(static[0, 1], single_input[1].numpy() + 1)


# ------------------------------------------------------------------------------- GRUTest


def test_dynamic():
    """GRUTest.testDynamic (upstream runs it; here also TF's length semantics: zeros past
    each length, the final state the output at the last valid step)."""
    time_steps, num_units, input_size, batch_size = 8, 3, 5, 2
    input_values = randn(time_steps, batch_size, input_size)
    sequence_length = np.random.randint(0, time_steps, size=batch_size)
    cell = rnn.GRUCell(num_units=num_units)
    outputs, state = rnn.dynamic_rnn(cell, input_values, sequence_length=sequence_length,
                                     time_major=True, dtype=torch.float32)
    assert outputs.shape == (time_steps, batch_size, num_units)
    out, st = outputs.detach().numpy(), state.detach().numpy()
    for b, length in enumerate(sequence_length):
        np.testing.assert_array_equal(out[length:, b], 0.0)
        np.testing.assert_array_equal(st[b], out[length - 1, b] if length else 0.0)


# ------------------------------------------------------------------------------ RawRNNTest


def _raw_rnn_vs_dynamic_rnn(max_time):
    """Upstream's ``_testRawRNN``: raw_rnn reading its inputs step by step equals
    dynamic_rnn, values and gradients."""
    batch_size, input_depth, num_units = 16, 4, 3
    inputs = torch.from_numpy(np.random.randn(max_time, batch_size, input_depth)
                              .astype(np.float32)).requires_grad_(True)
    if max_time == 0:
        rand_seq_len = np.zeros(batch_size, dtype=np.int64)
    else:
        rand_seq_len = np.random.randint(max_time, size=batch_size)
    rand_seq_len[0] = max_time  # the same output length for both drivers
    sequence_length = torch.from_numpy(rand_seq_len)
    cell = rnn.LSTMCell(num_units, state_is_tuple=True)

    def loop_fn(time_, cell_output, cell_state, unused_loop_state):
        emit_output = cell_output  # None at time 0
        next_state = cell.zero_state(batch_size, torch.float32) if cell_output is None \
            else cell_state
        elements_finished = time_ >= sequence_length
        # the very last iteration must emit a dummy input
        next_input = torch.zeros(batch_size, input_depth) if bool(elements_finished.all()) \
            else inputs[time_]
        return elements_finished, next_input, next_state, emit_output, None

    outputs_ta, final_state, _ = rnn.raw_rnn(cell, loop_fn)
    outputs = outputs_ta.stack()
    outputs_dynamic, final_state_dynamic = rnn.dynamic_rnn(
        cell, inputs, time_major=True, dtype=torch.float32, sequence_length=sequence_length)
    np.testing.assert_allclose(outputs_dynamic.detach().numpy(), outputs.detach().numpy(),
                               rtol=1e-6, atol=1e-6)
    for a, b in zip(flat(final_state_dynamic), flat(final_state), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    # with no time steps there is nothing to differentiate (as upstream)
    if max_time > 0:
        wrt = [inputs, *cell.parameters()]
        grads = torch.autograd.grad(outputs.sum() + sum(s.sum() for s in final_state), wrt)
        grads_dynamic = torch.autograd.grad(
            outputs_dynamic.sum() + sum(s.sum() for s in final_state_dynamic), wrt)
        assert len(grads) == len(grads_dynamic)
        for a, b in zip(grads_dynamic, grads, strict=True):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_raw_rnn_zero_length():
    """RawRNNTest.testRawRNNZeroLength."""
    _raw_rnn_vs_dynamic_rnn(max_time=0)


def test_raw_rnn():
    """RawRNNTest.testRawRNN."""
    _raw_rnn_vs_dynamic_rnn(max_time=10)


def _all_steps_loop(cell, inputs, max_time, batch_size, input_depth, emit, loop_state_fn):
    def loop_fn(time_, cell_output, cell_state, loop_state):
        loop_state = loop_state_fn(time_, cell_output, loop_state)
        next_state = cell.zero_state(batch_size, torch.float32) if cell_output is None \
            else cell_state
        elements_finished = torch.full((batch_size,), time_ >= max_time)
        next_input = torch.zeros(batch_size, input_depth) if time_ >= max_time \
            else inputs[time_]
        return elements_finished, next_input, next_state, emit(cell_output), loop_state

    return loop_fn


def test_loop_state():
    """RawRNNTest.testLoopState."""
    max_time, batch_size, input_depth, num_units = 10, 16, 4, 3
    inputs = randn(max_time, batch_size, input_depth)
    cell = rnn.LSTMCell(num_units, state_is_tuple=True)

    def count(time_, cell_output, loop_state):
        if cell_output is None:
            return torch.tensor([0])
        return torch.stack([loop_state.squeeze() + 1])

    r = rnn.raw_rnn(cell, _all_steps_loop(cell, inputs, max_time, batch_size, input_depth,
                                          lambda o: o, count))
    assert r[-1].tolist() == [10]


def test_loop_state_with_tensor_array():
    """RawRNNTest.testLoopStateWithTensorArray."""
    max_time, batch_size, input_depth, num_units = 4, 16, 4, 3
    inputs = randn(max_time, batch_size, input_depth)
    cell = rnn.LSTMCell(num_units, state_is_tuple=True)

    def accumulate(time_, cell_output, loop_state):
        if cell_output is None:
            ta = TensorArray(dynamic_size=True, size=0, dtype=torch.int32,
                             clear_after_read=False)
            return ta.write(0, torch.tensor(1, dtype=torch.int32))
        return loop_state.write(time_, loop_state.read(time_ - 1) + time_)

    r = rnn.raw_rnn(cell, _all_steps_loop(cell, inputs, max_time, batch_size, input_depth,
                                          lambda o: o, accumulate))
    assert r[-1].stack().tolist() == [1, 2, 2 + 2, 4 + 3, 7 + 4]


def test_emit_different_structure_than_cell_output():
    """RawRNNTest.testEmitDifferentStructureThanCellOutput."""
    max_time, batch_size, input_depth, num_units = 10, 16, 4, 3
    inputs = randn(max_time, batch_size, input_depth)
    unknown_dim = 1  # upstream feeds a placeholder to check emit shapes may be unknown
    cell = rnn.LSTMCell(num_units, state_is_tuple=True)

    def emit(cell_output):
        if cell_output is None:  # the structure of the emits (per batch entry)
            return (torch.zeros(2, 3, dtype=torch.int32),
                    torch.zeros(unknown_dim, dtype=torch.int64))
        return (torch.ones(batch_size, 2, 3, dtype=torch.int32),
                torch.ones(batch_size, unknown_dim, dtype=torch.int64))

    r = rnn.raw_rnn(cell, _all_steps_loop(cell, inputs, max_time, batch_size, input_depth,
                                          emit, lambda *_: None))
    output_ta = r[0]
    assert len(output_ta) == 2
    assert [ta.dtype for ta in output_ta] == [torch.int32, torch.int64]
    output = [ta.stack() for ta in output_ta]
    np.testing.assert_array_equal(output[0].numpy(),
                                  np.ones((max_time, batch_size, 2, 3), np.int32))
    np.testing.assert_array_equal(output[1].numpy(),
                                  np.ones((max_time, batch_size, 1), np.int64))
    assert output[0].dtype == torch.int32 and output[1].dtype == torch.int64
