"""contrib.rnn's cells and wrappers (issue 25): closed-form numpy references written from TF
1.15's equations (``tensorflow/contrib/rnn/python/ops/rnn_cell.py``), run on TF-layout
variables loaded through ``compat`` (so the variable names and layouts are checked too)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from rnnkit import compat, nest, rnn


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_layer_norm(x, gamma, beta):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-12) * gamma + beta


def random_variables(cell, x, state, seed=0):
    """Build ``cell`` on ``(x, state)``, give every TF variable a random value, return them
    as TF names them (relative to the cell's scope)."""
    rnn.build(cell, x, state)
    rng = np.random.default_rng(seed)
    values = {name: rng.uniform(-0.8, 0.8, v.shape).astype(np.float64)
              for name, v in compat.tf_variables_of(cell).items()}
    compat.load_tf_variables(cell, values)
    prefix = cell.tf_name + "/"
    return {k[len(prefix):]: v for k, v in values.items()}


def run(cell, x, state):
    with torch.no_grad():
        out, new = cell(x, state)
    return out, new


def arrays(*ts):
    return [t.detach().numpy() for t in ts]


# ---------------------------------------------------------------------------- LayerNormLSTMCell

@pytest.mark.parametrize("layer_norm", [False, True])
@pytest.mark.parametrize("peep_proj", [False, True])
def test_layer_norm_lstm_cell_matches_tf_equations(layer_norm, peep_proj):
    h_units, proj, batch, depth = 4, 3, 2, 5
    kw = dict(use_peepholes=True, num_proj=proj, cell_clip=0.7, proj_clip=0.5) \
        if peep_proj else {}
    cell = rnn.LayerNormLSTMCell(h_units, layer_norm=layer_norm, forget_bias=0.6,
                                 dtype=torch.float64, **kw)
    p = proj if peep_proj else h_units
    x = torch.randn(batch, depth, dtype=torch.float64)
    state = rnn.LSTMStateTuple(torch.randn(batch, h_units, dtype=torch.float64),
                               torch.randn(batch, p, dtype=torch.float64))
    v = random_variables(cell, x, state)
    expected_names = {"kernel", "bias"}
    if peep_proj:
        expected_names |= {"w_f_diag", "w_i_diag", "w_o_diag", "projection/kernel"}
    if layer_norm:
        expected_names |= {f"{g}/{w}" for g in ("input", "transform", "forget", "output",
                                                "state") for w in ("gamma", "beta")}
    assert set(v) == expected_names
    assert v["kernel"].shape == (depth + p, 4 * h_units)

    xn, c, m = arrays(x, *state)
    z = np.concatenate([xn, m], 1) @ v["kernel"]
    if not layer_norm:
        z = z + v["bias"]
    i, j, f, o = np.split(z, 4, axis=1)
    if layer_norm:
        i, j, f, o = (np_layer_norm(a, v[f"{g}/gamma"], v[f"{g}/beta"])
                      for a, g in zip((i, j, f, o), ("input", "transform", "forget", "output"),
                                      strict=True))
    if peep_proj:
        new_c = (sigmoid(f + 0.6 + v["w_f_diag"] * c) * c
                 + sigmoid(i + v["w_i_diag"] * c) * np.tanh(j))
    else:
        new_c = sigmoid(f + 0.6) * c + sigmoid(i) * np.tanh(j)
    if layer_norm:
        new_c = np_layer_norm(new_c, v["state/gamma"], v["state/beta"])
    if peep_proj:
        new_c = np.clip(new_c, -0.7, 0.7)
        new_m = sigmoid(o + v["w_o_diag"] * new_c) * np.tanh(new_c)
        new_m = np.clip(new_m @ v["projection/kernel"], -0.5, 0.5)
    else:
        new_m = sigmoid(o) * np.tanh(new_c)

    out, new = run(cell, x, state)
    np.testing.assert_allclose(out.numpy(), new_m, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(new.c.numpy(), new_c, rtol=1e-10, atol=1e-12)
    # the hoisted input projection and the step loop agree
    seq = torch.randn(batch, 6, depth, dtype=torch.float64)
    a, _ = rnn.dynamic_rnn(cell, seq, initial_state=state)
    b, _ = rnn.dynamic_rnn(cell, seq, initial_state=state, fused=False)
    torch.testing.assert_close(a, b)


def test_layer_norm_lstm_cell_fuses_only_without_layer_norm():
    x = torch.randn(3, 4, 2)
    assert rnn.plan(rnn.LayerNormLSTMCell(5), x).fused_layers == 1
    assert rnn.plan(rnn.LayerNormLSTMCell(5, layer_norm=True), x).fused_layers == 0
    cell = rnn.LayerNormLSTMCell(5)
    fused, _ = rnn.dynamic_rnn(cell, x, fused=True)
    looped, _ = rnn.dynamic_rnn(cell, x, fused=False)
    torch.testing.assert_close(fused, looped, atol=1e-5, rtol=1e-5)


def test_layer_norm_lstm_cell_initial_gain_and_shift():
    cell = rnn.LayerNormLSTMCell(3, layer_norm=True, norm_gain=0.5, norm_shift=0.25,
                                 input_size=2)
    v = compat.tf_variables_of(cell)
    np.testing.assert_array_equal(v["layer_norm_lstm_cell/forget/gamma"], [0.5] * 3)
    np.testing.assert_array_equal(v["layer_norm_lstm_cell/state/beta"], [0.25] * 3)
    np.testing.assert_array_equal(v["layer_norm_lstm_cell/bias"], [0.0] * 12)


def test_layer_norm_basic_lstm_cell_bias_starts_glorot_uniform():
    # TF creates the bias of LayerNormBasicLSTMCell(layer_norm=False) with no initializer of
    # its own: get_variable's glorot-uniform over [4H] (fans 4H, 4H), not zeros
    torch.manual_seed(0)
    cell = rnn.LayerNormBasicLSTMCell(4, layer_norm=False, input_size=3)
    bias = compat.tf_variables_of(cell)["layer_norm_basic_lstm_cell/bias"]
    limit = np.sqrt(6.0 / (16 + 16))
    assert bias.shape == (16,) and np.abs(bias).max() <= limit
    assert np.abs(bias).min() > 0 and bias.std() > limit / 4


def _np_layer_norm16(x, gamma, beta):
    """contrib ``layers.layer_norm`` in float16: its variance epsilon is 1e-3 there."""
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-3) * gamma + beta


@pytest.mark.parametrize("cls", ["LayerNormBasicLSTMCell", "LayerNormLSTMCell"])
def test_layer_norm_lstm_cells_take_tf_float16_epsilon(cls):
    # constant kernels make every gate equal across units: normalised, 0 (the variance is
    # 0, so only the epsilon keeps it finite); c = [0, 0.1] * sigmoid(1) is normalised with
    # float16's epsilon 1e-3, not 1e-12 (which float16 cannot hold)
    kw = {"layer_norm": True} if cls == "LayerNormLSTMCell" else {}
    cell = getattr(rnn, cls)(2, dtype=torch.float16, **kw)
    x = torch.ones(1, 2, dtype=torch.float16)
    state = rnn.LSTMStateTuple(torch.tensor([[0.0, 0.1]], dtype=torch.float16),
                               torch.tensor([[0.2, 0.3]], dtype=torch.float16))
    rnn.build(cell, x, state)
    values = compat.tf_variables_of(cell)
    compat.load_tf_variables(cell, {n: np.full_like(v, 0.5) if n.endswith("kernel") else v
                                    for n, v in values.items()})
    out, new = run(cell, x, state)
    c = _np_layer_norm16(np.array([[0.0, 0.1]]) * sigmoid(1.0), 1.0, 0.0)
    h = np.tanh(c) * 0.5
    np.testing.assert_allclose(new.c.float().numpy(), c, rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(out.float().numpy(), h, rtol=2e-3, atol=2e-3)


# ------------------------------------------------------------------------ LayerNormBasicGRUCell

def _np_ln_gru(x, h, v):
    """TF PR 14578's LayerNormBasicGRUCell step in numpy."""
    xh = np.concatenate([x, h], 1)

    def norm(a, scope):
        return np_layer_norm(a, v[f"{scope}/gamma"], v[f"{scope}/beta"])

    z = sigmoid(norm(xh @ v["update_gate/kernel"], "update_gate"))
    r = sigmoid(norm(xh @ v["reset_gate/kernel"], "reset_gate"))
    cand = np.tanh(norm(x @ v["candidate_linear_x/kernel"], "candidate_linear_x")
                   + r * norm(h @ v["candidate_linear_h/kernel"], "candidate_linear_h"))
    return (1 - z) * h + z * cand


def test_layer_norm_basic_gru_cell_matches_the_pr_equations():
    cell = rnn.LayerNormBasicGRUCell(3, dtype=torch.float64)
    def ref(x, s, v):
        new = _np_ln_gru(x, s[0], v)
        return new, (new,)

    v = _check_cell(cell, _f64(2, 3), ref)
    assert {k: a.shape for k, a in v.items()} == {
        "update_gate/kernel": (7, 3), "reset_gate/kernel": (7, 3),
        "candidate_linear_x/kernel": (4, 3), "candidate_linear_h/kernel": (3, 3),
        **{f"{s}/{w}": (3,) for s in ("update_gate", "reset_gate", "candidate_linear_x",
                                      "candidate_linear_h") for w in ("gamma", "beta")}}
    assert compat.tf_name(cell) == "layer_norm_basic_gru_cell"
    assert cell.state_size == cell.output_size == 3


def test_layer_norm_basic_gru_cell_activation_gain_shift_and_checkpoint():
    cell = rnn.LayerNormBasicGRUCell(2, activation=torch.relu, norm_gain=0.5,
                                     norm_shift=0.25, input_size=3)
    v = compat.tf_variables_of(cell)
    for scope in ("update_gate", "reset_gate", "candidate_linear_x", "candidate_linear_h"):
        np.testing.assert_array_equal(v[f"layer_norm_basic_gru_cell/{scope}/gamma"], [0.5] * 2)
        np.testing.assert_array_equal(v[f"layer_norm_basic_gru_cell/{scope}/beta"], [0.25] * 2)
    kernel = v["layer_norm_basic_gru_cell/update_gate/kernel"]
    limit = np.sqrt(6.0 / (5 + 2))  # TF's default glorot-uniform
    assert kernel.shape == (5, 2) and np.abs(kernel).max() <= limit and kernel.std() > 0
    # a TF checkpoint's variables load into a fresh, unbuilt cell, which then computes the
    # PR's step (relu candidate here)
    rng = np.random.default_rng(3)
    values = {k: rng.uniform(-1, 1, a.shape) for k, a in v.items()}
    fresh = rnn.LayerNormBasicGRUCell(2, activation=torch.relu, dtype=torch.float64)
    compat.load_tf_variables(fresh, values)
    assert fresh.built and fresh.candidate_linear_x_kernel.shape == (3, 2)
    x, h = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    out, new = run(fresh, torch.from_numpy(x), torch.from_numpy(h))
    rel = {k.split("/", 1)[1]: a for k, a in values.items()}
    xh = np.concatenate([x, h], 1)

    def norm(a, scope):
        return np_layer_norm(a, rel[f"{scope}/gamma"], rel[f"{scope}/beta"])

    z = sigmoid(norm(xh @ rel["update_gate/kernel"], "update_gate"))
    r = sigmoid(norm(xh @ rel["reset_gate/kernel"], "reset_gate"))
    cand = np.maximum(norm(x @ rel["candidate_linear_x/kernel"], "candidate_linear_x")
                      + r * norm(h @ rel["candidate_linear_h/kernel"], "candidate_linear_h"), 0)
    np.testing.assert_allclose(out.numpy(), (1 - z) * h + z * cand, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(out, new)


def test_layer_norm_basic_gru_cell_float16_epsilon():
    # every gate constant across units normalises to beta (0) with float16's epsilon 1e-3:
    # z = r = 0.5, candidate = tanh(0) = 0, h' = h / 2
    cell = rnn.LayerNormBasicGRUCell(2, dtype=torch.float16, input_size=2)
    v = compat.tf_variables_of(cell)
    compat.load_tf_variables(cell, {n: np.full_like(a, 0.5) if n.endswith("kernel") else a
                                    for n, a in v.items()})
    h = torch.tensor([[0.2, 0.3]], dtype=torch.float16)
    out, _ = run(cell, torch.ones(1, 2, dtype=torch.float16), h)
    assert out.dtype == torch.float16
    np.testing.assert_allclose(out.float().numpy(), [[0.1, 0.15]], rtol=1e-3, atol=1e-3)


def test_layer_norm_basic_gru_cell_refusals():
    with pytest.raises(ValueError, match="num_units"):
        rnn.LayerNormBasicGRUCell(0)
    with pytest.raises(ValueError, match="num_units must be a positive int, received '3'"):
        rnn.LayerNormBasicGRUCell("3")
    with pytest.raises(TypeError, match="activation"):
        rnn.LayerNormBasicGRUCell(3, activation="tanh")
    with pytest.raises(TypeError, match="norm_gain"):
        rnn.LayerNormBasicGRUCell(3, norm_gain="1")
    with pytest.raises(TypeError, match="norm_shift"):
        rnn.LayerNormBasicGRUCell(3, norm_shift=None)
    cell = rnn.LayerNormBasicGRUCell(3, input_size=4)
    with pytest.raises(ValueError, match="LayerNormBasicGRUCell inputs must have shape"):
        cell(torch.zeros(2, 5), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="candidate_linear_h/kernel"):
        compat.load_tf_variables(rnn.LayerNormBasicGRUCell(3, input_size=4), {
            **{f"layer_norm_basic_gru_cell/{k}": np.zeros(s) for k, s in (
                ("update_gate/kernel", (7, 3)), ("reset_gate/kernel", (7, 3)),
                ("candidate_linear_x/kernel", (4, 3)), ("candidate_linear_h/kernel", (4, 3)))},
            **{f"layer_norm_basic_gru_cell/{g}/{w}": np.zeros(3) for g in (
                "update_gate", "reset_gate", "candidate_linear_x", "candidate_linear_h")
               for w in ("gamma", "beta")}})


@pytest.mark.parametrize("cls", ["LayerNormBasicGRUCell", "UGRNNCell", "SRUCell", "NASCell",
                                 "IndRNNCell", "IndyGRUCell", "IndyLSTMCell",
                                 "IntersectionRNNCell", "WeightNormLSTMCell", "CFNCell",
                                 "MinimalRNNCell"])
def test_tf_layout_cells_load_tf_variables_before_their_first_call(cls):
    # TF's order, construct, restore, run: the kernels' shapes size the unbuilt cell
    kw = {"num_in_proj": 3} if cls == "IntersectionRNNCell" else {}
    ref = getattr(rnn, cls)(3, dtype=torch.float64, input_size=5, **kw)
    values = compat.tf_variables_of(ref)
    fresh = getattr(rnn, cls)(3, dtype=torch.float64, **kw)
    assert not fresh.built
    compat.load_tf_variables(fresh, values)
    assert fresh.built
    x = torch.randn(2, 5, dtype=torch.float64)
    state = ref.zero_state(2, torch.float64)
    state = nest.map_structure(lambda s: torch.randn_like(s), state)
    expected, _ = run(ref, x, state)
    out, _ = run(fresh, x, state)
    torch.testing.assert_close(out, expected)
    # a kernel whose columns fit no input depth is refused by name, the cell left unbuilt
    bad = dict(values)
    name = next(k for k in sorted(values) if k.endswith(("kernel", "kernel_w")))
    bad[name] = np.zeros((values[name].shape[0], values[name].shape[1] + 1))
    unbuilt = getattr(rnn, cls)(3, dtype=torch.float64, **kw)
    with pytest.raises(ValueError, match=name.split("/", 1)[1]):
        compat.load_tf_variables(unbuilt, bad)
    assert not unbuilt.built


# ---------------------------------------------------------------------------- EmbeddingWrapper

def test_embedding_wrapper_names_and_values():
    cell = rnn.EmbeddingWrapper(rnn.BasicRNNCell(3), embedding_classes=5, embedding_size=2)
    ids = torch.tensor([[4], [0]])
    state = torch.zeros(2, 3)
    rnn.build(cell, ids, state)
    assert compat.tf_variable_names(cell) == [
        "embedding_wrapper/basic_rnn_cell/bias", "embedding_wrapper/basic_rnn_cell/kernel",
        "embedding_wrapper/embedding"]
    table = compat.tf_variables_of(cell)["embedding_wrapper/embedding"]
    assert table.shape == (5, 2) and np.abs(table).max() <= np.sqrt(3)
    out, _ = run(cell, ids, state)
    expected, _ = run(cell.cell, torch.from_numpy(table[[4, 0]]), state)
    torch.testing.assert_close(out, expected)
    out1, _ = run(cell, torch.tensor([4, 0]), state)  # [batch] ids, as TF's reshape allows
    torch.testing.assert_close(out1, expected)


def test_embedding_wrapper_refuses_bad_arguments():
    with pytest.raises(ValueError, match="embedding_classes and embedding_size"):
        rnn.EmbeddingWrapper(rnn.GRUCell(2), 0, 3)
    cell = rnn.EmbeddingWrapper(rnn.GRUCell(2), 3, 2)
    with pytest.raises(TypeError, match="integer"):
        cell(torch.zeros(1, 1), torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"\[batch, 1\]"):
        cell(torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, 2))


# ---------------------------------------------------------------------------- SRUCell

def test_sru_cell_matches_tf_equations():
    cell = rnn.SRUCell(3, dtype=torch.float64)
    x = torch.randn(2, 4, dtype=torch.float64)
    c = torch.randn(2, 3, dtype=torch.float64)
    v = random_variables(cell, x, c)
    assert {k: a.shape for k, a in v.items()} == {"kernel": (4, 12), "bias": (6,)}
    u = x.numpy() @ v["kernel"]
    x_bar, f, r, x_tx = np.split(u, 4, axis=1)
    f = sigmoid(f + v["bias"][:3])
    r = sigmoid(r + v["bias"][3:])
    new_c = f * c.numpy() + (1 - f) * x_bar
    h = r * np.tanh(new_c) + (1 - r) * x_tx
    out, new = run(cell, x, c)
    np.testing.assert_allclose(out.numpy(), h, rtol=1e-10)
    np.testing.assert_allclose(new.numpy(), new_c, rtol=1e-10)
    seq = torch.randn(2, 5, 4, dtype=torch.float64)
    a, sa = rnn.dynamic_rnn(cell, seq, initial_state=c)
    b, sb = rnn.static_rnn(cell, list(seq.unbind(1)), initial_state=c)
    torch.testing.assert_close(a, torch.stack(b, 1))
    torch.testing.assert_close(sa, sb)


# ---------------------------------------------------------------------------- _Linear, adaptors

def test_linear_concatenates_args_and_names_kernel_and_bias():
    a, b = torch.randn(2, 3), torch.randn(2, 1)
    lin = rnn._Linear([a, b], 4, True, bias_initializer=0.5)
    torch.testing.assert_close(lin([a, b]), torch.cat([a, b], 1) @ lin.kernel + 0.5)
    assert compat.tf_variable_names({"scope": lin}) == ["scope/bias", "scope/kernel"]
    with pytest.raises(ValueError, match="2D"):
        rnn._Linear(torch.zeros(3), 2, False)


def test_time_reversed_fused_rnn_with_lengths_equals_reverse_sequence():
    cell = rnn.GRUCell(3)
    x = torch.randn(6, 2, 4)
    lengths = torch.tensor([6, 3])
    fused = rnn.TimeReversedFusedRNN(rnn.FusedRNNCellAdaptor(cell, use_dynamic_rnn=True))
    out, state = fused(x, sequence_length=lengths)
    rev = rnn.reverse_sequence(x, lengths, 0, 1)
    ref, ref_state = rnn.dynamic_rnn(cell, rev, sequence_length=lengths, time_major=True)
    torch.testing.assert_close(out, rnn.reverse_sequence(ref, lengths, 0, 1))
    torch.testing.assert_close(state, ref_state)
    assert compat.tf_variable_names(fused) == ["rnn/gru_cell/candidate/bias",
                                               "rnn/gru_cell/candidate/kernel",
                                               "rnn/gru_cell/gates/bias",
                                               "rnn/gru_cell/gates/kernel"]


# ---------------------------------------------------------------------------- NAS, UGRNN, Ind*

def _check_cell(cell, state, reference, depth=4, batch=2):
    """``reference(x, state_arrays, variables) -> (output, new_state_arrays)``; also the
    hoisted driver run against the step-by-step one."""
    x = torch.randn(batch, depth, dtype=torch.float64)
    v = random_variables(cell, x, state)
    arrays_in = [s.numpy() for s in (state if isinstance(state, (tuple, list)) else (state,))]
    out_ref, new_ref = reference(x.numpy(), arrays_in, v)
    out, new = run(cell, x, state)
    np.testing.assert_allclose(out.numpy(), out_ref, rtol=1e-10, atol=1e-12)
    new = new if isinstance(new, (tuple, list)) else (new,)
    for a, b in zip(new, new_ref, strict=True):
        np.testing.assert_allclose(a.numpy(), b, rtol=1e-10, atol=1e-12)
    seq = torch.randn(batch, 5, depth, dtype=torch.float64)
    a, _ = rnn.dynamic_rnn(cell, seq, initial_state=state)
    b, _ = rnn.static_rnn(cell, list(seq.unbind(1)), initial_state=state)
    torch.testing.assert_close(a, torch.stack(b, 1))
    return v


def _f64(*shape):
    return torch.randn(*shape, dtype=torch.float64)


@pytest.mark.parametrize("num_proj", [None, 2])
def test_nas_cell_matches_tf_equations(num_proj):
    cell = rnn.NASCell(3, num_proj=num_proj, use_bias=True, dtype=torch.float64)
    p = num_proj or 3

    def ref(x, s, v):
        c, m = s
        xs = np.split(x @ v["kernel"], 8, 1)
        ms = np.split(m @ v["recurrent_kernel"] + v["bias"], 8, 1)
        relu = lambda a: np.maximum(a, 0)  # noqa: E731
        l1 = [sigmoid(xs[0] + ms[0]), relu(xs[1] + ms[1]), sigmoid(xs[2] + ms[2]),
              relu(xs[3] * ms[3]), np.tanh(xs[4] + ms[4]), sigmoid(xs[5] + ms[5]),
              np.tanh(xs[6] + ms[6]), sigmoid(xs[7] + ms[7])]
        l2 = [np.tanh(l1[0] * l1[1]), np.tanh(l1[2] + l1[3]), np.tanh(l1[4] * l1[5]),
              sigmoid(l1[6] + l1[7])]
        new_c = np.tanh(l2[0] + c) * l2[1]
        new_m = np.tanh(new_c * np.tanh(l2[2] + l2[3]))
        if num_proj:
            new_m = new_m @ v["projection_weights"]
        return new_m, (new_c, new_m)

    v = _check_cell(cell, rnn.LSTMStateTuple(_f64(2, 3), _f64(2, p)), ref)
    assert v["recurrent_kernel"].shape == (p, 24) and v["kernel"].shape == (4, 24)


def test_ugrnn_cell_matches_tf_equations():
    cell = rnn.UGRNNCell(3, forget_bias=0.3, dtype=torch.float64)

    def ref(x, s, v):
        (h,) = s
        g, c = np.split(np.concatenate([x, h], 1) @ v["kernel"] + v["bias"], 2, 1)
        g = sigmoid(g + 0.3)
        new = g * h + (1 - g) * np.tanh(c)
        return new, (new,)

    _check_cell(cell, _f64(2, 3), ref)


def test_ind_rnn_cell_matches_tf_equations():
    cell = rnn.IndRNNCell(3, dtype=torch.float64)

    def ref(x, s, v):
        out = np.tanh(x @ v["kernel_w"] + s[0] * v["kernel_u"] + v["bias"])
        return out, (out,)

    _check_cell(cell, _f64(2, 3), ref)


def test_indy_gru_cell_matches_tf_equations():
    cell = rnn.IndyGRUCell(3, dtype=torch.float64)

    def ref(x, s, v):
        (h,) = s
        gates = sigmoid(x @ v["gates/kernel_w"] + np.tile(h, 2) * v["gates/kernel_u"]
                        + v["gates/bias"])
        r, u = np.split(gates, 2, 1)
        c = np.tanh(x @ v["candidate/kernel"] + r * h * v["candidate/kernel_u"]
                    + v["candidate/bias"])
        new = u * h + (1 - u) * c
        return new, (new,)

    _check_cell(cell, _f64(2, 3), ref)
    fresh = rnn.IndyGRUCell(3, input_size=2)
    init = compat.tf_variables_of(fresh)
    np.testing.assert_array_equal(init["indy_gru_cell/gates/bias"], np.ones(6))
    assert np.abs(init["indy_gru_cell/gates/kernel_u"]).max() <= 1.0


def test_indy_lstm_cell_matches_tf_equations():
    cell = rnn.IndyLSTMCell(3, forget_bias=0.5, dtype=torch.float64)

    def ref(x, s, v):
        c, h = s
        i, j, f, o = np.split(x @ v["kernel_w"] + np.tile(h, 4) * v["kernel_u"] + v["bias"],
                              4, 1)
        new_c = c * sigmoid(f + 0.5) + sigmoid(i) * np.tanh(j)
        new_h = np.tanh(new_c) * sigmoid(o)
        return new_h, (new_c, new_h)

    _check_cell(cell, rnn.LSTMStateTuple(_f64(2, 3), _f64(2, 3)), ref)


# ---------------------------------------------------------------------------- CIFG LSTM

@pytest.mark.parametrize("layer_norm", [False, True])
@pytest.mark.parametrize("peep_proj", [False, True])
def test_coupled_input_forget_gate_lstm_cell_matches_tf_equations(layer_norm, peep_proj):
    kw = dict(use_peepholes=True, num_proj=2, proj_clip=0.3, num_unit_shards=2,
              num_proj_shards=2) if peep_proj else {}
    cell = rnn.CoupledInputForgetGateLSTMCell(3, forget_bias=0.4, layer_norm=layer_norm,
                                              dtype=torch.float64, **kw)
    p = 2 if peep_proj else 3

    def ref(x, s, v):
        c, m = s
        w = np.concatenate([v["W_0"], v["W_1"]]) if peep_proj else v["W_0"]
        z = np.concatenate([x, m], 1) @ w
        if not layer_norm:
            z = z + v["B"]
        j, f, o = np.split(z, 3, 1)
        if layer_norm:
            j, f, o = (np_layer_norm(a, v[f"{g}/gamma"], v[f"{g}/beta"])
                       for a, g in zip((j, f, o), ("transform", "forget", "output"),
                                       strict=True))
        f = f + 0.4 + (v["W_F_diag"] * c if peep_proj else 0)
        f = sigmoid(f)
        new_c = f * c + (1 - f) * np.tanh(j)
        if layer_norm:
            new_c = np_layer_norm(new_c, v["state/gamma"], v["state/beta"])
        o = o + (v["W_O_diag"] * new_c if peep_proj else 0)
        new_m = sigmoid(o) * np.tanh(new_c)
        if peep_proj:
            new_m = np.clip(new_m @ np.concatenate([v["W_P_0"], v["W_P_1"]]), -0.3, 0.3)
        return new_m, (new_c, new_m)

    v = _check_cell(cell, rnn.LSTMStateTuple(_f64(2, 3), _f64(2, p)), ref)
    names = {"W_0", "B"} | ({"W_1", "W_F_diag", "W_O_diag", "W_P_0", "W_P_1"}
                            if peep_proj else set())
    if layer_norm:
        names |= {f"{g}/{w}" for g in ("transform", "forget", "output", "state")
                  for w in ("gamma", "beta")}
    assert set(v) == names
    assert cell.tf_name == "coupled_input_forget_gate_lstm_cell"


def test_coupled_input_forget_gate_lstm_cell_concatenated_state_and_refusals():
    tup = rnn.CoupledInputForgetGateLSTMCell(3, num_proj=2, input_size=4)
    cat = rnn.CoupledInputForgetGateLSTMCell(3, num_proj=2, state_is_tuple=False,
                                             input_size=4)
    cat.load_state_dict(tup.state_dict())
    x, c, m = torch.randn(2, 4), torch.randn(2, 3), torch.randn(2, 2)
    out_t, (c_t, m_t) = run(tup, x, rnn.LSTMStateTuple(c, m))
    out_c, s_c = run(cat, x, torch.cat([c, m], 1))
    torch.testing.assert_close(out_t, out_c)
    torch.testing.assert_close(s_c, torch.cat([c_t, m_t], 1))
    assert cat.state_size == 5
    with pytest.raises(ValueError, match="Too many shards"):
        rnn.CoupledInputForgetGateLSTMCell(3, num_proj=2, num_proj_shards=4)
    with pytest.raises(TypeError, match="use_peepholes"):
        rnn.CoupledInputForgetGateLSTMCell(3, use_peepholes="yes")


# ---------------------------------------------------------------------------- IntersectionRNN

@pytest.mark.parametrize("depth", [3, 4])
def test_intersection_rnn_cell_matches_tf_equations(depth):
    cell = rnn.IntersectionRNNCell(3, num_in_proj=3, forget_bias=0.2, dtype=torch.float64)

    def ref(x, s, v):
        (h,) = s
        if depth != 3:
            x = x @ v["in_projection/kernel"] + v["in_projection/bias"]
        gh, hh, gy, y = np.split(np.concatenate([x, h], 1) @ v["kernel"] + v["bias"], 4, 1)
        gh, gy = sigmoid(gh + 0.2), sigmoid(gy + 0.2)
        new_s = gh * h + (1 - gh) * np.tanh(hh)
        new_y = gy * x + (1 - gy) * np.maximum(y, 0)
        return new_y, (new_s,)

    v = _check_cell(cell, _f64(2, 3), ref, depth=depth)
    expected = {"kernel": (6, 12), "bias": (12,)}
    if depth != 3:
        expected.update({"in_projection/kernel": (4, 3), "in_projection/bias": (3,)})
    assert {k: a.shape for k, a in v.items()} == expected
    assert len(list(cell.parameters())) == len(expected)


def test_intersection_rnn_cell_refusals():
    with pytest.raises(ValueError, match="num_in_proj should be set"):
        rnn.IntersectionRNNCell(3)(torch.zeros(1, 4), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="num_in_proj must be num_units"):
        rnn.IntersectionRNNCell(3, num_in_proj=5)


# ---------------------------------------------------------------------------- CFN, MinimalRNN

def np_cfn_step(x, h, v, act=np.tanh):
    """TF 1.15 ``CFNCell.call``: theta, eta from ``h @ U + x @ V + b``; input gate 1 - eta."""
    units = h.shape[1]
    kv, kw = v["kernel"][:, :2 * units], v["kernel"][:, 2 * units:]
    gates = sigmoid(h @ v["recurrent_kernel"] + x @ kv + v["bias"])
    theta, eta = gates[:, :units], gates[:, units:]
    return theta * act(h) + (1 - eta) * act(x @ kw)


def np_minimal_rnn_step(x, h, v, act=np.tanh):
    """TF 1.15 ``MinimalRNNCell.call``: ``z = act(x @ W_x)``, ``u = sigmoid([z, h] @ [W_z;
    W_h] + b)``, ``h' = u * h + (1 - u) * z``."""
    depth = x.shape[1]
    z = act(x @ v["kernel"][:depth])
    u = sigmoid(np.concatenate([z, h], 1) @ v["kernel"][depth:] + v["bias"])
    return u * h + (1 - u) * z


def np_dynamic_rnn(step, x, h, lengths, v):
    """``dynamic_rnn`` with ``sequence_length`` on a cell whose output is its state: past a
    row's length the output is zero and the state is carried unchanged."""
    outs = np.zeros(x.shape[:2] + (h.shape[1],))
    for t in range(x.shape[1]):
        new = step(x[:, t], h, v)
        live = (t < lengths)[:, None]
        h = np.where(live, new, h)
        outs[:, t] = np.where(live, new, 0.0)
    return outs, h


_KERAS_STYLE = {"CFNCell": np_cfn_step, "MinimalRNNCell": np_minimal_rnn_step}


@pytest.mark.parametrize("cls", sorted(_KERAS_STYLE))
def test_keras_style_contrib_cells_match_tf_equations(cls):
    step = _KERAS_STYLE[cls]
    units, depth, batch = 3, 4, 3
    cell = getattr(rnn, cls)(units)
    x = torch.randn(batch, depth)
    h = torch.randn(batch, units)
    v = random_variables(cell, x, h, seed=1)
    v = {k: a.astype(np.float32) for k, a in v.items()}
    # one step
    out, new = run(cell, x, h)
    expected = step(x.numpy().astype(np.float64), h.numpy().astype(np.float64), v)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(new.numpy(), expected, rtol=1e-5, atol=1e-5)
    # several steps through dynamic_rnn, rows of different lengths (one of them 0)
    seq = torch.randn(batch, 6, depth)
    lengths = np.array([6, 2, 0])
    with torch.no_grad():
        outs, final = rnn.dynamic_rnn(cell, seq, sequence_length=torch.tensor(lengths),
                                      initial_state=h)
    ref_outs, ref_final = np_dynamic_rnn(step, seq.numpy().astype(np.float64),
                                         h.numpy().astype(np.float64), lengths, v)
    np.testing.assert_allclose(outs.numpy(), ref_outs, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(final.numpy(), ref_final, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(final.numpy()[2], h.numpy()[2], rtol=0, atol=0)


def test_keras_style_contrib_cells_take_keras_activations_by_name():
    x, h = torch.randn(2, 4, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
    relu = lambda a: np.maximum(a, 0)  # noqa: E731
    for cls, step in _KERAS_STYLE.items():
        for activation, act in (("relu", relu), (None, lambda a: a),
                                (torch.sin, np.sin), ("hard_sigmoid",
                                                      lambda a: np.clip(0.2 * a + 0.5, 0, 1))):
            cell = getattr(rnn, cls)(3, activation=activation, dtype=torch.float64)
            v = random_variables(cell, x, h, seed=2)
            out, _ = run(cell, x, h)
            np.testing.assert_allclose(out.numpy(), step(x.numpy(), h.numpy(), v, act),
                                       rtol=1e-10, atol=1e-12)


def test_cfn_and_minimal_rnn_cells_tf_variables_and_initializers():
    cfn = rnn.CFNCell(3, input_size=4)
    assert cfn.tf_name == "cfn_cell" and cfn.units == 3
    assert cfn.state_size == cfn.output_size == 3
    assert {k: v.shape for k, v in compat.tf_variables_of(cfn).items()} == {
        "cfn_cell/kernel": (4, 9), "cfn_cell/recurrent_kernel": (3, 6), "cfn_cell/bias": (6,)}
    np.testing.assert_array_equal(cfn.bias.detach().numpy(), np.ones(6))  # Keras "ones"
    minimal = rnn.MinimalRNNCell(3, input_size=4)
    assert minimal.tf_name == "minimal_rnn_cell" and minimal.units == 3
    assert {k: v.shape for k, v in compat.tf_variables_of(minimal).items()} == {
        "minimal_rnn_cell/kernel": (10, 3), "minimal_rnn_cell/bias": (3,)}
    np.testing.assert_array_equal(minimal.bias.detach().numpy(), np.ones(3))
    # TF's kernel_initializer covers CFN's recurrent_kernel too; bias_initializer the bias
    cfn = rnn.CFNCell(2, kernel_initializer=0.3, bias_initializer="zeros", input_size=3,
                      name="cfn")
    values = compat.tf_variables_of(cfn)
    np.testing.assert_array_equal(values["cfn/kernel"], np.full((3, 6), 0.3, np.float32))
    np.testing.assert_array_equal(values["cfn/recurrent_kernel"],
                                  np.full((2, 4), 0.3, np.float32))
    np.testing.assert_array_equal(values["cfn/bias"], np.zeros(4))
    minimal = rnn.MinimalRNNCell(2, kernel_initializer="ones", bias_initializer=-0.5,
                                 input_size=3, dtype=torch.float64)
    assert minimal.kernel.dtype == torch.float64
    np.testing.assert_array_equal(minimal.kernel.detach().numpy(), np.ones((7, 2)))
    np.testing.assert_array_equal(minimal.bias.detach().numpy(), [-0.5, -0.5])
    # TF's layer arguments: trainable and _reuse accepted
    rnn.CFNCell(2, trainable=True, _reuse=True, dynamic=False, autocast=False)
    # a PyTorch state_dict sizes an unbuilt cell (MinimalRNN's kernel rows are I + 2H)
    x, h = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 2, dtype=torch.float64)
    for built in (cfn, minimal):
        fresh = type(built)(2, dtype=torch.float64)
        built.double()
        fresh.load_state_dict(built.state_dict())
        assert fresh.built
        torch.testing.assert_close(run(fresh, x, h)[0], run(built, x, h)[0], rtol=0, atol=0)


@pytest.mark.parametrize("cls", sorted(_KERAS_STYLE))
def test_cfn_and_minimal_rnn_cells_refusals(cls):
    make = getattr(rnn, cls)
    with pytest.raises(ValueError, match=r"units must be a positive int, received 0"):
        make(0)
    with pytest.raises(ValueError, match=r"units must be a positive int, received 2\.0"):
        make(2.0)
    with pytest.raises(ValueError, match=r"activation: unknown activation 'swish'"):
        make(2, activation="swish")
    with pytest.raises(TypeError, match=r"activation must be a function, received 3"):
        make(2, activation=3)
    with pytest.raises(ValueError, match=r"kernel_initializer: unknown initializer 'nope'"):
        make(2, kernel_initializer="nope")
    with pytest.raises(TypeError, match=r"bias_initializer must be an initializer.*True"):
        make(2, bias_initializer=True)
    with pytest.raises(TypeError, match=r"keyword argument not understood: "
                                        r"'recurrent_initializer' \(.*kernel_initializer"):
        make(2, recurrent_initializer="orthogonal")
    with pytest.raises(TypeError, match=r"keyword argument not understood: 'reuse'"):
        make(2, reuse=True)
    with pytest.raises(ValueError, match=r"trainable=False"):
        make(2, trainable=False)
    with pytest.raises(ValueError, match=r"autocast=True is not supported"):
        make(2, autocast=True)
    with pytest.raises(ValueError, match=r"activity_regularizer is not supported.*received"):
        make(2, activity_regularizer=abs)
    with pytest.raises(ValueError, match=r"input_shape is a Keras input-layer argument.*"
                                         r"received \(3,\)"):
        make(2, input_shape=(3,))
    with pytest.raises(TypeError, match=r"dtype"):
        make(2, dtype=torch.int32)
    cell = make(2, input_size=4)
    with pytest.raises(ValueError, match=rf"{cls} inputs must have shape \[batch, 4\], "
                                         r"received \(1, 5\)"):
        cell(torch.zeros(1, 5), torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"inputs must have rank 2 \[batch, depth\] or more, "
                                         r"received shape \(4,\)"):
        cell(torch.zeros(4), torch.zeros(1, 2))


# ---------------------------------------------------------------------------- HighwayWrapper

@pytest.mark.parametrize("couple", [True, False])
def test_highway_wrapper_matches_tf_equations(couple):
    cell = rnn.HighwayWrapper(rnn.GRUCell(3, dtype=torch.float64),
                              couple_carry_transform_gates=couple, carry_bias_init=0.5)
    x, s = _f64(2, 3), _f64(2, 3)
    rnn.build(cell, x, s)
    fresh = compat.tf_variables_of({"rnn": cell})
    np.testing.assert_array_equal(fresh["rnn/carry_b"], [0.5] * 3)
    names = {"carry_w", "carry_b"} | (set() if couple else {"transform_w", "transform_b"})
    assert {k for k in fresh if "gru_cell" not in k} == {f"rnn/{n}" for n in names}
    if not couple:
        np.testing.assert_array_equal(fresh["rnn/transform_b"], [-0.5] * 3)
    rng = np.random.default_rng(1)
    v = {k: rng.uniform(-0.8, 0.8, a.shape) for k, a in fresh.items()}
    compat.load_tf_variables({"rnn": cell}, v)
    y, new = run(cell.cell, x, s)
    xn = x.numpy()
    carry = sigmoid(xn @ v["rnn/carry_w"] + v["rnn/carry_b"])
    transform = 1 - carry if couple else sigmoid(xn @ v["rnn/transform_w"]
                                                 + v["rnn/transform_b"])
    out, new_w = run(cell, x, s)
    np.testing.assert_allclose(out.numpy(), xn * carry + y.numpy() * transform, rtol=1e-10)
    torch.testing.assert_close(new_w, new)
    seq = _f64(2, 5, 3)
    a, _ = rnn.dynamic_rnn(cell, seq, initial_state=s)
    b, _ = rnn.static_rnn(cell, list(seq.unbind(1)), initial_state=s)
    torch.testing.assert_close(a, torch.stack(b, 1))


def test_highway_wrapper_refuses_a_cell_of_another_width():
    with pytest.raises(ValueError, match="shaped like its inputs"):
        rnn.HighwayWrapper(rnn.GRUCell(2))(torch.zeros(1, 3), torch.zeros(1, 2))


# ---------------------------------------------------------------------------- GLSTMCell

@pytest.mark.parametrize("num_proj", [None, 4])
def test_glstm_cell_matches_tf_equations(num_proj):
    cell = rnn.GLSTMCell(6, num_proj=num_proj, number_of_groups=2, forget_bias=0.7,
                         activation=torch.sigmoid, dtype=torch.float64)
    p = num_proj or 6

    def ref(x, s, v):
        c, m = s
        parts = [np.concatenate([xk, mk], 1) @ v[f"group{k}/kernel"] for k, (xk, mk) in
                 enumerate(zip(np.split(x, 2, 1), np.split(m, 2, 1), strict=True))]
        split = [np.split(r, 4, 1) for r in parts]
        i, j, f, o = (np.concatenate([split[0][n], split[1][n]], 1) + v[f"bias_{g}"]
                      for n, g in enumerate("ijfo"))
        new_c = sigmoid(f + 0.7) * c + sigmoid(i) * np.tanh(j)
        new_m = sigmoid(o) * sigmoid(new_c)
        if num_proj:
            new_m = new_m @ v["projection/kernel"]
        return new_m, (new_c, new_m)

    v = _check_cell(cell, rnn.LSTMStateTuple(_f64(2, 6), _f64(2, p)), ref)
    assert v["group1/kernel"].shape == (2 + p // 2, 12)
    assert set(v) == {"group0/kernel", "group1/kernel", "bias_i", "bias_j", "bias_f",
                      "bias_o"} | ({"projection/kernel"} if num_proj else set())


def test_glstm_cell_refuses_sizes_not_divisible_by_groups():
    with pytest.raises(ValueError, match="num_units must be divisible"):
        rnn.GLSTMCell(5, number_of_groups=2)
    with pytest.raises(ValueError, match="num_proj must be divisible"):
        rnn.GLSTMCell(4, num_proj=3, number_of_groups=2)
    with pytest.raises(ValueError, match=r"input size \(3\)"):
        rnn.GLSTMCell(4, number_of_groups=2)(torch.zeros(1, 3), rnn.LSTMStateTuple(
            torch.zeros(1, 4), torch.zeros(1, 4)))


# ---------------------------------------------------------------------------- PhasedLSTMCell

@pytest.mark.parametrize("peepholes", [False, True])
def test_phased_lstm_cell_matches_tf_equations(peepholes):
    h_units, batch, feat = 3, 4, 2
    cell = rnn.PhasedLSTMCell(h_units, use_peepholes=peepholes, leak=0.05,
                              dtype=torch.float64)
    x = _f64(batch, feat)
    t = torch.tensor([[0.3], [2.5], [7.0], [11.2]], dtype=torch.float64)
    state = rnn.LSTMStateTuple(_f64(batch, h_units), _f64(batch, h_units))
    rnn.build(cell, (t, x), state)
    fresh = compat.tf_variables_of(cell)
    assert set(fresh) == {f"phased_lstm_cell/{n}" for n in rnn.PhasedLSTMCell._NAMES}
    period = fresh["phased_lstm_cell/period"]
    assert (period >= 1).all() and (period <= 1000).all()
    assert (fresh["phased_lstm_cell/phase"] <= period).all()
    np.testing.assert_array_equal(fresh["phased_lstm_cell/ratio_on"], [0.1] * 3)
    rng = np.random.default_rng(3)
    v = {k.split("/", 1)[1]: rng.uniform(-0.8, 0.8, a.shape) for k, a in fresh.items()}
    v["period"] = rng.uniform(1.0, 4.0, h_units)
    v["phase"] = rng.uniform(0.0, 1.0, h_units)
    v["ratio_on"] = np.array([0.3, 0.6, 0.9])
    compat.load_tf_variables(cell, {f"phased_lstm_cell/{k}": a for k, a in v.items()})

    xn, tn = x.numpy(), t.numpy()
    c, h = (s.numpy() for s in state)
    gate_in = [xn, h, c] if peepholes else [xn, h]
    i, f = np.split(sigmoid(np.concatenate(gate_in, 1) @ v["mask_gates/kernel"]
                            + v["mask_gates/bias"]), 2, 1)
    c_new = c * f + i * np.tanh(np.concatenate([xn, h], 1) @ v["new_input/kernel"]
                                + v["new_input/bias"])
    out_in = [xn, h, c_new] if peepholes else [xn, h]
    o = sigmoid(np.concatenate(out_in, 1) @ v["output_gate/kernel"] + v["output_gate/bias"])
    h_new = np.tanh(c_new) * o
    r = np.mod(tn - v["phase"], v["period"]) / v["period"]
    on = v["ratio_on"]
    k = np.where(r < 0.5 * on, 2 * r / on, np.where(r < on, 2 - 2 * r / on, 0.05 * r))
    c_ref, h_ref = k * c_new + (1 - k) * c, k * h_new + (1 - k) * h

    out, new = run(cell, (t, x), state)
    np.testing.assert_allclose(out.numpy(), h_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(new.c.numpy(), c_ref, rtol=1e-10, atol=1e-12)
    seq = (torch.rand(batch, 5, 1, dtype=torch.float64) * 10, _f64(batch, 5, feat))
    a, _ = rnn.dynamic_rnn(cell, seq, initial_state=state)
    b, _ = rnn.static_rnn(cell, list(zip(seq[0].unbind(1), seq[1].unbind(1), strict=True)),
                          initial_state=state)
    torch.testing.assert_close(a, torch.stack(b, 1))


def test_phased_lstm_cell_ratio_on_trainability_and_refusals():
    cell = rnn.PhasedLSTMCell(2, trainable_ratio_on=False, input_size=3)
    assert not cell.ratio_on.requires_grad and cell.period.requires_grad
    with pytest.raises(ValueError, match="period_init_min"):
        rnn.PhasedLSTMCell(2, period_init_min=5.0, period_init_max=1.0)
    with pytest.raises(TypeError, match=r"\(time \[batch, 1\]"):
        cell(torch.zeros(1, 3), rnn.LSTMStateTuple(torch.zeros(1, 2), torch.zeros(1, 2)))


# ---------------------------------------------------------------------------- ConvLSTMCell

def np_conv_same(x, kernel):
    """TF's ``SAME`` stride-1 convolution, written out: ``x [N, *spatial, C]``, ``kernel
    [*window, C, out]`` (the extra padding of an even window goes after)."""
    window = kernel.shape[:-2]
    pads = [((k - 1) // 2, k - 1 - (k - 1) // 2) for k in window]
    xp = np.pad(x, [(0, 0), *pads, (0, 0)])
    out = np.zeros(x.shape[:-1] + (kernel.shape[-1],))
    for pos in np.ndindex(*x.shape[1:-1]):
        for off in np.ndindex(*window):
            idx = tuple(p + o for p, o in zip(pos, off, strict=True))
            out[(slice(None), *pos)] += xp[(slice(None), *idx)] @ kernel[off]
    return out


@pytest.mark.parametrize("cls, spatial, window", [
    (rnn.Conv1DLSTMCell, (5,), (3,)),
    (rnn.Conv2DLSTMCell, (4, 3), (2, 3)),
    (rnn.Conv3DLSTMCell, (3, 2, 3), (3, 1, 2)),
])
@pytest.mark.parametrize("skip", [False, True])
def test_conv_lstm_cells_match_tf_equations(cls, spatial, window, skip):
    chans, k, batch = 2, 3, 2
    cell = cls(input_shape=[*spatial, chans], output_channels=k, kernel_shape=list(window),
               skip_connection=skip, forget_bias=0.4, dtype=torch.float64)
    x = _f64(batch, *spatial, chans)
    state = rnn.LSTMStateTuple(_f64(batch, *spatial, k), _f64(batch, *spatial, k))
    v = random_variables(cell, x, state)
    assert cell.tf_name == f"conv_{len(spatial)}d_lstm_cell"
    assert set(v) == {"kernel", "biases"} and v["kernel"].shape == (*window, chans + k, 4 * k)
    xn, c, h = arrays(x, *state)
    z = np_conv_same(np.concatenate([xn, h], -1), v["kernel"]) + v["biases"]
    i, j, f, o = np.split(z, 4, axis=-1)
    new_c = sigmoid(f + 0.4) * c + sigmoid(i) * np.tanh(j)
    new_h = np.tanh(new_c) * sigmoid(o)
    out_ref = np.concatenate([new_h, xn], -1) if skip else new_h
    out, new = run(cell, x, state)
    np.testing.assert_allclose(out.numpy(), out_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(new.c.numpy(), new_c, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(new.h.numpy(), new_h, rtol=1e-10, atol=1e-12)
    assert tuple(out.shape[1:]) == tuple(cell.output_size)
    seq = _f64(batch, 4, *spatial, chans)
    a, sa = rnn.dynamic_rnn(cell, seq, initial_state=state)
    b, sb = rnn.static_rnn(cell, list(seq.unbind(1)), initial_state=state)
    torch.testing.assert_close(a, torch.stack(b, 1))
    torch.testing.assert_close(sa.c, sb.c)


def test_conv_lstm_cell_names_and_refusals():
    cell = rnn.ConvLSTMCell(2, [3, 3, 1], 2, [3, 3], use_bias=False)
    x = torch.randn(1, 3, 3, 1)
    rnn.build(cell, x, cell.zero_state(1, torch.float32))
    assert compat.tf_variable_names(cell) == ["conv_lstm_cell/kernel"]
    with pytest.raises(ValueError, match="Invalid input_shape"):
        rnn.ConvLSTMCell(2, [3, 1], 2, [3, 3])
    with pytest.raises(ValueError, match="initializers"):
        rnn.Conv1DLSTMCell(input_shape=[3, 1], output_channels=2, kernel_shape=[3],
                           initializers=object())
    with pytest.raises(ValueError, match="kernel_shape"):
        rnn.Conv1DLSTMCell(input_shape=[3, 1], output_channels=2, kernel_shape=[3, 3])


# ---------------------------------------------------------------------------- LSTMBlockFusedCell

def np_block_lstm(x, c, h, v, forget_bias, cell_clip, peephole):
    """TF's ``BlockLSTM`` op over ``x [time, batch, depth]``: per-step ``(cs, h)``."""
    zeros = np.zeros(h.shape[1])
    wci, wcf, wco = (v[n] if peephole else zeros for n in ("w_i_diag", "w_f_diag", "w_o_diag"))
    cs_all, h_all = [], []
    for xt in x:
        i, j, f, o = np.split(np.concatenate([xt, h], 1) @ v["kernel"] + v["bias"], 4, 1)
        i, f = sigmoid(i + c * wci), sigmoid(f + forget_bias + c * wcf)
        c = i * np.tanh(j) + f * c
        if cell_clip > 0:
            c = np.clip(c, -cell_clip, cell_clip)
        h = sigmoid(o + c * wco) * np.tanh(c)
        cs_all.append(c)
        h_all.append(h)
    return np.stack(cs_all), np.stack(h_all)


@pytest.mark.parametrize("peephole_clip", [False, True])
def test_lstm_block_fused_cell_matches_tf_equations(peephole_clip):
    units, depth, batch, steps = 3, 4, 3, 5
    clip = 0.6 if peephole_clip else None
    fused = rnn.LSTMBlockFusedCell(units, forget_bias=0.3, cell_clip=clip,
                                   use_peephole=peephole_clip, dtype=torch.float64)
    x = _f64(steps, batch, depth)
    state = (_f64(batch, units), _f64(batch, units))
    rnn.build(fused.cell, x[0], rnn.LSTMStateTuple(*state))
    rng = np.random.default_rng(5)
    values = {k: rng.uniform(-0.8, 0.8, a.shape) for k, a in compat.tf_variables_of(fused).items()}
    expected = {"kernel", "bias"} | ({"w_i_diag", "w_f_diag", "w_o_diag"} if peephole_clip
                                     else set())
    assert set(values) == {f"lstm_fused_cell/{n}" for n in expected}
    compat.load_tf_variables(fused, values)
    v = {k.split("/", 1)[1]: a for k, a in values.items()}
    assert v["kernel"].shape == (depth + units, 4 * units)

    lengths = np.array([5, 2, 0])
    cs, hs = np_block_lstm(x.numpy(), *arrays(*state), v, 0.3, clip or -1, peephole_clip)
    mask = (np.arange(steps)[:, None] < lengths[None, :])[..., None]
    with torch.no_grad():
        out, final = fused(x, initial_state=state, sequence_length=lengths)
    np.testing.assert_allclose(out.numpy(), hs * mask, rtol=1e-10, atol=1e-12)
    c0, h0 = arrays(*state)
    all_c, all_h = np.concatenate([c0[None], cs]), np.concatenate([h0[None], hs * mask])
    np.testing.assert_allclose(final.c.numpy(), all_c[lengths, np.arange(batch)], rtol=1e-10)
    np.testing.assert_allclose(final.h.numpy(), all_h[lengths, np.arange(batch)], rtol=1e-10)
    # a list in, a list out; the same as static_rnn over its step
    with torch.no_grad():
        listed, _ = fused(list(x.unbind(0)), initial_state=state)
        stepped, _ = rnn.static_rnn(fused.cell, list(x.unbind(0)),
                                    initial_state=rnn.LSTMStateTuple(*state))
    assert isinstance(listed, list) and len(listed) == steps
    np.testing.assert_allclose(torch.stack(listed).numpy(), hs, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(torch.stack(listed), torch.stack(stepped))


def test_lstm_block_fused_cell_runs_on_the_fused_kernel_and_refusals():
    fused = rnn.LSTMBlockFusedCell(4, forget_bias=0.5, input_size=3)
    x = torch.randn(6, 2, 3)
    assert rnn.plan(fused.cell, x.transpose(0, 1)).fused_layers == 1
    assert rnn.plan(rnn.LSTMBlockFusedCell(4, use_peephole=True, input_size=3).cell,
                    x.transpose(0, 1)).fused_layers == 0
    out, state = fused(x, dtype=torch.float32)
    looped, _ = rnn.dynamic_rnn(fused.cell, x, dtype=torch.float32, time_major=True,
                                fused=False)
    torch.testing.assert_close(out, looped, atol=1e-5, rtol=1e-5)
    assert fused.num_units == 4 and compat.tf_variable_names(fused) == [
        "lstm_fused_cell/bias", "lstm_fused_cell/kernel"]
    with pytest.raises(ValueError, match="initial_state or dtype"):
        fused(x)
    with pytest.raises(ValueError, match="length 2"):
        fused(x, initial_state=(torch.zeros(2, 4),))


# ---------------------------------------------------------------------------- WeightNormLSTMCell

def np_l2_columns(w):
    return w / np.sqrt(np.maximum((w ** 2).sum(0, keepdims=True), 1e-12))


@pytest.mark.parametrize("norm", [False, True])
@pytest.mark.parametrize("peep_proj", [False, True])
def test_weight_norm_lstm_cell_matches_tf_equations(norm, peep_proj):
    h_units, proj, depth = 3, 2, 4
    kw = dict(use_peepholes=True, num_proj=proj, cell_clip=0.5, proj_clip=0.3) \
        if peep_proj else {}
    cell = rnn.WeightNormLSTMCell(h_units, norm=norm, forget_bias=0.2, dtype=torch.float64,
                                  **kw)
    p = proj if peep_proj else h_units
    assert cell.tf_name == "weight_norm_lstm_cell"

    def ref(x, s, v):
        c, m = s
        v = {k.split("/", 1)[1]: a for k, a in v.items()}  # below wn_lstm_cell/
        w = v["kernel"]
        if norm:
            w = np.concatenate([np_l2_columns(w[:depth]) * v["norm_0"],
                                np_l2_columns(w[depth:]) * v["norm_1"]])
        i, j, f, o = np.split(np.concatenate([x, m], 1) @ w + v["bias"], 4, 1)
        if peep_proj:
            new_c = c * sigmoid(f + 0.2 + v["w_f_diag"] * c) + sigmoid(i + v["w_i_diag"] * c) \
                * np.tanh(j)
            new_c = np.clip(new_c, -0.5, 0.5)
            new_h = sigmoid(o + v["w_o_diag"] * new_c) * np.tanh(new_c)
            pw = v["projection/kernel"]
            if norm:
                pw = np_l2_columns(pw) * v["projection/norm_0"]
            new_h = np.clip(new_h @ pw, -0.3, 0.3)
        else:
            new_c = c * sigmoid(f + 0.2) + sigmoid(i) * np.tanh(j)
            new_h = sigmoid(o) * np.tanh(new_c)
        return new_h, (new_c, new_h)

    v = _check_cell(cell, rnn.LSTMStateTuple(_f64(2, h_units), _f64(2, p)), ref, depth=depth)
    names = {"kernel", "bias"} | ({"norm_0", "norm_1"} if norm else set())
    if peep_proj:
        names |= {"w_f_diag", "w_i_diag", "w_o_diag", "projection/kernel"}
        names |= {"projection/norm_0"} if norm else set()
    assert set(v) == {f"wn_lstm_cell/{n}" for n in names}
    assert v["wn_lstm_cell/kernel"].shape == (depth + p, 4 * h_units)


def test_weight_norm_lstm_cell_initializer_and_bias():
    cell = rnn.WeightNormLSTMCell(2, initializer=0.5, input_size=3)
    v = compat.tf_variables_of(cell)
    np.testing.assert_array_equal(v["weight_norm_lstm_cell/wn_lstm_cell/norm_0"], [0.5] * 8)
    np.testing.assert_array_equal(v["weight_norm_lstm_cell/wn_lstm_cell/bias"], [0.0] * 8)
    with pytest.raises(ValueError, match="num_proj"):
        rnn.WeightNormLSTMCell(2, num_proj=0)


# ---------------------------------------------------------------------------- AttentionCellWrapper

def np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("state_is_tuple", [True, False])
def test_attention_cell_wrapper_matches_tf_equations(state_is_tuple):
    units, length, attn, vec, depth, lin = 3, 4, 2, 5, 4, 6
    inner = rnn.LSTMCell(units, state_is_tuple=state_is_tuple, dtype=torch.float64)
    cell = rnn.AttentionCellWrapper(inner, length, attn_size=attn, attn_vec_size=vec,
                                    input_size=lin, state_is_tuple=state_is_tuple)
    cs, hs, at, win = _f64(2, units), _f64(2, units), _f64(2, attn), _f64(2, length * attn)
    inner_state = rnn.LSTMStateTuple(cs, hs) if state_is_tuple else torch.cat([cs, hs], 1)
    state = (inner_state, at, win) if state_is_tuple else torch.cat([inner_state, at, win], 1)

    def ref(x, s, v):
        if state_is_tuple:
            c, m, a_prev, w = s
        else:
            (flat,) = s
            c, m, a_prev, w = np.split(flat, np.cumsum([units, units, attn]), 1)
        w = w.reshape(2, length, attn)
        xp = np.concatenate([x, a_prev], 1) @ v["kernel"] + v["bias"]
        i, j, f, o = np.split(np.concatenate([xp, m], 1) @ v["lstm_cell/kernel"]
                              + v["lstm_cell/bias"], 4, 1)
        new_c = sigmoid(f + 1.0) * c + sigmoid(i) * np.tanh(j)
        new_m = sigmoid(o) * np.tanh(new_c)
        q = np.concatenate([new_c, new_m], 1)
        hf = w @ v["attention/attn_w"][0, 0]
        y = q @ v["attention/kernel"] + v["attention/bias"]
        e = (np.tanh(hf + y[:, None]) * v["attention/attn_v"]).sum(-1)
        a = (np_softmax(e)[..., None] * w).sum(1)
        out = np.concatenate([new_m, a], 1) @ v["attn_output_projection/kernel"] \
            + v["attn_output_projection/bias"]
        new_w = np.concatenate([w[:, 1:], out[:, None]], 1).reshape(2, length * attn)
        if state_is_tuple:
            return out, (new_c, new_m, a, new_w)
        return out, (np.concatenate([new_c, new_m, a, new_w], 1),)

    x = _f64(2, depth)
    v = random_variables(cell, x, state)
    assert set(v) == {*rnn.AttentionCellWrapper._NAMES, "lstm_cell/kernel", "lstm_cell/bias"}
    assert v["kernel"].shape == (depth + attn, lin)
    assert v["attention/kernel"].shape == (2 * units, vec)
    arrays_in = [t.numpy() for t in nest.flatten(state)]
    out_ref, new_ref = ref(x.numpy(), arrays_in, v)
    out, new = run(cell, x, state)
    np.testing.assert_allclose(out.numpy(), out_ref, rtol=1e-10, atol=1e-12)
    for a, b in zip(nest.flatten(new), new_ref, strict=True):
        np.testing.assert_allclose(a.numpy(), b, rtol=1e-10, atol=1e-12)
    seq = _f64(2, 5, depth)
    a, _ = rnn.dynamic_rnn(cell, seq, initial_state=state)
    b, _ = rnn.static_rnn(cell, list(seq.unbind(1)), initial_state=state)
    torch.testing.assert_close(a, torch.stack(b, 1))


def test_attention_cell_wrapper_refusals():
    with pytest.raises(ValueError, match="state_is_tuple"):
        rnn.AttentionCellWrapper(rnn.LSTMCell(2), 3, state_is_tuple=False)
    with pytest.raises(ValueError, match="attn_length"):
        rnn.AttentionCellWrapper(rnn.GRUCell(2), 0)
    cell = rnn.AttentionCellWrapper(rnn.GRUCell(2), 3)
    assert cell.state_size == (2, 2, 6) and cell.output_size == 2


# ---------------------------------------------------------------------------- rnnkit.tfa.rnn

def np_keras_norm(x, gamma, beta, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps) * gamma
    return y + beta if beta is not None else y


def _check_keras_cell(cell, state, reference, names, depth=4):
    v = _check_cell(cell, state, reference, depth=depth)
    assert set(v) == set(names)
    return v


def test_tfa_peephole_lstm_cell_matches_tfa_equations():
    from rnnkit import tfa
    cell = tfa.rnn.PeepholeLSTMCell(3, dtype=torch.float64)
    assert cell.tf_name == "peephole_lstm_cell"

    def ref(x, s, v):
        h, c = s
        zi, zf, zc, zo = np.split(x @ v["kernel"] + h @ v["recurrent_kernel"] + v["bias"], 4, 1)
        i = sigmoid(zi + v["input_gate_peephole_weights"] * c)
        f = sigmoid(zf + v["forget_gate_peephole_weights"] * c)
        new_c = f * c + i * np.tanh(zc)
        o = sigmoid(zo + v["output_gate_peephole_weights"] * new_c)
        new_h = o * np.tanh(new_c)
        return new_h, (new_h, new_c)

    v = _check_keras_cell(cell, [_f64(2, 3), _f64(2, 3)], ref, {
        "kernel", "recurrent_kernel", "bias", "input_gate_peephole_weights",
        "forget_gate_peephole_weights", "output_gate_peephole_weights"})
    assert v["kernel"].shape == (4, 12) and v["recurrent_kernel"].shape == (3, 12)


def test_tfa_layer_norm_lstm_cell_matches_tfa_equations():
    from rnnkit import tfa
    cell = tfa.rnn.LayerNormLSTMCell(3, recurrent_activation="relu", norm_epsilon=0.01,
                                     dtype=torch.float64)

    def ref(x, s, v):
        h, c = s
        z = np_keras_norm(x @ v["kernel"], v["kernel_norm/gamma"], v["kernel_norm/beta"], 0.01)
        z = z + np_keras_norm(h @ v["recurrent_kernel"], v["recurrent_norm/gamma"],
                              v["recurrent_norm/beta"], 0.01) + v["bias"]
        zi, zf, zc, zo = np.split(z, 4, 1)
        relu = lambda a: np.maximum(a, 0)  # noqa: E731
        new_c = np_keras_norm(relu(zf) * c + relu(zi) * np.tanh(zc), v["state_norm/gamma"],
                              v["state_norm/beta"], 0.01)
        new_h = relu(zo) * np.tanh(new_c)
        return new_h, (new_h, new_c)

    _check_keras_cell(cell, [_f64(2, 3), _f64(2, 3)], ref, {
        "kernel", "recurrent_kernel", "bias", *(f"{n}/{w}" for n in (
            "kernel_norm", "recurrent_norm", "state_norm") for w in ("gamma", "beta"))})


def test_tfa_layer_norm_simple_rnn_cell_matches_tfa_equations():
    from rnnkit import tfa
    cell = tfa.rnn.LayerNormSimpleRNNCell(3, layernorm_epsilon=0.1, dtype=torch.float64)

    def ref(x, s, v):
        (h,) = s
        z = np_keras_norm(x @ v["kernel"] + h @ v["recurrent_kernel"], v["gamma"], None, 0.1)
        out = np.tanh(z + v["bias"])
        return out, (out,)

    _check_keras_cell(cell, _f64(2, 3), ref, {"kernel", "recurrent_kernel", "bias", "gamma"})


@pytest.mark.parametrize("projection", [None, 2])
def test_tfa_nas_cell_matches_tfa_equations_with_c_m_state(projection):
    from rnnkit import tfa
    cell = tfa.rnn.NASCell(3, projection=projection, use_bias=True, dtype=torch.float64)
    p = projection or 3
    contrib = rnn.NASCell(3, num_proj=projection, use_bias=True, dtype=torch.float64,
                          input_size=4)
    state = [_f64(2, 3), _f64(2, p)]

    def ref(x, s, v):
        compat.load_tf_variables(contrib, {f"nas_cell/{k}": a for k, a in v.items()})
        with torch.no_grad():
            out, new = contrib(torch.from_numpy(x), rnn.LSTMStateTuple(*map(torch.from_numpy,
                                                                             s)))
        return out.numpy(), (new.c.numpy(), new.h.numpy())

    names = {"kernel", "recurrent_kernel", "bias"} | ({"projection_weights"} if projection
                                                      else set())
    _check_keras_cell(cell, state, ref, names)  # contrib's NASCell has its numpy reference


@pytest.mark.parametrize("use_norm2", [False, True])
def test_tfa_esn_cell_matches_tfa_equations_and_reservoir(use_norm2):
    from rnnkit import tfa
    cell = tfa.rnn.ESNCell(6, connectivity=0.5, leaky=0.3, spectral_radius=0.8,
                           use_norm2=use_norm2, dtype=torch.float64, input_size=4)
    w = cell.recurrent_kernel.detach().numpy()
    bound = np.sqrt((w ** 2).sum()) if use_norm2 else np.abs(np.linalg.eigvals(w)).max()
    np.testing.assert_allclose(bound, 0.8, rtol=1e-9)
    assert not any(p.requires_grad for p in cell.parameters())

    def ref(x, s, v):
        (h,) = s
        y = np.tanh(np.concatenate([x, h], 1) @ np.concatenate([v["kernel"],
                                                                v["recurrent_kernel"]]) + v["bias"])
        out = 0.7 * h + 0.3 * y
        return out, (out,)

    _check_keras_cell(cell, _f64(2, 6), ref, {"kernel", "recurrent_kernel", "bias"})


def test_tfa_cells_keras_arguments_and_refusals():
    from rnnkit import tfa
    cell = tfa.rnn.PeepholeLSTMCell(2, input_size=3)
    bias = compat.tf_variables_of(cell)["peephole_lstm_cell/bias"]
    np.testing.assert_array_equal(bias, [0, 0, 1, 1, 0, 0, 0, 0])  # unit_forget_bias
    ln = tfa.rnn.LayerNormLSTMCell(2, norm_gamma_initializer=0.5, input_size=3)
    np.testing.assert_array_equal(compat.tf_variables_of(ln)[
        "layer_norm_lstm_cell/state_norm/gamma"], [0.5, 0.5])
    with pytest.raises(ValueError, match="kernel_regularizer"):
        tfa.rnn.LayerNormSimpleRNNCell(2, kernel_regularizer="l2")
    with pytest.raises(ValueError, match="unknown activation"):
        tfa.rnn.PeepholeLSTMCell(2, activation="tanhh")
    with pytest.raises(ValueError, match="connectivity"):
        tfa.rnn.ESNCell(2, connectivity=1.5)
    x = torch.randn(2, 5, 3)
    out, state = rnn.dynamic_rnn(tfa.rnn.PeepholeLSTMCell(4), x, dtype=torch.float32)
    assert isinstance(state, list) and torch.equal(state[0], out[:, -1])


# Keras's dropout / recurrent_dropout (LSTMCell, SimpleRNNCell and DropoutRNNCellMixin of
# Keras 2.15; tfa 0.23's LayerNormLSTMCell.call and LayerNormSimpleRNNCell.call)

_DROPOUT_CASES = {
    # name: (class, kwargs, input masks, recurrent masks) as Keras applies them
    "peephole_impl1": ("PeepholeLSTMCell", dict(dropout=0.3, recurrent_dropout=0.4,
                                                implementation=1), 4, 4),
    "peephole_impl2_input_only": ("PeepholeLSTMCell", dict(dropout=0.3), 1, 0),
    "peephole_impl2_recurrent_forces_impl1": ("PeepholeLSTMCell", dict(
        dropout=0.3, recurrent_dropout=0.4, implementation=2), 4, 4),
    "peephole_impl1_recurrent_only": ("PeepholeLSTMCell", dict(recurrent_dropout=0.4,
                                                               implementation=1), 0, 4),
    "layer_norm_lstm": ("LayerNormLSTMCell", dict(dropout=0.3, recurrent_dropout=0.4), 1, 1),
    "layer_norm_simple_rnn": ("LayerNormSimpleRNNCell", dict(dropout=0.3,
                                                            recurrent_dropout=0.4), 1, 1),
}


def _recording_masks(cell, monkeypatch):
    """Every mask ``cell`` draws, in order, as ``(shape, mask array)``."""
    drawn = []
    draw = cell._random.mask

    def record(like, keep):
        m = draw(like, keep)
        drawn.append(m.detach().clone().numpy())
        return m

    monkeypatch.setattr(cell._random, "mask", record)
    return drawn


def _keras_dropout_step(kind, x, state, v, xm, hm):
    """One step of Keras's equations with the masks ``xm`` (on the inputs) and ``hm`` (on
    ``h_{t-1}``): lists of 4 (one per gate ``i, f, c, o``) or of 1 (all gates)."""
    h = state[0]
    if kind == "LayerNormSimpleRNNCell":
        z = np_keras_norm((x * xm[0]) @ v["kernel"] + (h * hm[0]) @ v["recurrent_kernel"],
                          v["gamma"], None, 1e-5)
        out = np.tanh(z + v["bias"])
        return out, (out,)
    c = state[1]
    if kind == "LayerNormLSTMCell":
        z = np_keras_norm((x * xm[0]) @ v["kernel"], v["kernel_norm/gamma"],
                          v["kernel_norm/beta"], 1e-3)
        z = z + np_keras_norm((h * hm[0]) @ v["recurrent_kernel"], v["recurrent_norm/gamma"],
                              v["recurrent_norm/beta"], 1e-3) + v["bias"]
        zi, zf, zc, zo = np.split(z, 4, 1)
        new_c = np_keras_norm(sigmoid(zf) * c + sigmoid(zi) * np.tanh(zc),
                              v["state_norm/gamma"], v["state_norm/beta"], 1e-3)
        new_h = sigmoid(zo) * np.tanh(new_c)
        return new_h, (new_h, new_c)
    ks = np.split(v["kernel"], 4, 1)
    rs = np.split(v["recurrent_kernel"], 4, 1)
    bs = np.split(v["bias"], 4)
    xm4 = xm * 4 if len(xm) == 1 else xm
    hm4 = hm * 4 if len(hm) == 1 else hm
    zi, zf, zc, zo = ((x * xm4[g]) @ ks[g] + bs[g] + (h * hm4[g]) @ rs[g] for g in range(4))
    i = sigmoid(zi + v["input_gate_peephole_weights"] * c)
    f = sigmoid(zf + v["forget_gate_peephole_weights"] * c)
    new_c = f * c + i * np.tanh(zc)
    o = sigmoid(zo + v["output_gate_peephole_weights"] * new_c)
    new_h = o * np.tanh(new_c)
    return new_h, (new_h, new_c)


def _split_masks(drawn, n_in, n_rec, batch, depth, units):
    """The masks of one sequence: ``n_in`` of ``[batch, depth]`` then ``n_rec`` of
    ``[batch, units]`` (ones where Keras applies none)."""
    assert [m.shape for m in drawn] == [(batch, depth)] * n_in + [(batch, units)] * n_rec
    xm = drawn[:n_in] or [np.ones((batch, depth))]
    hm = drawn[n_in:] or [np.ones((batch, units))]
    return xm, hm


@pytest.mark.parametrize("case", sorted(_DROPOUT_CASES))
def test_tfa_dropout_matches_keras_equations_with_one_mask_per_sequence(case, monkeypatch):
    from rnnkit import tfa
    kind, kwargs, n_in, n_rec = _DROPOUT_CASES[case]
    batch, depth, units, steps = 3, 4, 5, 6
    cell = getattr(tfa.rnn, kind)(units, dtype=torch.float64, **kwargs)
    lstm = kind != "LayerNormSimpleRNNCell"
    state = [_f64(batch, units), _f64(batch, units)] if lstm else _f64(batch, units)
    v = random_variables(cell, _f64(batch, depth), state)
    drawn = _recording_masks(cell, monkeypatch)
    assert cell.training and cell.project_inputs(_f64(steps, batch, depth)) is None
    seq = _f64(batch, steps, depth)
    torch.manual_seed(0)
    outputs = []
    for _ in range(2):  # two sequences: new masks for the second
        before = len(drawn)
        with torch.no_grad():
            out, final = rnn.dynamic_rnn(cell, seq, initial_state=state)
        mine = drawn[before:]
        assert len(mine) == n_in + n_rec  # drawn once, at the first step, for all steps
        xm, hm = _split_masks(mine, n_in, n_rec, batch, depth, units)
        s = [a.numpy() for a in (state if lstm else [state])]
        for t in range(steps):
            want, s = _keras_dropout_step(kind, seq[:, t].numpy(), s, v, xm, hm)
            np.testing.assert_allclose(out[:, t].numpy(), want, rtol=1e-10, atol=1e-12)
        finals = final if lstm else [final]
        for a, b in zip(finals, s, strict=True):
            np.testing.assert_allclose(a.numpy(), b, rtol=1e-10, atol=1e-12)
        for m, rate in zip(mine, [kwargs.get("dropout", 0)] * n_in
                           + [kwargs.get("recurrent_dropout", 0)] * n_rec, strict=True):
            assert set(np.unique(m)) <= {0.0, 1.0 / (1.0 - rate)}
        outputs.append(out)
    assert not np.array_equal(drawn[0], drawn[n_in + n_rec])
    assert not torch.equal(outputs[0], outputs[1])


@pytest.mark.parametrize("kind", ["PeepholeLSTMCell", "LayerNormLSTMCell",
                                  "LayerNormSimpleRNNCell"])
def test_tfa_dropout_hand_stepped_keeps_masks_until_start_sequence(kind, monkeypatch):
    from rnnkit import tfa
    cell = getattr(tfa.rnn, kind)(3, dropout=0.5, recurrent_dropout=0.5, input_size=4,
                                  dtype=torch.float64)
    state = cell.zero_state(2, torch.float64)
    drawn = _recording_masks(cell, monkeypatch)
    x = _f64(2, 4)
    with torch.no_grad():
        first = cell(x, state)[0]
        n = len(drawn)
        assert n >= 2
        again = cell(x, state)[0]
        assert len(drawn) == n and torch.equal(first, again)  # the same masks
        rnn.start_sequence(cell)
        cell(x, state)
        assert len(drawn) == 2 * n  # new masks for the new sequence
        cell(_f64(5, 4), cell.zero_state(5, torch.float64))  # another batch: drawn for it
        assert len(drawn) == 3 * n and drawn[-1].shape[0] == 5


@pytest.mark.parametrize("kind", ["PeepholeLSTMCell", "LayerNormLSTMCell",
                                  "LayerNormSimpleRNNCell"])
def test_tfa_dropout_eval_equals_rate_zero_exactly(kind, monkeypatch):
    from rnnkit import tfa
    cls = getattr(tfa.rnn, kind)
    kwargs = dict(implementation=1) if kind == "PeepholeLSTMCell" else {}
    dropped = cls(3, dropout=0.5, recurrent_dropout=0.3, input_size=4, **kwargs)
    plain = cls(3, input_size=4, **kwargs)
    plain.load_state_dict(dropped.state_dict())
    drawn = _recording_masks(dropped, monkeypatch)
    x = torch.randn(2, 6, 4)
    dropped.eval()
    assert dropped.project_inputs(x) is not None  # the hoisted path again
    with torch.no_grad():
        a, sa = rnn.dynamic_rnn(dropped, x, dtype=torch.float32)
        b, sb = rnn.dynamic_rnn(plain, x, dtype=torch.float32)
    assert drawn == [] and torch.equal(a, b)
    for u, w in zip(nest.flatten(sa), nest.flatten(sb), strict=True):
        assert torch.equal(u, w)
    dropped.train()
    with torch.no_grad():
        c, _ = rnn.dynamic_rnn(dropped, x, dtype=torch.float32)
    assert drawn and not torch.equal(a, c)
    assert "step loop" in str(rnn.plan(dropped, x))


@pytest.mark.parametrize(("kind", "arg"), [("PeepholeLSTMCell", "dropout"),
                                           ("LayerNormLSTMCell", "recurrent_dropout"),
                                           ("LayerNormSimpleRNNCell", "dropout"),
                                           ("LayerNormSimpleRNNCell", "recurrent_dropout")])
def test_tfa_dropout_keeps_one_minus_rate_scaled_by_its_inverse(kind, arg, monkeypatch):
    from rnnkit import tfa
    rate, batch, depth = 0.3, 400, 250
    cell = getattr(tfa.rnn, kind)(depth, input_size=depth, **{arg: rate})
    drawn = _recording_masks(cell, monkeypatch)
    torch.manual_seed(1)
    with torch.no_grad():
        cell(torch.randn(batch, depth), cell.zero_state(batch, torch.float32))
    for m in drawn:
        kept = m != 0
        # 100000 Bernoulli(0.7) draws: standard deviation 0.0014; the bound is 7 of them
        assert abs(kept.mean() - (1 - rate)) < 0.01
        np.testing.assert_array_equal(m[kept], np.float32(1 / (1 - rate)))
        # per unit as well (each column is one unit's mask over the batch)
        assert abs(kept.mean(0) - (1 - rate)).max() < 0.12


def test_tfa_dropout_refusals_and_keras_attributes():
    from rnnkit import tfa
    for kind in ("PeepholeLSTMCell", "LayerNormLSTMCell", "LayerNormSimpleRNNCell"):
        cls = getattr(tfa.rnn, kind)
        for arg in ("dropout", "recurrent_dropout"):
            for bad in (1.0, 1.5, -0.1, float("nan")):
                with pytest.raises(ValueError, match=rf"{kind}: {arg} must be .*\[0, 1\).*"
                                                     rf"received {bad}"):
                    cls(2, **{arg: bad})
            with pytest.raises(TypeError, match=arg):
                cls(2, **{arg: "0.5"})
        cell = cls(2, dropout=0.25, recurrent_dropout=np.float32(0.5))
        assert (cell.dropout, cell.recurrent_dropout) == (0.25, 0.5)
    # Keras's LSTMCell runs recurrent dropout with implementation 1
    assert tfa.rnn.PeepholeLSTMCell(2).implementation == 2
    assert tfa.rnn.PeepholeLSTMCell(2, dropout=0.5).implementation == 2
    assert tfa.rnn.PeepholeLSTMCell(2, recurrent_dropout=0.5).implementation == 1
    assert tfa.rnn.PeepholeLSTMCell(2, implementation=1).implementation == 1
    with pytest.raises(ValueError, match="implementation"):
        tfa.rnn.LayerNormLSTMCell(2, implementation=3)
    for kind in ("NASCell", "ESNCell"):  # tfa's take no dropout
        with pytest.raises(TypeError, match="dropout"):
            getattr(tfa.rnn, kind)(2, dropout=0.5)


def test_tfa_dropout_masks_are_drawn_inside_each_graph_replay(monkeypatch):
    from rnnkit import graph_engine, tfa
    monkeypatch.setattr(graph_engine, "EMULATE_ON_CPU", True)
    cell = tfa.rnn.PeepholeLSTMCell(5, dropout=0.4, recurrent_dropout=0.3, input_size=4)
    x = torch.randn(3, 6, 4)
    results = []
    for seed in (1, 2):
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("error")  # an eager fallback warns
            torch.manual_seed(seed)
            want, _ = rnn.dynamic_rnn(cell, x, [6, 3, 5])
            torch.manual_seed(seed)
            got, _ = rnn.dynamic_rnn(cell, x, [6, 3, 5], cuda_graph=True)
        assert torch.equal(got, want)  # the same draws in the same order
        results.append(got)
    assert not torch.equal(results[0], results[1])


def test_tfa_dropout_seed_gives_own_masks_and_declines_graphs(monkeypatch):
    from rnnkit import graph_engine, tfa
    monkeypatch.setattr(graph_engine, "EMULATE_ON_CPU", True)
    x = torch.randn(2, 5, 3)
    outs = []
    for global_seed in (0, 1):
        cell = tfa.rnn.LayerNormSimpleRNNCell(4, dropout=0.5, recurrent_dropout=0.5,
                                              seed=7, input_size=3)
        torch.manual_seed(global_seed)
        cell.load_state_dict({k: torch.full_like(v, 0.3) for k, v in
                              cell.state_dict().items()})
        with torch.no_grad():
            outs.append(rnn.dynamic_rnn(cell, x, dtype=torch.float32)[0])
    assert torch.equal(outs[0], outs[1])  # the seed's masks, whatever the global state
    with pytest.warns(UserWarning, match=r"seed=\.\.\.\) draws its masks"), torch.no_grad():
        rnn.dynamic_rnn(cell, x, dtype=torch.float32, cuda_graph=True)
    cell.eval()  # no dropout: nothing drawn, the graph is fine
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("error")
        rnn.dynamic_rnn(cell, x, dtype=torch.float32, cuda_graph=True)
