"""Port of TensorFlow r1.15 ``tensorflow/contrib/rnn/python/kernel_tests/lstm_ops_test.py``
(``LSTMBlockCellTest``; read at commit e08079463bf4).  The benchmarks are not tests.

Upstream's comparisons share weights between cells by creating them under the variable names
the other cell reuses; here the same TF variables are loaded into each cell through
``compat`` (their TF names).  Its ``_block_lstm`` raw op (TF's ``BlockLSTM`` kernel) is
checked through the class that wraps that op, ``LSTMBlockFusedCell``, and the per-step block
op through ``LSTMBlockCell``.  Upstream's seeded uniform initializers are rnnkit's draws (same
range), never compared with TF's values; numpy's inputs replay TF's test seed (``setUp``
seeds numpy with 87654321).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit import compat, rnn

TF_TEST_SEED = 87654321  # random_seed.DEFAULT_GRAPH_SEED: TensorFlowTestCase.setUp's numpy seed


def t(a, dtype=torch.float32):
    return torch.as_tensor(np.asarray(a), dtype=dtype)


def close(actual, expected, rtol=1e-6, atol=1e-6):
    a = actual.detach().float().numpy() if isinstance(actual, torch.Tensor) else actual
    e = expected.detach().float().numpy() if isinstance(expected, torch.Tensor) else expected
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol)


def tf_grads(module, scope="cell"):
    """The gradient of every TF variable of ``module``: its parameters' gradients read
    through its TF layout (concatenations, transposes and gate permutations: linear maps,
    so they carry gradients as they carry values)."""
    params = list(module.parameters())
    saved = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p in params:
            p.copy_(p.grad if p.grad is not None else torch.zeros_like(p))
    out = compat.tf_variables_of({scope: module})
    with torch.no_grad():
        for p, s in zip(params, saved, strict=True):
            p.copy_(s)
    return out


def masked_uniform(rng, bound, shape, dtype):
    """Upstream's initializer: uniform(-bound, bound); for float16 its
    ``_MaskedRandomUniformInitializer`` keeps 4 of the 10 mantissa bits."""
    value = rng.uniform(-bound, bound, shape)
    if dtype != torch.float16:
        return value.astype(np.float32)
    bits = value.astype(np.float16).view(np.uint16)
    shift = 10 - 4
    return (bits & np.uint16((0xFFFF >> shift) << shift)).view(np.float16)


# --------------------------------------------------------------------------- LSTMBlockCellTest


def test_none_dims_with_dynamic_rnn():
    """LSTMBlockCellTest.testNoneDimsWithDynamicRNN: time-major inputs of any length and
    batch (upstream runs it; here the step loop by hand agrees)."""
    np.random.seed(TF_TEST_SEED)
    batch_size, num_steps, input_dim, cell_size = 4, 5, 6, 7
    cell = rnn.LSTMBlockCell(cell_size)
    x = t(np.random.randn(num_steps, batch_size, input_dim))
    with torch.no_grad():
        output, _ = rnn.dynamic_rnn(cell, x, time_major=True, dtype=torch.float32)
        state = cell.zero_state(batch_size, torch.float32)
        steps = []
        for i in range(num_steps):
            out, state = cell(x[i], state)
            steps.append(out)
    assert output.shape == (num_steps, batch_size, cell_size)
    close(output, torch.stack(steps), rtol=1e-5)


def _constant(cell, value):
    """Every TF variable but the biases set to ``value`` (the scope initializer)."""
    values = compat.tf_variables_of(cell)
    compat.load_tf_variables(cell, {n: v if n.endswith("bias") else np.full_like(v, value)
                                    for n, v in values.items()})


def test_lstm_block_cell():
    """LSTMBlockCellTest.testLSTMBlockCell (constant 0.5: testBasicLSTMCell's values)."""
    x = t([[1.0, 1.0]])
    m = [torch.full((1, 2), 0.1) for _ in range(4)]
    cell = rnn.MultiRNNCell([rnn.LSTMBlockCell(2) for _ in range(2)], state_is_tuple=True)
    state = ((m[0], m[1]), (m[2], m[3]))
    rnn.build(cell, x, state)
    _constant(cell, 0.5)
    with torch.no_grad():
        g, ((out_m0, out_m1), (out_m2, out_m3)) = cell(x, state)
    close(g, [[0.24024698, 0.24024698]])
    close(out_m0, [[0.68967271, 0.68967271]])
    close(out_m1, [[0.44848421, 0.44848421]])
    close(out_m2, [[0.39897051, 0.39897051]])
    close(out_m3, [[0.24024698, 0.24024698]])


def test_compatible_names():
    """LSTMBlockCellTest.testCompatibleNames: LSTMCell, LSTMBlockCell and
    LSTMBlockFusedCell have the same variables (names and shapes), with and without
    peepholes, under ``basic/lstm_cell`` and ``peephole/lstm_cell``."""
    inputs = [torch.zeros(4, 5)] * 6

    def names(cell, pcell, fused=False):
        for c in (cell, pcell):
            if fused:
                c(torch.stack(inputs), dtype=torch.float32)
            else:
                rnn.static_rnn(c, inputs, dtype=torch.float32)
        return {n: v.shape for n, v in compat.tf_variables_of(
            {"basic/lstm_cell": cell, "peephole/lstm_cell": pcell}).items()}

    basic_names = names(rnn.LSTMCell(10), rnn.LSTMCell(10, use_peepholes=True))
    block_names = names(rnn.LSTMBlockCell(10), rnn.LSTMBlockCell(10, use_peephole=True))
    fused_names = names(rnn.LSTMBlockFusedCell(10),
                        rnn.LSTMBlockFusedCell(10, use_peephole=True), fused=True)
    assert basic_names == {
        "basic/lstm_cell/kernel": (15, 40), "basic/lstm_cell/bias": (40,),
        "peephole/lstm_cell/kernel": (15, 40), "peephole/lstm_cell/bias": (40,),
        "peephole/lstm_cell/w_f_diag": (10,), "peephole/lstm_cell/w_i_diag": (10,),
        "peephole/lstm_cell/w_o_diag": (10,)}
    assert basic_names == block_names
    assert basic_names == fused_names
    assert compat.tf_name(rnn.LSTMBlockCell(10)) == compat.tf_name(rnn.LSTMCell(10))


def _basic_to_block(make_basic, make_block):
    """Upstream's testLSTMBasicToBlockCell(Peeping): two layers of each from the same
    weights (uniform(-0.01, 0.01)), one step from the same state."""
    np.random.seed(TF_TEST_SEED)
    x = t(np.random.randn(1, 2))
    m_vals = [0.1, -0.1, -0.2, 0.2]
    m = [torch.full((1, 2), v) for v in m_vals]
    state = ((m[0], m[1]), (m[2], m[3]))
    basic = rnn.MultiRNNCell([make_basic() for _ in range(2)], state_is_tuple=True)
    block = rnn.MultiRNNCell([make_block() for _ in range(2)], state_is_tuple=True)
    rnn.build(basic, x, state)
    rng = np.random.default_rng(19890212)
    values = {n: v if n.endswith("bias") else rng.uniform(-0.01, 0.01, v.shape)
              for n, v in compat.tf_variables_of({"root": basic}).items()}
    compat.load_tf_variables({"root": basic}, values)
    # the same variables under the block cells' names (basic_lstm_cell -> lstm_cell)
    compat.load_tf_variables({"root": block}, {
        n.replace("/basic_lstm_cell/", "/lstm_cell/"): v for n, v in values.items()})
    with torch.no_grad():
        g, ((m0, m1), (m2, m3)) = basic(x, state)
        bg, ((bm0, bm1), (bm2, bm3)) = block(x, state)
    basic_res, block_res = [g, m0, m1, m2, m3], [bg, bm0, bm1, bm2, bm3]
    assert len(basic_res) == len(block_res)
    for a, b in zip(basic_res, block_res, strict=True):
        close(b, a)


def test_lstm_basic_to_block_cell():
    """LSTMBlockCellTest.testLSTMBasicToBlockCell."""
    _basic_to_block(lambda: rnn.BasicLSTMCell(2, state_is_tuple=True),
                    lambda: rnn.LSTMBlockCell(2))


def test_lstm_basic_to_block_cell_peeping():
    """LSTMBlockCellTest.testLSTMBasicToBlockCellPeeping."""
    _basic_to_block(lambda: rnn.LSTMCell(2, use_peepholes=True, state_is_tuple=True),
                    lambda: rnn.LSTMBlockCell(2, use_peephole=True))


def _blocks_match(use_peephole, dtype, cell_clip):
    """Upstream's ``blocks_match``: LSTMCell under ``static_rnn``, the block op (here
    LSTMBlockCell under ``dynamic_rnn``) and LSTMBlockFusedCell, from the same weights:
    outputs, final ``c``, gradients of the outputs' sum with respect to the inputs and to
    every weight."""
    batch_size, input_size, cell_size, sequence_length = 2, 3, 4, 4
    np.random.seed(TF_TEST_SEED)
    inputs = [np.random.randn(batch_size, input_size) for _ in range(sequence_length)]
    init_bound = 1e-1 if dtype == torch.float16 else 1e-2
    rng = np.random.default_rng(19890212)
    values = {"cell/kernel": masked_uniform(rng, init_bound,
                                            (input_size + cell_size, cell_size * 4), dtype),
              "cell/bias": np.zeros(cell_size * 4, np.float32)}
    if use_peephole:
        for name in ("w_i_diag", "w_f_diag", "w_o_diag"):
            values[f"cell/{name}"] = masked_uniform(rng, init_bound, (cell_size,), dtype)

    basic = rnn.LSTMCell(cell_size, use_peepholes=use_peephole, cell_clip=cell_clip,
                         dtype=dtype, state_is_tuple=True)
    block = rnn.LSTMBlockCell(cell_size, use_peephole=use_peephole, cell_clip=cell_clip,
                              dtype=dtype)
    fused = rnn.LSTMBlockFusedCell(cell_size, cell_clip=cell_clip, use_peephole=use_peephole,
                                   dtype=dtype, name="rnn/lstm_cell")
    results = []
    for kind, module in (("basic", basic), ("block", block), ("fused", fused)):
        xs = [t(a, dtype).requires_grad_() for a in inputs]
        if kind == "basic":
            rnn.build(module, xs[0], module.zero_state(batch_size, dtype))
        elif kind == "block":
            rnn.build(module, xs[0], module.zero_state(batch_size, dtype))
        else:
            rnn.build(fused.cell, xs[0], fused.cell.zero_state(batch_size, dtype))
        compat.load_tf_variables({"cell": module}, values)
        if kind == "basic":
            outputs, state = rnn.static_rnn(module, xs, dtype=dtype)
            outputs = torch.stack(outputs)
        elif kind == "block":
            outputs, state = rnn.dynamic_rnn(module, torch.stack(xs), dtype=dtype,
                                             time_major=True)
        else:
            outputs, state = module(torch.stack(xs), dtype=dtype)
        outputs.float().sum().backward()
        results.append((outputs, state[0], [x.grad for x in xs], tf_grads(module)))
    return results


TEST_CASES = [pytest.param(torch.float32, 1e-6, 1e-6, id="Fp32"),
              pytest.param(torch.float16, 8e-3, 8e-4, id="Fp16")]


def _basic_to_block_check(dtype, use_peephole=False, cell_clip=None, rtol=1e-6, atol=1e-6):
    (b_out, b_c, b_grads, b_w), *others = _blocks_match(use_peephole, dtype, cell_clip)
    for out, c, grads, wgrads in others:
        close(out, b_out, rtol, atol)
        close(c, b_c, rtol, atol)
        for g, bg in zip(grads, b_grads, strict=True):
            close(g, bg, rtol, atol)
        assert sorted(wgrads) == sorted(b_w)
        for name, value in b_w.items():
            close(wgrads[name].astype(np.float32), value.astype(np.float32), rtol, atol)


@pytest.mark.parametrize("dtype,rtol,atol", TEST_CASES)
def test_lstm_basic_to_block(dtype, rtol, atol):
    """LSTMBlockCellTest.testLSTMBasicToBlock (Fp32, Fp16)."""
    _basic_to_block_check(dtype, use_peephole=False, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype,rtol,atol", TEST_CASES)
def test_lstm_basic_to_block_peeping(dtype, rtol, atol):
    """LSTMBlockCellTest.testLSTMBasicToBlockPeeping (Fp32, Fp16)."""
    _basic_to_block_check(dtype, use_peephole=True, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype,rtol,atol", TEST_CASES)
def test_lstm_basic_to_block_cell_clip(dtype, rtol, atol):
    """LSTMBlockCellTest.testLSTMBasicToBlockCellClip (Fp32, Fp16)."""
    _basic_to_block_check(dtype, use_peephole=True, cell_clip=0.5, rtol=rtol, atol=atol)


def test_lstm_fused_sequence_lengths():
    """LSTMBlockCellTest.testLSTMFusedSequenceLengths: the fused cell over the sequence
    with lengths equals the same cell called one step at a time (lengths 0 or 1 per step,
    the state passed on): outputs, final ``c``, gradients.  ``cell_clip=0`` does not clip."""
    batch_size, input_size, cell_size, max_sequence_length = 3, 4, 5, 6
    np.random.seed(TF_TEST_SEED)
    inputs = [t(np.random.randn(batch_size, input_size)).requires_grad_()
              for _ in range(max_sequence_length)]
    seq_lengths = [3, 4, 5]
    cell = rnn.LSTMBlockFusedCell(cell_size, cell_clip=0, use_peephole=False,
                                  name="lstm_cell")
    rnn.build(cell.cell, inputs[0], cell.cell.zero_state(batch_size, torch.float32))
    rng = np.random.default_rng(19890213)
    values = compat.tf_variables_of(cell)
    compat.load_tf_variables(cell, {
        n: v if n.endswith("bias") else rng.uniform(-0.01, 0.01, v.shape)
        for n, v in values.items()})

    fused_outputs, fused_state = cell(torch.stack(inputs), dtype=torch.float32,
                                      sequence_length=torch.tensor(seq_lengths))
    fused_outputs.sum().backward()
    fused_grads = [x.grad.clone() for x in inputs]
    fused_wgrads = tf_grads(cell)
    for x in inputs:
        x.grad = None
    cell.zero_grad()

    unfused, state = [], None
    for i, inp in enumerate(inputs):
        lengths = [int(i < n) for n in seq_lengths]
        output, state = cell(inp[None], initial_state=state, dtype=torch.float32,
                             sequence_length=torch.tensor(lengths))
        unfused.append(output[0])
    unfused_outputs = torch.stack(unfused)
    unfused_outputs.sum().backward()
    unfused_wgrads = tf_grads(cell)

    close(fused_outputs, unfused_outputs)
    close(fused_state[0], state[0])
    for x, g in zip(inputs, fused_grads, strict=True):
        # a step past every length reaches no output: no gradient (TF's: zeros)
        close(g, x.grad if x.grad is not None else torch.zeros_like(x))
    assert sorted(fused_wgrads) == ["cell/bias", "cell/kernel"]
    for name, value in fused_wgrads.items():
        close(value, unfused_wgrads[name], rtol=1e-6, atol=1e-6)
