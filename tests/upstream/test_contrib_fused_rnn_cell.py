"""Port of TensorFlow r1.15
``tensorflow/contrib/rnn/python/kernel_tests/fused_rnn_cell_test.py`` (``FusedRnnCellTest``;
read at commit 11461ab3bb36).

contrib's ``FusedRNNCellAdaptor`` (a cell run over a whole ``[time, batch, depth]`` sequence
by ``static_rnn`` or ``dynamic_rnn``) and ``TimeReversedFusedRNN`` (``rnnkit.rnn``; the
tests skip only if they were missing).  Upstream gives both
models one seeded initializer, so their weights are equal; here the fused cell's weights
are copied from the basic cell's (TF variable layout), which states the same.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit import compat, initializers, rnn

pending_adaptor = pytest.mark.skipif(
    not hasattr(rnn, "FusedRNNCellAdaptor"),
    reason="pending: rnnkit.rnn.FusedRNNCellAdaptor (issue 25)")
pending_reversed = pytest.mark.skipif(
    not hasattr(rnn, "TimeReversedFusedRNN"),
    reason="pending: rnnkit.rnn.TimeReversedFusedRNN (issue 25)")

BATCH_SIZE, INPUT_SIZE, TIMELEN = 5, 20, 15


def _inputs():
    # upstream draws them unseeded; the suite's seed makes them repeatable
    return torch.from_numpy(np.random.randn(TIMELEN, BATCH_SIZE, INPUT_SIZE)) \
        .requires_grad_(True)


def _basic_cell(seed):
    init = initializers.random_uniform_initializer(-0.01, 0.01, seed=seed)
    cell = rnn.BasicRNNCell(10, dtype=torch.float64)
    rnn.build(cell, torch.zeros(BATCH_SIZE, INPUT_SIZE, dtype=torch.float64),
              torch.zeros(BATCH_SIZE, 10, dtype=torch.float64))
    names = compat.tf_variables_of(cell)
    compat.load_tf_variables(cell, {
        n: v if n.endswith("bias") else init(v.shape, torch.float64).numpy()
        for n, v in names.items()})
    return cell


def _copy_weights(src: rnn.RNNCell) -> rnn.RNNCell:
    dst = rnn.BasicRNNCell(10, dtype=torch.float64)
    rnn.build(dst, torch.zeros(BATCH_SIZE, INPUT_SIZE, dtype=torch.float64),
              torch.zeros(BATCH_SIZE, 10, dtype=torch.float64))
    compat.load_tf_variables(dst, compat.tf_variables_of(src))
    return dst


def _readouts(outputs, inputs, variables):
    total = outputs.sum()
    grads = torch.autograd.grad(total, inputs, retain_graph=True)[0]
    wgrads = torch.autograd.grad(total, variables)
    return grads.numpy(), [g.numpy() for g in wgrads]


@pending_adaptor
@pytest.mark.parametrize("use_dynamic_rnn", [False, True])
def test_basic_rnn_fused_wrapper(use_dynamic_rnn):
    """FusedRnnCellTest.testBasicRNNFusedWrapper (static and dynamic adaptors)."""
    inputs = _inputs()
    cell = _basic_cell(19890212)
    outputs, state = rnn.static_rnn(cell, list(inputs.unbind(0)), dtype=torch.float64)
    packed = torch.stack(outputs)
    basic_grads, basic_wgrads = _readouts(packed, inputs, list(cell.parameters()))

    inner = _copy_weights(cell)
    fused_cell = rnn.FusedRNNCellAdaptor(inner, use_dynamic_rnn=use_dynamic_rnn)
    f_outputs, f_state = fused_cell(inputs, dtype=torch.float64)
    f_grads, f_wgrads = _readouts(f_outputs, inputs, list(inner.parameters()))

    np.testing.assert_allclose(packed.detach().numpy(), f_outputs.detach().numpy(),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(state.detach().numpy(), f_state.detach().numpy(),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(basic_grads, f_grads, rtol=1e-6, atol=1e-6)
    for basic, fused in zip(basic_wgrads, f_wgrads, strict=True):
        np.testing.assert_allclose(basic, fused, rtol=1e-2, atol=1e-2)


@pending_adaptor
@pending_reversed
def test_time_reversed_fused_rnn():
    """FusedRnnCellTest.testTimeReversedFusedRNN: a fused forward cell and a time-reversed
    fused cell equal ``static_bidirectional_rnn``."""
    inputs = _inputs()
    fw_cell, bw_cell = _basic_cell(19890213), _basic_cell(19890213)
    outputs, fw_state, bw_state = rnn.static_bidirectional_rnn(
        fw_cell, bw_cell, list(inputs.unbind(0)), dtype=torch.float64)
    packed = torch.stack(outputs)
    basic_grads, basic_wgrads = _readouts(
        packed, inputs, [*fw_cell.parameters(), *bw_cell.parameters()])

    fw_inner, bw_inner = _copy_weights(fw_cell), _copy_weights(bw_cell)
    fused_cell = rnn.FusedRNNCellAdaptor(fw_inner)
    fused_bw_cell = rnn.TimeReversedFusedRNN(rnn.FusedRNNCellAdaptor(bw_inner))
    fw_outputs, f_fw_state = fused_cell(inputs, dtype=torch.float64)
    bw_outputs, f_bw_state = fused_bw_cell(inputs, dtype=torch.float64)
    f_outputs = torch.cat([fw_outputs, bw_outputs], 2)
    f_grads, f_wgrads = _readouts(
        f_outputs, inputs, [*fw_inner.parameters(), *bw_inner.parameters()])

    np.testing.assert_allclose(packed.detach().numpy(), f_outputs.detach().numpy(),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fw_state.detach().numpy(), f_fw_state.detach().numpy(),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(bw_state.detach().numpy(), f_bw_state.detach().numpy(),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(basic_grads, f_grads, rtol=1e-6, atol=1e-6)
    for basic, fused in zip(basic_wgrads, f_wgrads, strict=True):
        np.testing.assert_allclose(basic, fused, rtol=1e-2, atol=1e-2)
