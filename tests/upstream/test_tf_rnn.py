"""Port of TensorFlow's ``tensorflow/python/kernel_tests/nn_ops/rnn_test.py``.

Upstream: tensorflow/tensorflow master, blob 0fe08f44ef04f55b49b4069754ed43a265fba2c0 (the
version of the file read for this port).  Its ``RNNTest`` methods are ported one for one
(upstream's ``setUp`` seeds numpy with 23489; nothing here draws from it); the benchmarks
below them are not tests.  Graph-mode-only parts (placeholders of unknown batch size) have
no PyTorch counterpart and are left out where noted; the untranslatable tests are listed in
``tests/upstream/notes/tf_nn.md``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit import compat, rnn


class Plus1RNNCell(rnn.RNNCell):
    """``(output, new_state) = (input + 1, state + 1)`` (upstream's defines ``call``)."""

    @property
    def output_size(self):
        return 5

    @property
    def state_size(self):
        return 5

    def call(self, input_, state, scope=None):
        return input_ + 1, state + 1


class ScalarStateRNNCell(rnn.RNNCell):
    """Output the input; the state is one int32 scalar counting the steps."""

    @property
    def output_size(self):
        return 1

    @property
    def state_size(self):
        return torch.Size([])

    def zero_state(self, batch_size, dtype):
        return torch.zeros([], dtype=torch.int32)

    def call(self, input_, state, scope=None):
        return input_, state + 1


class UnbalancedOutputRNNCell(rnn.RNNCell):
    """Outputs ``(input, concat(input, input))`` of sizes 1 and 2; a scalar step counter."""

    @property
    def output_size(self):
        return torch.Size([1]), torch.Size([2])

    @property
    def state_size(self):
        return torch.Size([])

    def zero_state(self, batch_size, dtype):
        return torch.zeros([], dtype=torch.int32)

    def call(self, input_, state, scope=None):
        concatenated = torch.cat((input_, input_), dim=-1)
        return (input_, concatenated), state + 1


class TensorArrayStateRNNCell(rnn.RNNCell):
    """A state holding a TensorArray that records every input."""

    @property
    def output_size(self):
        return 1

    @property
    def state_size(self):
        return (torch.Size([]), ())

    def zero_state(self, batch_size, dtype):
        return (torch.zeros([], dtype=torch.int32),
                rnn.TensorArray(dtype=dtype, size=0, dynamic_size=True))

    def call(self, input_, state, scope=None):
        new_array = state[1].write(state[0], input_)
        return input_, (state[0] + 1, new_array)


@pytest.fixture(autouse=True)
def _numpy_seed():
    """Upstream's ``setUp``."""
    np.random.seed(23489)


def test_invalid_sequence_length_shape():
    """RNNTest.testInvalidSequenceLengthShape."""
    cell = Plus1RNNCell()
    inputs = [torch.ones(3, 4)]
    # TF: "must be a vector"; rnnkit names the argument and the shape it needs
    with pytest.raises(ValueError, match=r"sequence_length must have shape \[batch_size\]"):
        rnn.dynamic_rnn(cell, torch.stack(inputs), dtype=torch.float32,
                        sequence_length=[[4]])


@pytest.mark.parametrize("cell_cls", [rnn.BasicRNNCell, rnn.GRUCell, rnn.BasicLSTMCell,
                                      rnn.LSTMCell])
def test_invalid_dtype(cell_cls):
    """RNNTest.testInvalidDtype."""
    inputs = np.zeros((3, 4, 5), dtype=np.int32)
    with pytest.raises(ValueError, match="floating"):
        cell = cell_cls(2, dtype=torch.int32)
        rnn.dynamic_rnn(cell, inputs, dtype=torch.int32)
    # integer inputs to a float cell are refused the same way
    with pytest.raises(ValueError, match="floating"):
        rnn.dynamic_rnn(cell_cls(2), inputs)


def test_batch_size_from_input():
    """RNNTest.testBatchSizeFromInput (the unknown-batch half is graph-only).  Upstream
    checks the batch dimension; the values follow from the cell: inputs + 1 and 4 steps."""
    cell = Plus1RNNCell()
    inputs = np.zeros((3, 4, 5), dtype=np.float32)
    initial_state = np.zeros((3, 5), dtype=np.float32)
    # without initial_state
    outputs, state = rnn.dynamic_rnn(cell, inputs, dtype=torch.float32)
    assert outputs.shape[0] == 3
    assert state.shape[0] == 3
    np.testing.assert_array_equal(outputs.numpy(), np.ones((3, 4, 5), np.float32))
    np.testing.assert_array_equal(state.numpy(), np.full((3, 5), 4.0, np.float32))
    # with initial_state
    outputs, state = rnn.dynamic_rnn(cell, inputs, initial_state=initial_state)
    assert outputs.shape[0] == 3
    assert state.shape[0] == 3
    np.testing.assert_array_equal(state.numpy(), np.full((3, 5), 4.0, np.float32))


def test_scalar_state_is_accepted():
    """RNNTest.testScalarStateIsAccepted."""
    cell = ScalarStateRNNCell()
    inputs = np.array([[[1], [2], [3], [4]]], dtype=np.float32)
    outputs, state = rnn.dynamic_rnn(cell, inputs, dtype=torch.float32, sequence_length=[4])
    np.testing.assert_array_equal(outputs.numpy(), [[[1], [2], [3], [4]]])
    np.testing.assert_array_equal(state.numpy(), 4)


def test_unbalanced_output_is_accepted():
    """RNNTest.testUnbalancedOutputIsAccepted."""
    cell = UnbalancedOutputRNNCell()
    inputs = np.array([[[1], [2], [3], [4]]], dtype=np.float32)
    outputs, state = rnn.dynamic_rnn(cell, inputs, dtype=torch.float32, sequence_length=[4])
    assert isinstance(outputs, tuple)
    np.testing.assert_array_equal(outputs[0].numpy(), [[[1], [2], [3], [4]]])
    np.testing.assert_array_equal(outputs[1].numpy(), [[[1, 1], [2, 2], [3, 3], [4, 4]]])
    np.testing.assert_array_equal(state.numpy(), 4)


def test_tensor_array_state_is_accepted():
    """RNNTest.testTensorArrayStateIsAccepted."""
    cell = TensorArrayStateRNNCell()
    inputs = np.array([[[1], [2], [3], [4]]], dtype=np.float32)
    outputs, state = rnn.dynamic_rnn(cell, inputs, dtype=torch.float32, sequence_length=[4])
    state = (state[0], state[1].stack())
    np.testing.assert_array_equal(outputs.numpy(), [[[1], [2], [3], [4]]])
    np.testing.assert_array_equal(state[0].numpy(), 4)
    np.testing.assert_array_equal(state[1].numpy(), [[[1]], [[2]], [[3]], [[4]]])


def test_cell_get_initial_state():
    """RNNTest.testCellGetInitialState.  rnnkit's messages name the arguments (TF's: "batch
    size from input tensor is different from", "dtype from input tensor is different
    from"); TF's ``array_ops.shape(inputs)[0]`` is ``inputs.shape[0]`` in PyTorch."""
    cell = rnn.BasicRNNCell(5)
    with pytest.raises(ValueError, match="needs inputs or batch_size"):
        cell.get_initial_state(None, None, None)
    inputs = torch.zeros(3, 4, 1)
    with pytest.raises(ValueError, match="batch_size is 50 but inputs have 3 rows"):
        cell.get_initial_state(inputs=inputs, batch_size=50, dtype=None)
    with pytest.raises(ValueError, match="batch_size is .*50.* but inputs have 3 rows"):
        cell.get_initial_state(inputs=inputs, batch_size=torch.tensor(50), dtype=None)
    with pytest.raises(ValueError, match="dtype is torch.int16 but inputs have dtype"):
        cell.get_initial_state(inputs=inputs, batch_size=None, dtype=torch.int16)
    initial_state = cell.get_initial_state(inputs=inputs, batch_size=None, dtype=None)
    assert list(initial_state.shape) == [3, 5]
    assert initial_state.dtype == inputs.dtype
    batch = inputs.shape[0]
    initial_state = cell.get_initial_state(None, batch, inputs.dtype)
    assert list(initial_state.shape) == [3, 5]
    assert initial_state.dtype == inputs.dtype


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("cell_class", [rnn.BasicRNNCell, rnn.BasicLSTMCell, rnn.GRUCell,
                                        rnn.LSTMCell])
def test_cells_build(cell_class, dtype):
    """RNNTest.testCellsBuild (upstream's ``_assert_cell_builds``).  Upstream checks the
    output shape; zero inputs from a zero state give zero outputs in every one of these
    cells (tanh(0) = 0 candidates, zero biases)."""
    batch_size, in_size, out_size = 5, 7, 3
    cell = cell_class(out_size, dtype=dtype)
    cell.build(torch.Size((batch_size, in_size)))
    state_output = cell.get_initial_state(inputs=None, batch_size=batch_size, dtype=dtype)
    cell_output, _ = cell(torch.zeros(batch_size, in_size, dtype=dtype), state_output)
    assert list(cell_output.shape) == [batch_size, out_size]
    assert cell_output.dtype == dtype
    np.testing.assert_array_equal(cell_output.detach().numpy(), 0)


def test_basic_lstm_cell_interchange_with_lstm_cell():
    """RNNTest.testBasicLSTMCellInterchangeWithLSTMCell: a BasicLSTMCell's saved variables
    restore into an LSTMCell named "basic_lstm_cell" (TF's ``Saver``: the TF variables)."""
    basic_cell = rnn.BasicLSTMCell(1)
    basic_cell(torch.ones(1, 1), basic_cell.get_initial_state(inputs=None, batch_size=1,
                                                              dtype=torch.float32))
    with torch.no_grad():
        basic_cell.bias.copy_(torch.tensor([10.0] * 4))
    saved = compat.tf_variables_of(basic_cell)
    assert sorted(saved) == ["basic_lstm_cell/bias", "basic_lstm_cell/kernel"]

    lstm_cell = rnn.LSTMCell(1, name="basic_lstm_cell")
    lstm_cell(torch.ones(1, 1), lstm_cell.get_initial_state(inputs=None, batch_size=1,
                                                            dtype=torch.float32))
    compat.load_tf_variables(lstm_cell, saved)
    np.testing.assert_array_equal(compat.tf_variables_of(lstm_cell)["basic_lstm_cell/bias"],
                                  [10.0] * 4)
    np.testing.assert_array_equal(lstm_cell.bias.detach().numpy(), [10.0] * 4)
