"""Cells against closed-form math and PyTorch's nn.LSTM / nn.GRU / nn.RNN; user cells."""

import copy
import importlib.util
import pathlib

import numpy as np
import pytest
import torch
from torch import nn

from rnnkit import rnn, seq2seq


def sig(x):
    return 1 / (1 + np.exp(-x))


def test_basic_rnn_closed_form():
    cell = rnn.BasicRNNCell(3, input_size=2)
    x, h = torch.randn(4, 2), torch.randn(4, 3)
    out, new = cell(x, h)
    w = np.concatenate([cell.weight_ih.detach().numpy().T, cell.weight_hh.detach().numpy().T])
    want = np.tanh(np.concatenate([x.numpy(), h.numpy()], 1) @ w + cell.bias.detach().numpy())
    np.testing.assert_allclose(out.detach().numpy(), want, atol=1e-6)
    assert out is new


def test_basic_lstm_closed_form_with_forget_bias():
    cell = rnn.BasicLSTMCell(3, forget_bias=0.7, input_size=2)
    with torch.no_grad():
        cell.bias.normal_()
    x = torch.randn(4, 2)
    c, h = torch.randn(4, 3), torch.randn(4, 3)
    out, st = cell(x, rnn.LSTMStateTuple(c, h))
    z = (x @ cell.weight_ih.T + h @ cell.weight_hh.T + cell.bias).detach().numpy()
    i, f, g, o = np.split(z, 4, axis=1)
    new_c = c.numpy() * sig(f + 0.7) + sig(i) * np.tanh(g)
    new_h = np.tanh(new_c) * sig(o)
    np.testing.assert_allclose(st.c.detach().numpy(), new_c, atol=1e-6)
    np.testing.assert_allclose(out.detach().numpy(), new_h, atol=1e-6)
    assert isinstance(st, rnn.LSTMStateTuple)


def test_state_is_tuple_false_concatenates():
    cell = rnn.BasicLSTMCell(3, state_is_tuple=False, input_size=2)
    assert cell.state_size == 6
    out, st = cell(torch.randn(2, 2), cell.zero_state(2))
    assert st.shape == (2, 6)
    torch.testing.assert_close(st[:, 3:], out)


def test_lstm_cell_peepholes_clip_proj_closed_form():
    cell = rnn.LSTMCell(4, use_peepholes=True, cell_clip=0.3, num_proj=2, proj_clip=0.1,
                        input_size=3)
    with torch.no_grad():
        for p in cell.parameters():
            p.normal_()
    x, c, h = torch.randn(5, 3), torch.randn(5, 4), torch.randn(5, 2)
    out, st = cell(x, rnn.LSTMStateTuple(c, h))
    P = {k: v.detach().numpy() for k, v in cell.named_parameters()}
    z = x.numpy() @ P["weight_ih"].T + h.numpy() @ P["weight_hh"].T + P["bias"]
    i, f, g, o = np.split(z, 4, axis=1)
    cn = c.numpy()
    new_c = sig(f + 1.0 + P["w_f_diag"] * cn) * cn + sig(i + P["w_i_diag"] * cn) * np.tanh(g)
    new_c = np.clip(new_c, -0.3, 0.3)
    m = sig(o + P["w_o_diag"] * new_c) * np.tanh(new_c)
    m = np.clip(m @ P["weight_proj"].T, -0.1, 0.1)
    np.testing.assert_allclose(st.c.detach().numpy(), new_c, atol=1e-6)
    np.testing.assert_allclose(out.detach().numpy(), m, atol=1e-6)
    assert cell.state_size == rnn.LSTMStateTuple(4, 2) and cell.output_size == 2


def test_gru_tf1_closed_form():
    cell = rnn.GRUCell(3, input_size=2)
    x, h = torch.randn(4, 2), torch.randn(4, 3)
    out, _ = cell(x, h)
    P = {k: v.detach().numpy() for k, v in cell.named_parameters()}
    xn, hn = x.numpy(), h.numpy()
    r, u = np.split(sig(xn @ P["gate_weight_ih"].T + hn @ P["gate_weight_hh"].T
                        + P["gate_bias"]), 2, axis=1)
    c = np.tanh(xn @ P["cand_weight_ih"].T + (r * hn) @ P["cand_weight_hh"].T + P["cand_bias"])
    np.testing.assert_allclose(out.detach().numpy(), u * hn + (1 - u) * c, atol=1e-6)
    assert np.all(P["gate_bias"] == 1.0)  # TF1 initialisation


def _copy_lstm_into(cell, ref: nn.LSTM, layer=0):
    sfx = f"_l{layer}"
    with torch.no_grad():
        getattr(ref, "weight_ih" + sfx).copy_(cell.weight_ih)
        getattr(ref, "weight_hh" + sfx).copy_(cell.weight_hh)
        getattr(ref, "bias_ih" + sfx).copy_(cell.bias + cell.forget_offset())
        getattr(ref, "bias_hh" + sfx).zero_()
        if getattr(cell, "_num_proj", None):
            getattr(ref, "weight_hr" + sfx).copy_(cell.weight_proj)


@pytest.mark.parametrize("fused", ["auto", False])
def test_lstm_stack_matches_nn_lstm(fused):
    cells = [rnn.BasicLSTMCell(6, input_size=4), rnn.BasicLSTMCell(6, input_size=6)]
    ref = nn.LSTM(4, 6, num_layers=2, batch_first=True)
    for i, c in enumerate(cells):
        _copy_lstm_into(c, ref, i)
    x = torch.randn(3, 7, 4)
    out, st = rnn.dynamic_rnn(rnn.MultiRNNCell(cells), x, fused=fused)
    want, (h, c) = ref(x)
    torch.testing.assert_close(out, want)
    torch.testing.assert_close(st[1].h, h[1])
    torch.testing.assert_close(st[0].c, c[0])


def test_lstm_projection_matches_nn_lstm_proj_size():
    cell = rnn.LSTMCell(6, num_proj=3, input_size=4)
    ref = nn.LSTM(4, 6, proj_size=3, batch_first=True)
    _copy_lstm_into(cell, ref)
    x = torch.randn(2, 5, 4)
    for fused in (True, False):
        out, st = rnn.dynamic_rnn(cell, x, fused=fused)
        want, (h, c) = ref(x)
        torch.testing.assert_close(out, want)
        torch.testing.assert_close(st.c, c[0])


@pytest.mark.parametrize("fused", ["auto", False])
def test_gru_reset_after_matches_nn_gru(fused):
    cell = rnn.GRUCell(5, reset_after=True, input_size=3)
    ref = nn.GRU(3, 5, batch_first=True)
    with torch.no_grad():
        ref.weight_ih_l0.copy_(cell.weight_ih)
        ref.weight_hh_l0.copy_(cell.weight_hh)
        ref.bias_ih_l0.copy_(cell.bias)
        ref.bias_hh_l0.copy_(torch.randn(15))
        cell.bias_hh.copy_(ref.bias_hh_l0)
    x, h0 = torch.randn(2, 6, 3), torch.randn(2, 5)
    out, st = rnn.dynamic_rnn(cell, x, initial_state=h0, fused=fused)
    want, h = ref(x, h0[None])
    torch.testing.assert_close(out, want)
    torch.testing.assert_close(st, h[0])


def test_basic_rnn_relu_matches_nn_rnn():
    cell = rnn.BasicRNNCell(4, activation=torch.relu, input_size=3)
    ref = nn.RNN(3, 4, nonlinearity="relu", batch_first=True)
    with torch.no_grad():
        ref.weight_ih_l0.copy_(cell.weight_ih)
        ref.weight_hh_l0.copy_(cell.weight_hh)
        ref.bias_ih_l0.copy_(cell.bias)
        ref.bias_hh_l0.zero_()
    x = torch.randn(2, 5, 3)
    for fused in (True, False):
        torch.testing.assert_close(rnn.dynamic_rnn(cell, x, fused=fused)[0], ref(x)[0])


def test_layer_norm_lstm_closed_form():
    cell = rnn.LayerNormBasicLSTMCell(4, input_size=3)
    with torch.no_grad():
        for p in cell.parameters():
            p.normal_()
    x, c, h = torch.randn(2, 3), torch.randn(2, 4), torch.randn(2, 4)
    out, st = cell(x, rnn.LSTMStateTuple(c, h))
    P = {k: v.detach().numpy() for k, v in cell.named_parameters()}

    def ln(v, g, b):
        m, s = v.mean(-1, keepdims=True), v.var(-1, keepdims=True)
        return (v - m) / np.sqrt(s + 1e-12) * g + b

    z = x.numpy() @ P["weight_ih"].T + h.numpy() @ P["weight_hh"].T
    i, f, g, o = (ln(part, P["ln_gamma"][k], P["ln_beta"][k])
                  for k, part in enumerate(np.split(z, 4, axis=1)))
    new_c = ln(c.numpy() * sig(f + 1.0) + sig(i) * np.tanh(g), P["state_gamma"], P["state_beta"])
    np.testing.assert_allclose(st.c.detach().numpy(), new_c, atol=1e-5)
    np.testing.assert_allclose(out.detach().numpy(), np.tanh(new_c) * sig(o), atol=1e-5)


def test_layer_norm_dropout_only_in_train_mode():
    cell = rnn.LayerNormBasicLSTMCell(8, dropout_keep_prob=0.5, input_size=3)
    x, s = torch.randn(4, 3), cell.zero_state(4)
    cell.eval()
    a, _ = cell(x, s)
    b, _ = cell(x, s)
    torch.testing.assert_close(a, b)
    cell.train()
    outs = [cell(x, s)[0] for _ in range(3)]
    assert all(torch.isfinite(o).all() for o in outs)
    assert not torch.allclose(outs[0], outs[1])  # finite and redrawn each call


def test_lazy_build_uses_input_dtype_and_device():
    cell = rnn.BasicLSTMCell(3)
    declared = list(cell.parameters())  # exist from the start, sized at the first call
    assert not cell.built and all(isinstance(p, nn.UninitializedParameter) for p in declared)
    x = torch.randn(2, 4, dtype=torch.float64)
    cell(x, cell.zero_state(2, torch.float64))
    assert cell.built and cell.weight_ih.shape == (12, 4) and cell.weight_ih.dtype == torch.float64
    assert [id(p) for p in cell.parameters()] == [id(p) for p in declared]


def test_zero_state_nested():
    cell = rnn.MultiRNNCell([rnn.BasicLSTMCell(3), rnn.GRUCell(2)])
    z = cell.zero_state(5)
    assert isinstance(z[0], rnn.LSTMStateTuple) and z[0].c.shape == (5, 3)
    assert z[1].shape == (5, 2)
    assert all(torch.equal(t, torch.zeros_like(t)) for t in (z[0].c, z[0].h, z[1]))
    assert z[1].dtype == torch.get_default_dtype()


# --- seed 000 "1. RNNWrapper": user-defined cells -------------------------------------

def _seed_cells():
    """The user-defined cells of seed 000 "1. RNNWrapper", as ported in examples/."""
    path = pathlib.Path(__file__).resolve().parent.parent / "examples" / "seed000_1_rnn_wrapper.py"
    spec = importlib.util.spec_from_file_location("seed000_1_rnn_wrapper", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


SEED = _seed_cells()
MyRnnWrapper = SEED.MyRnnWrapper
MyBasicRNNWrapper = SEED.MyBasicRNNWrapper
MyBasicRNNWrapper2 = SEED.MyBasicRNNWrapper2


def test_seed_my_rnn_wrapper_last_state_is_0_6():
    emb = torch.arange(10, dtype=torch.float32).reshape(5, 2)
    x = torch.tensor([[0, 3, 3, 2, 3, 2], [0, 3, 1, 2, 3, 1], [0, 1, 3, 2, 2, 1]])
    inputs = emb[x]
    cell = MyRnnWrapper(2, "xxx")
    out, last = rnn.dynamic_rnn(cell, inputs, initial_state=cell.zero_state(3))
    torch.testing.assert_close(out, inputs)
    torch.testing.assert_close(last, torch.full((3, 2), 0.6))


def test_seed_user_basic_rnn_equals_builtin():
    mine = MyBasicRNNWrapper(4, "xxx")
    x = torch.randn(3, 6, 2)
    out, last = rnn.dynamic_rnn(mine, x)
    assert set(dict(mine.named_parameters())) == {"kernel", "bias"}  # one entry per tensor
    ref = rnn.BasicRNNCell(4, input_size=2)
    with torch.no_grad():
        ref.weight_ih.copy_(mine._kernel[:2].T)
        ref.weight_hh.copy_(mine._kernel[2:].T)
        ref.bias.copy_(mine._bias)
    torch.testing.assert_close(out, rnn.dynamic_rnn(ref, x)[0])
    wrapped = MyBasicRNNWrapper2(ref, "xxx")
    torch.testing.assert_close(rnn.dynamic_rnn(wrapped, x)[0], out)
    loss = seq2seq.sequence_loss(out, torch.zeros(3, 6, dtype=torch.long), torch.ones(3, 6))
    loss.backward()
    assert mine._kernel.grad is not None


def test_copy_copy_gives_independent_layers_like_tf():
    cell = rnn.BasicLSTMCell(num_units=5, state_is_tuple=True)
    multi = rnn.MultiRNNCell([copy.copy(cell) for _ in range(3)])
    x = torch.arange(45, dtype=torch.float32).reshape(3, 5, 3)
    out, _ = rnn.dynamic_rnn(multi, x)
    assert out.shape == (3, 5, 5)
    assert multi.cells[0].weight_ih.shape == (20, 3) and multi.cells[1].weight_ih.shape == (20, 5)
    assert multi.cells[1].weight_hh.data_ptr() != multi.cells[2].weight_hh.data_ptr()


def test_same_cell_twice_in_multi_is_an_error():
    cell = rnn.BasicLSTMCell(4)
    with pytest.raises(ValueError, match="same cell object"):
        rnn.MultiRNNCell([cell, cell])


@pytest.mark.parametrize("make", [
    lambda: rnn.BasicRNNCell(6),
    lambda: rnn.BasicLSTMCell(6),
    lambda: rnn.LSTMCell(6, use_peepholes=True, num_proj=4),
    lambda: rnn.GRUCell(6),
    lambda: rnn.GRUCell(6, reset_after=True),
    lambda: rnn.LayerNormBasicLSTMCell(6),
    lambda: rnn.MultiRNNCell([rnn.GRUCell(6), rnn.LSTMCell(5)]),
])
def test_a_cell_never_called_loads_a_state_dict(make):
    """TF's order: construct, restore the weights, then run.  Cells whose input depth is
    known only at the first call take it from the checkpoint's shapes."""
    torch.manual_seed(0)
    trained = make()
    x = torch.randn(3, 7)
    state = trained.zero_state(3)
    want = trained(x, state)
    fresh = make()
    fresh.load_state_dict(trained.state_dict())
    torch.testing.assert_close(fresh(x, state), want, rtol=0, atol=0)
    with pytest.raises(RuntimeError, match="size mismatch"):  # wrong sizes still refused
        make().load_state_dict({k: v[..., :-1] if v.dim() == 2 else v
                                for k, v in trained.state_dict().items()})


def test_layer_norm_lstm_dropout_prob_seed_makes_the_dropout_reproducible():
    """TF's ``dropout_prob_seed``: the candidate's dropout draws from the seed's own stream,
    whatever the global generator has been used for."""
    def outputs(seed, global_seed):
        torch.manual_seed(0)
        cell = rnn.LayerNormBasicLSTMCell(6, input_size=4, dropout_keep_prob=0.5,
                                          dropout_prob_seed=seed)
        x = torch.randn(3, 5, 4)
        torch.manual_seed(global_seed)
        return rnn.dynamic_rnn(cell, x)[0]

    assert torch.equal(outputs(3, global_seed=1), outputs(3, global_seed=2))
    assert torch.isfinite(outputs(3, 1)).all() and torch.isfinite(outputs(None, 1)).all()
    assert not torch.equal(outputs(3, 1), outputs(4, 1))
    assert not torch.equal(outputs(None, 1), outputs(None, 2))  # unseeded: the global stream
    with torch.no_grad():
        cell = rnn.LayerNormBasicLSTMCell(6, input_size=4, dropout_keep_prob=0.5,
                                          dropout_prob_seed=3).eval()
        x = torch.randn(3, 5, 4)
        assert torch.equal(rnn.dynamic_rnn(cell, x)[0], rnn.dynamic_rnn(cell, x)[0])
