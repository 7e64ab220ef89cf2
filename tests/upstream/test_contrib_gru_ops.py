"""Port of TensorFlow r1.15 ``tensorflow/contrib/rnn/python/kernel_tests/gru_ops_test.py``
(``GRUBlockCellTest``; read at commit e08079463bf4).  The benchmarks are not tests.

Upstream gives GRUCell and GRUBlockCell the same weights through one seeded scope
initializer (uniform(-0.01, 0.01), the biases keeping their own 1.0 and 0.0); here GRUCell's
TF variables (``gates/kernel``, ``gates/bias``, ``candidate/kernel``, ``candidate/bias``)
are drawn (rnnkit's draw, same range) and loaded into GRUBlockCell under contrib
GRUBlockCell's own names (``w_ru``, ``b_ru``, ``w_c``, ``b_c``), and the gradients are read
under those names.  numpy's inputs replay TF's seeds (``setUp`` seeds numpy with 87654321;
some tests reseed with 1994).
"""

from __future__ import annotations

import numpy as np
import torch

from rnnkit import compat, rnn

TF_TEST_SEED = 87654321  # random_seed.DEFAULT_GRAPH_SEED: TensorFlowTestCase.setUp's numpy seed

#: TF 1.x GRUCell's variable -> contrib GRUBlockCell's (``gru_ops.GRUBlockCell.build``).
BLOCK_NAMES = {"gates/kernel": "w_ru", "gates/bias": "b_ru",
               "candidate/kernel": "w_c", "candidate/bias": "b_c"}


def t(a, dtype=torch.float32):
    return torch.as_tensor(np.asarray(a), dtype=dtype)


def close(actual, expected, rtol=1e-6, atol=1e-6):
    a = actual.detach().numpy() if isinstance(actual, torch.Tensor) else actual
    e = expected.detach().numpy() if isinstance(expected, torch.Tensor) else expected
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol)


def same_weights(cell_size, x, h, seed=1994):
    """GRUCell and GRUBlockCell built on ``(x, h)`` with the same variables: kernels
    uniform(-0.01, 0.01), biases their initial 1.0 (gates) and 0.0 (candidate)."""
    basic, block = rnn.GRUCell(cell_size), rnn.GRUBlockCell(cell_size)
    rnn.build(basic, x, h)
    rng = np.random.default_rng(seed)
    values = {n: v if n.endswith("bias") else rng.uniform(-0.01, 0.01, v.shape)
              for n, v in compat.tf_variables_of({"cell": basic}).items()}
    compat.load_tf_variables({"cell": basic}, values)
    compat.load_tf_variables({"cell": block}, {
        f"cell/{BLOCK_NAMES[n.split('/', 1)[1]]}": v for n, v in values.items()})
    return basic, block


def tf_grads(module, names=None):
    """The gradient of every TF variable of ``module`` (its parameters' gradients read
    through its TF layout, a linear rearrangement), under ``names`` (contrib GRUBlockCell's)
    when given."""
    params = list(module.parameters())
    saved = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p in params:
            p.copy_(p.grad if p.grad is not None else torch.zeros_like(p))
    layout = compat.collect(module, "cell", [f"cell/{n}" for n in names or ()])
    out = {n.split("/", 1)[1]: v.read().numpy().copy() for n, v in layout.items()}
    with torch.no_grad():
        for p, s in zip(params, saved, strict=True):
            p.copy_(s)
    return out


# ------------------------------------------------------------------------- GRUBlockCellTest


def test_none_dims_with_dynamic_rnn():
    """GRUBlockCellTest.testNoneDimsWithDynamicRNN: time-major inputs of any length and
    batch (upstream runs it; here the final state is the cell stepped by hand)."""
    np.random.seed(TF_TEST_SEED)
    batch_size, cell_size, input_size, num_steps = 4, 5, 6, 7
    cell = rnn.GRUBlockCell(cell_size)
    x = t(np.random.randn(num_steps, batch_size, input_size))
    with torch.no_grad():
        _, output = rnn.dynamic_rnn(cell, x, time_major=True, dtype=torch.float32)
        state = cell.zero_state(batch_size, torch.float32)
        for i in range(num_steps):
            _, state = cell(x[i], state)
    assert output.shape == (batch_size, cell_size)
    close(output, state, rtol=1e-5)


def test_block_gru_to_gru_cell_single_step():
    """GRUBlockCellTest.testBlockGRUToGRUCellSingleStep."""
    np.random.seed(TF_TEST_SEED)
    batch_size, cell_size, input_size = 4, 5, 6
    x = t(np.random.rand(batch_size, input_size))
    h = t(np.random.rand(batch_size, cell_size))
    basic, block = same_weights(cell_size, x, h)
    with torch.no_grad():
        basic_res = basic(x, h)[0]
        block_res = block(x, h)[0]
    close(block_res, basic_res)


def test_block_gru_to_gru_cell_multi_step():
    """GRUBlockCellTest.testBlockGRUToGRUCellMultiStep (upstream compares the block
    cell's final state with itself; here with GRUCell's)."""
    batch_size, cell_size, input_size, time_steps = 2, 3, 3, 4
    np.random.seed(1994)
    x_values = t(np.random.rand(time_steps, batch_size, input_size))
    h_value = t(np.random.rand(batch_size, cell_size))
    basic, block = same_weights(cell_size, x_values[0], h_value)
    with torch.no_grad():
        block_res = rnn.dynamic_rnn(block, x_values, initial_state=h_value, time_major=True,
                                    dtype=torch.float32)
        basic_res = rnn.dynamic_rnn(basic, x_values, initial_state=h_value, time_major=True,
                                    dtype=torch.float32)
    assert len(block_res[0]) == len(basic_res[0]) == time_steps
    for block_output, basic_output in zip(block_res[0], basic_res[0], strict=True):
        close(block_output, basic_output)
    close(block_res[1], basic_res[1])


def test_derivative_of_block_gru_to_gru_cell_single_step():
    """GRUBlockCellTest.testDerivativeOfBlockGRUToGRUCellSingleStep: the gradients of the
    output with respect to x, h, w_ru, w_c, b_ru, b_c (GRUCell's gates/kernel,
    candidate/kernel, gates/bias, candidate/bias)."""
    batch_size, cell_size, input_size = 2, 3, 4
    np.random.seed(1994)
    x_value = np.random.rand(batch_size, input_size)
    h_value = np.random.rand(batch_size, cell_size)
    basic, block = same_weights(cell_size, t(x_value), t(h_value))
    results = []
    for cell, names in ((block, BLOCK_NAMES.values()), (basic, None)):
        x, h = t(x_value).requires_grad_(), t(h_value).requires_grad_()
        cell(x, h)[0].sum().backward()
        results.append((x.grad, h.grad, tf_grads(cell, names)))
    (bx, bh, bw), (x_grad, h_grad, w) = results
    close(bx, x_grad)
    close(bh, h_grad)
    for basic_name, block_name in BLOCK_NAMES.items():
        close(bw[block_name], w[basic_name])


def test_derivative_of_block_gru_to_gru_cell_multi_steps():
    """GRUBlockCellTest.testDerivativeOfBlockGRUToGRUCellMultiSteps: the gradients of the
    first step's outputs with respect to the inputs and the initial state."""
    batch_size, cell_size, input_size, time_steps = 2, 3, 4, 2
    np.random.seed(1994)
    x_values = np.random.rand(time_steps, batch_size, input_size)
    h_value = np.random.rand(batch_size, cell_size)
    basic, block = same_weights(cell_size, t(x_values[0]), t(h_value))
    grads = []
    for cell in (block, basic):
        x, h = t(x_values).requires_grad_(), t(h_value).requires_grad_()
        outputs, _ = rnn.dynamic_rnn(cell, x, initial_state=h, time_major=True,
                                     dtype=torch.float32)
        outputs[0].sum().backward()
        grads.append((x.grad, h.grad))
    (block_x, block_h), (basic_x, basic_h) = grads
    assert len(block_x) == len(basic_x)
    for block, basic in zip(block_x, basic_x, strict=True):
        close(block, basic)
    assert len(block_h) == len(basic_h)
    for block, basic in zip(block_h, basic_h, strict=True):
        close(block, basic)


def _jacobian_error(f, value, eps=1e-6):
    """``gradient_checker.compute_gradient_error``: the largest difference between the
    autograd Jacobian of ``f`` at ``value`` and central differences."""
    value = value.detach().clone()
    theoretical = torch.autograd.functional.jacobian(f, value).detach()
    theoretical = theoretical.reshape(-1, value.numel())
    numerical = torch.zeros_like(theoretical)
    flat = value.reshape(-1)
    with torch.no_grad():
        for k in range(flat.numel()):
            up, down = flat.clone(), flat.clone()
            up[k] += eps
            down[k] -= eps
            numerical[:, k] = ((f(up.reshape(value.shape)) - f(down.reshape(value.shape)))
                               .reshape(-1) / (2 * eps))
    return float((theoretical - numerical).abs().max())


def test_gradient():
    """GRUBlockCellTest.testGradient: the gradient checker's error below 1e-4 for x, h,
    w_ru, w_c, b_ru, b_c (default initializers).  In float64 here: upstream's float32
    checker differences in float32 with its own step; float64 central differences measure
    the same Jacobian without float32 rounding."""
    batch_size, cell_size, input_size = 1, 3, 2
    x0 = torch.zeros(batch_size, input_size, dtype=torch.float64)
    h0 = torch.zeros(batch_size, cell_size, dtype=torch.float64)
    cell = rnn.GRUBlockCell(cell_size)
    rnn.build(cell, x0, h0)
    names = [f"cell/{n}" for n in BLOCK_NAMES.values()]
    base = {n: v.read().numpy().copy() for n, v in compat.collect(cell, "cell", names).items()}
    assert sorted(base) == sorted(names)
    assert base["cell/w_ru"].shape == (input_size + cell_size, 2 * cell_size)
    assert base["cell/w_c"].shape == (input_size + cell_size, cell_size)
    assert base["cell/b_ru"].shape == (2 * cell_size,)
    assert base["cell/b_c"].shape == (cell_size,)

    errors = {"x": _jacobian_error(lambda x: cell(x, h0)[0], x0),
              "h": _jacobian_error(lambda h: cell(x0, h)[0], h0)}
    for name, value in base.items():
        theoretical = []
        for j in range(cell_size):  # one output element at a time
            cell.zero_grad()
            cell(x0, h0)[0][0, j].backward()
            theoretical.append(tf_grads(cell, BLOCK_NAMES.values())[name.split("/")[1]]
                               .reshape(-1))
        numerical = np.zeros((cell_size, value.size))
        eps = 1e-6
        for k in range(value.size):
            outs = []
            for sign in (1, -1):
                v = value.copy().reshape(-1)
                v[k] += sign * eps
                compat.load_tf_variables({"cell": cell}, {**base, name: v.reshape(value.shape)})
                with torch.no_grad():
                    outs.append(cell(x0, h0)[0][0].numpy())
            numerical[:, k] = (outs[0] - outs[1]) / (2 * eps)
        compat.load_tf_variables({"cell": cell}, base)
        errors[name] = float(np.abs(np.stack(theoretical) - numerical).max())
    assert max(errors.values()) < 1e-4, errors
