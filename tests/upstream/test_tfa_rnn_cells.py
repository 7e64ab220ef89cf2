"""Port of tensorflow-addons 0.23 ``tensorflow_addons/rnn/tests/`` (``esn_cell_test.py``,
``layer_norm_lstm_cell_test.py``, ``layer_norm_simple_rnn_cell_test.py``,
``nas_cell_test.py``, ``peephole_lstm_cell_test.py``) against ``rnnkit.tfa.rnn``.

Upstream's hard-coded values come from constant initializers: ``tf.constant_initializer(v)``
is ``initializers.constant_initializer(v)``.  Keras's ``StackedRNNCells`` is
``rnn.MultiRNNCell`` and Keras's ``RNN`` layer is ``rnn.dynamic_rnn`` (batch-major, its last
output).  Upstream's Keras-layer tests (shape checks and one ``fit``) run here on the seeded
weights and inputs that ``tests/golden/make_upstream_tfa_rnn_golden.py`` recorded from TF
2.15 / tensorflow-addons 0.23, and check tfa's recorded values.  Keras's ``build`` shape is a
``torch.Size`` (rnnkit's cells are built from one).  Keras serialisation, regularizers and
constraints are not ported (``tests/upstream/notes/tfa.md``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from conftest import load_fixture

from rnnkit import compat, initializers, rnn, tfa

ESNCell = tfa.rnn.ESNCell
LayerNormLSTMCell = tfa.rnn.LayerNormLSTMCell
LayerNormSimpleRNNCell = tfa.rnn.LayerNormSimpleRNNCell
NASCell = tfa.rnn.NASCell
PeepholeLSTMCell = tfa.rnn.PeepholeLSTMCell

GOLDEN = load_fixture("upstream_tfa_rnn_cells.npz")


def golden(case: str) -> dict[str, np.ndarray]:
    """The arrays recorded for ``case``, its prefix dropped."""
    prefix = f"{case}:"
    return {k[len(prefix):]: v for k, v in GOLDEN.items() if k.startswith(prefix)}


def golden_vars(fx: dict[str, np.ndarray], prefix: str = "var:") -> dict[str, np.ndarray]:
    return {k[len(prefix):]: v for k, v in fx.items() if k.startswith(prefix)}


def t(a: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float32))


def n(x: torch.Tensor) -> np.ndarray:
    return x.detach().numpy()


def tf_one_hot(indices: list[int], depth: int) -> torch.Tensor:
    """``tf.one_hot``: an index outside ``[0, depth)`` gives a row of zeros."""
    out = torch.zeros(len(indices), depth)
    for row, i in enumerate(indices):
        if 0 <= i < depth:
            out[row, i] = 1.0
    return out


def keras_categorical_crossentropy(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    """Keras's ``categorical_crossentropy`` loss (``from_logits=False``) averaged over every
    leading entry (``SUM_OVER_BATCH_SIZE``): predictions normalised to sum to one along the
    last axis, clipped to ``[1e-7, 1 - 1e-7]``."""
    p = (y_pred / y_pred.sum(-1, keepdim=True)).clamp(1e-7, 1 - 1e-7)
    return -(y_true * torch.log(p)).sum(-1).mean()


def keras_rmsprop_step(params: list[torch.Tensor]) -> None:
    """One step of Keras 2.15's ``RMSprop()`` from zero velocities (``learning_rate=1e-3``,
    ``rho=0.9``, ``epsilon=1e-7``): ``v = 0.1 g^2``, ``w -= 1e-3 g / sqrt(v + 1e-7)``."""
    with torch.no_grad():
        for p in params:
            velocity = 0.1 * p.grad.square()
            p.sub_(1e-3 * p.grad * torch.rsqrt(velocity + 1e-7))


def loaded(cell, fx: dict[str, np.ndarray]):
    """``cell`` with the recorded variables (TF's Keras names) loaded."""
    compat.load_tf_variables(cell, golden_vars(fx))
    return cell


X3 = [[1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0], [3.0, 3.0, 3.0, 3.0]]


# ----------------------------------------------------------------------------- esn_cell_test


def test_base_esn():
    """esn_cell_test.test_base_esn: upstream passes the state as a list of two copies, of
    which tfa's cell reads the first (``state[0]``); rnnkit's one-tensor state is that
    tensor."""
    units = 3
    expected_output = np.array([[2.77, 2.77, 2.77], [4.77, 4.77, 4.77], [6.77, 6.77, 6.77]],
                               dtype=np.float32)
    const_initializer = initializers.constant_initializer(0.5)
    cell = ESNCell(units=units, connectivity=1, leaky=1, spectral_radius=0.9, use_norm2=True,
                   use_bias=True, activation=None, kernel_initializer=const_initializer,
                   recurrent_initializer=const_initializer, bias_initializer=const_initializer)
    inputs = t(X3)
    state_value = t(0.3 * np.ones((units, units), dtype=np.float32))
    output, state = cell(inputs, state_value)
    np.testing.assert_allclose(n(output), expected_output, 1e-5)
    np.testing.assert_allclose(n(state), expected_output, 1e-5)


def _esn_reservoir(use_norm2: bool) -> np.ndarray:
    cell = ESNCell(units=3, use_norm2=use_norm2, recurrent_initializer="ones",
                   connectivity=1.0)
    cell.build(torch.Size((3, 3)))
    # Keras's get_weights()[0]: the first variable tfa builds
    assert list(compat.collect(cell, cell.tf_name))[0] == "esn_cell/recurrent_kernel"
    return n(list(cell.parameters())[0])


def test_esn_echo_state_property_eig():
    """esn_cell_test.test_esn_echo_state_property_eig"""
    recurrent_weights = _esn_reservoir(use_norm2=False)
    max_eig = np.abs(np.linalg.eigvals(recurrent_weights)).max()
    assert max_eig < 1, "max(eig(W)) < 1"
    # upstream checks the bound; the all-ones reservoir is scaled to spectral_radius exactly
    np.testing.assert_allclose(max_eig, 0.9, rtol=1e-6)


def test_esn_echo_state_property_norm2():
    """esn_cell_test.test_esn_echo_state_property_norm2"""
    recurrent_weights = _esn_reservoir(use_norm2=True)
    max_eig = np.abs(np.linalg.eigvals(recurrent_weights)).max()
    assert max_eig < 1, "max(eig(W)) < 1"
    # upstream checks the bound; ones(3, 3) / its 2-norm (3) * 0.9 is 0.3 everywhere, whose
    # largest eigenvalue is 0.9
    np.testing.assert_allclose(recurrent_weights, np.full((3, 3), 0.3), rtol=1e-6)
    np.testing.assert_allclose(max_eig, 0.9, rtol=1e-6)


def test_esn_connectivity():
    """esn_cell_test.test_esn_connectivity"""
    units = 1000
    connectivity = 0.5
    cell = ESNCell(units=units, connectivity=connectivity, use_norm2=True,
                   recurrent_initializer="ones")
    cell.build(torch.Size((3, 3)))
    recurrent_weights = n(list(cell.parameters())[0])
    actual_connectivity = np.count_nonzero(recurrent_weights) / units**2
    np.testing.assert_allclose(np.asarray([actual_connectivity]),
                               np.asanyarray([connectivity]), 1e-2)


def test_esn_keras_rnn():
    """esn_cell_test.test_esn_keras_rnn: upstream checks the shape of ``RNN(ESNCell(10))``
    on random inputs; here tfa's seeded weights, inputs and outputs are recorded and checked
    too."""
    fx = golden("esn_keras_rnn")
    cell = loaded(ESNCell(10), fx)
    seq_input = t(fx["inputs"])
    outputs, _ = rnn.dynamic_rnn(cell, seq_input, dtype=torch.float32)
    rnn_outputs = outputs[:, -1]
    assert rnn_outputs.shape == (2, 10)
    np.testing.assert_allclose(n(rnn_outputs), fx["outputs"], rtol=1e-5, atol=1e-6)


def test_esn_keras_rnn_e2e():
    """esn_cell_test.test_esn_keras_rnn_e2e: upstream fits ``Masking`` + ``RNN(ESNCell(5))``
    one epoch of one batch.  No input step is all zeros, so the mask keeps every step; the
    model's outputs and the batch's loss are tfa's recorded ones, and the reservoir (not
    trainable) is unchanged, as after tfa's step."""
    fx = golden("esn_keras_rnn_e2e")
    inputs, targets = t(fx["inputs"]), t(fx["targets"])
    assert (inputs != 0).any(-1).all()  # Masking(mask_value=0.0) masks no step
    cell = loaded(ESNCell(5), fx)
    assert not any(p.requires_grad for p in cell.parameters())
    outputs, _ = rnn.dynamic_rnn(cell, inputs, dtype=torch.float32)
    np.testing.assert_allclose(n(outputs[:, -1]), fx["outputs"], rtol=1e-5, atol=1e-6)
    loss = keras_categorical_crossentropy(targets, outputs[:, -1])
    np.testing.assert_allclose(n(loss), fx["loss"], rtol=1e-5)
    after = compat.tf_variables_of(cell)
    for name, value in golden_vars(fx, "after:var:").items():
        np.testing.assert_array_equal(after[name], value)


# ------------------------------------------------------------------- layer_norm_lstm_cell_test


def test_cell_output():
    """layer_norm_lstm_cell_test.test_cell_output"""
    x = torch.ones(1, 2)
    c0 = t(0.1 * np.asarray([[0, 1]]))
    h0 = t(0.1 * np.asarray([[2, 3]]))
    state0 = [h0, c0]
    c1 = t(0.1 * np.asarray([[4, 5]]))
    h1 = t(0.1 * np.asarray([[6, 7]]))
    state1 = [h1, c1]
    state = (state0, state1)
    const_initializer = initializers.constant_initializer(0.5)

    def single_cell():
        return LayerNormLSTMCell(units=2, kernel_initializer=const_initializer,
                                 recurrent_initializer=const_initializer,
                                 bias_initializer=const_initializer, norm_epsilon=1e-12)

    cell = rnn.MultiRNNCell([single_cell() for _ in range(2)])
    output_v, output_states_v = cell(x, state)

    expected_output = np.array([[-0.47406167, 0.47406143]])
    expected_state0_c = np.array([[-1.0, 1.0]])
    expected_state0_h = np.array([[-0.47406167, 0.47406143]])
    expected_state1_c = np.array([[-1.0, 1.0]])
    expected_state1_h = np.array([[-0.47406167, 0.47406143]])

    actual_state0_h = n(output_states_v[0][0])
    actual_state0_c = n(output_states_v[0][1])
    actual_state1_h = n(output_states_v[1][0])
    actual_state1_c = n(output_states_v[1][1])

    np.testing.assert_allclose(n(output_v), expected_output, 1e-5)
    np.testing.assert_allclose(expected_state0_c, actual_state0_c, 1e-5)
    np.testing.assert_allclose(expected_state0_h, actual_state0_h, 1e-5)
    np.testing.assert_allclose(expected_state1_c, actual_state1_c, 1e-5)
    np.testing.assert_allclose(expected_state1_h, actual_state1_h, 1e-5)

    # input_size != units
    x = torch.ones(1, 3)
    c = t(0.1 * np.asarray([[0, 1]]))
    h = t(0.1 * np.asarray([[2, 3]]))
    state = [h, c]
    cell = LayerNormLSTMCell(units=2, kernel_initializer=const_initializer,
                             recurrent_initializer=const_initializer,
                             bias_initializer=const_initializer, norm_epsilon=1e-12)
    output_v, output_states_v = cell(x, state)
    expected_h = np.array([[-0.47406167, 0.47406143]])
    expected_c = np.array([[-1.0, 1.0]])
    np.testing.assert_allclose(n(output_v), expected_h, 1e-5)
    np.testing.assert_allclose(n(output_states_v[0]), expected_h, 1e-5)
    np.testing.assert_allclose(n(output_states_v[1]), expected_c, 1e-5)


def test_build():
    """layer_norm_lstm_cell_test.test_build: Keras's ``cell.weights`` (names and order) are
    the cell's TF variable layout."""
    cell = LayerNormLSTMCell(10, name="layer_norm_lstm_cell")
    cell(torch.ones(12, 20), cell.get_initial_state(batch_size=12, dtype=torch.float32))
    weights = list(compat.collect(cell, cell.tf_name))
    assert len(weights) == 9
    assert len(list(cell.parameters())) == 9
    assert weights[0] == "layer_norm_lstm_cell/kernel"
    assert weights[1] == "layer_norm_lstm_cell/recurrent_kernel"
    assert weights[2] == "layer_norm_lstm_cell/bias"
    assert weights[3] == "layer_norm_lstm_cell/kernel_norm/gamma"
    assert weights[4] == "layer_norm_lstm_cell/kernel_norm/beta"
    assert weights[5] == "layer_norm_lstm_cell/recurrent_norm/gamma"
    assert weights[6] == "layer_norm_lstm_cell/recurrent_norm/beta"
    assert weights[7] == "layer_norm_lstm_cell/state_norm/gamma"
    assert weights[8] == "layer_norm_lstm_cell/state_norm/beta"


# ------------------------------------------------------------- layer_norm_simple_rnn_cell_test


def test_with_masking_layer_layernorm_rnn():
    """layer_norm_simple_rnn_cell_test.test_with_masking_layer_layernorm_rnn: upstream fits
    ``Masking`` + ``RNN(LayerNormSimpleRNNCell(5), return_sequences=True)`` one epoch of one
    batch (``categorical_crossentropy``, ``rmsprop``).  No input step is all zeros, so the
    mask keeps every step.  Here the model's outputs, the batch's loss and the variables
    after Keras's RMSprop step (written out: ``keras_rmsprop_step``) are tfa's recorded
    ones."""
    fx = golden("layernorm_rnn_masking")
    inputs, targets = t(fx["inputs"]), t(fx["targets"])
    assert (inputs != 0).any(-1).all()  # Masking(mask_value=0.0) masks no step
    cell = loaded(LayerNormSimpleRNNCell(units=5), fx)
    outputs, _ = rnn.dynamic_rnn(cell, inputs, dtype=torch.float32)
    np.testing.assert_allclose(n(outputs), fx["outputs"], rtol=1e-5, atol=1e-6)
    loss = keras_categorical_crossentropy(targets, outputs)
    np.testing.assert_allclose(n(loss), fx["loss"], rtol=1e-5)
    loss.backward()
    keras_rmsprop_step(list(cell.parameters()))
    after = compat.tf_variables_of(cell)
    expected = golden_vars(fx, "after:var:")
    assert set(after) == set(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(after[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


# ------------------------------------------------------------------------------ nas_cell_test

NAS_UNITS, NAS_BATCH = 6, 3


def _nas_check(res, expected_output, expected_state, state_depth):
    assert len(res) == 2
    np.testing.assert_allclose(n(res[0]), expected_output, rtol=1e-6, atol=1e-6)
    assert len(res[1]) == 2
    new_c, new_h = res[1]
    assert new_c.shape == (NAS_BATCH, NAS_UNITS)
    assert new_h.shape == (NAS_BATCH, state_depth)
    np.testing.assert_allclose(np.concatenate([n(s) for s in res[1]], axis=1),
                               expected_state, rtol=1e-6, atol=1e-6)


def test_base():
    """nas_cell_test.test_base"""
    out = [0.576751, 0.618936, 0.627393]
    c = [0.7157977, 0.7804162, 0.7945764]
    m = [0.5767508, 0.6189357, 0.6273934]
    expected_output = np.array([[v] * 6 for v in out])
    expected_state = np.array([[ci] * 6 + [mi] * 6 for ci, mi in zip(c, m, strict=True)])
    # upstream's last two c entries of the third row are 0.7945765 (float32 rounding of
    # the same value; within its atol of 1e-6 of 0.7945764)
    expected_state[2, 4:6] = 0.7945765
    const_initializer = initializers.constant_initializer(0.5)
    cell = NASCell(units=NAS_UNITS, kernel_initializer=const_initializer,
                   recurrent_initializer=const_initializer)
    inputs = t(X3)
    state_value = t(0.1 * np.ones((NAS_BATCH, NAS_UNITS), dtype=np.float32))
    init_state = [state_value, state_value]
    output, state = cell(inputs, init_state)
    _nas_check([output, state], expected_output, expected_state, NAS_UNITS)


def test_projection():
    """nas_cell_test.test_projection"""
    projection = 5
    out = [1.697418, 1.840037, 1.873985]
    c = [0.69855207, 0.77073824, 0.78973997]
    m = [1.69741797, 1.84003687, 1.87398517]
    expected_output = np.array([[v] * projection for v in out])
    expected_state = np.array([[ci] * 6 + [mi] * projection
                               for ci, mi in zip(c, m, strict=True)])
    const_initializer = initializers.constant_initializer(0.5)
    cell = NASCell(units=NAS_UNITS, projection=projection,
                   kernel_initializer=const_initializer,
                   recurrent_initializer=const_initializer,
                   projection_initializer=const_initializer)
    inputs = t(X3)
    state_value_c = t(0.1 * np.ones((NAS_BATCH, NAS_UNITS), dtype=np.float32))
    state_value_h = t(0.1 * np.ones((NAS_BATCH, projection), dtype=np.float32))
    output, state = cell(inputs, [state_value_c, state_value_h])
    _nas_check([output, state], expected_output, expected_state, projection)


def test_keras_rnn():
    """nas_cell_test.test_keras_rnn: upstream checks the shape of ``RNN(NASCell(10))`` on
    random inputs; here tfa's seeded weights, inputs and outputs are recorded and checked
    too."""
    fx = golden("nas_keras_rnn")
    cell = loaded(NASCell(10), fx)
    seq_input = t(fx["inputs"])
    outputs, _ = rnn.dynamic_rnn(cell, seq_input, dtype=torch.float32)
    rnn_outputs = outputs[:, -1]
    assert rnn_outputs.shape == (2, 10)
    np.testing.assert_allclose(n(rnn_outputs), fx["outputs"], rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------- peephole_lstm_cell_test


def test_peephole_lstm_cell():
    """peephole_lstm_cell_test.test_peephole_lstm_cell: upstream seeds TF
    (``tf.random.set_seed(12345)``) but its value does not depend on the draw (the zero
    initial state meets the random recurrent kernel only through ``h @ recurrent_kernel``,
    which is zero; the peephole weights take ``kernel_initializer="ones"``)."""

    def _run_cell(cell_fn, **kwargs):
        inputs = tf_one_hot([1, 2, 3, 4], 4)
        cell = cell_fn(5, **kwargs)
        cell.build(inputs.shape)
        initial_state = cell.get_initial_state(inputs=inputs, batch_size=4,
                                               dtype=torch.float32)
        output, _ = cell(inputs, initial_state)
        return n(output)

    torch.manual_seed(12345)
    first_implementation_output = _run_cell(PeepholeLSTMCell, kernel_initializer="ones",
                                            recurrent_activation="sigmoid", implementation=1)
    second_implementation_output = _run_cell(PeepholeLSTMCell, kernel_initializer="ones",
                                             recurrent_activation="sigmoid", implementation=2)
    expected_output = np.asarray([[0.417551] * 5] * 3 + [[0.0] * 5], dtype=np.float32)
    np.testing.assert_allclose(first_implementation_output, second_implementation_output)
    np.testing.assert_allclose(first_implementation_output, expected_output, rtol=1e-6,
                               atol=1e-6)
