"""load_tf_variables: name mapping and layout conversion, beyond the TF goldens
(contrib-only cells, which TF 2.15 no longer has, round-trip through TF's layout)."""

import numpy as np
import pytest
import torch

from rnnkit import compat, nest, rnn


def tf_lstm_kernel(w_ih, w_hh):
    """rnnkit weights -> TF's fused [input + state, 4H] kernel in gate order i, j, f, o."""
    k = torch.cat([w_ih, w_hh], 1).T.detach().numpy()  # [I + H, 4H], columns i f g o
    i, f, g, o = np.split(k, 4, axis=1)
    return np.concatenate([i, g, f, o], axis=1)


def tf_gates(v):
    i, f, g, o = np.split(v.detach().numpy(), 4, axis=-1)
    return np.concatenate([i, g, f, o], axis=-1)


def test_layer_norm_lstm_roundtrip_in_alphabetical_order():
    ref = rnn.LayerNormBasicLSTMCell(5, input_size=3)
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_()
    gates = dict(zip(("input", "forget", "transform", "output"), range(4), strict=True))
    variables = {"layer_norm_basic_lstm_cell/kernel": tf_lstm_kernel(ref.weight_ih,
                                                                     ref.weight_hh),
                 "layer_norm_basic_lstm_cell/state/gamma": ref.state_gamma.detach().numpy(),
                 "layer_norm_basic_lstm_cell/state/beta": ref.state_beta.detach().numpy()}
    for gate, row in gates.items():
        variables[f"layer_norm_basic_lstm_cell/{gate}/gamma"] = ref.ln_gamma[row].detach().numpy()
        variables[f"layer_norm_basic_lstm_cell/{gate}/beta"] = ref.ln_beta[row].detach().numpy()
    cell = rnn.LayerNormBasicLSTMCell(5)  # unbuilt: the kernel's shape builds it
    compat.load_tf_variables(cell, dict(sorted(variables.items())))
    x = torch.randn(2, 4, 3)
    torch.testing.assert_close(rnn.dynamic_rnn(cell, x)[0], rnn.dynamic_rnn(ref, x)[0])


def test_projection_wrappers_roundtrip():
    ref = rnn.OutputProjectionWrapper(rnn.InputProjectionWrapper(
        rnn.BasicLSTMCell(4, input_size=6), 6, input_size=3), 7)
    rnn.dynamic_rnn(ref, torch.randn(1, 1, 3))
    inner = ref.cell.cell
    variables = {
        "output_projection_wrapper/kernel": ref.projection.weight.T.detach().numpy(),
        "output_projection_wrapper/bias": ref.projection.bias.detach().numpy(),
        "output_projection_wrapper/input_projection_wrapper/kernel":
            ref.cell.projection.weight.T.detach().numpy(),
        "output_projection_wrapper/input_projection_wrapper/bias":
            ref.cell.projection.bias.detach().numpy(),
        "output_projection_wrapper/input_projection_wrapper/basic_lstm_cell/kernel":
            tf_lstm_kernel(inner.weight_ih, inner.weight_hh),
        "output_projection_wrapper/input_projection_wrapper/basic_lstm_cell/bias":
            tf_gates(inner.bias),
    }
    assert sorted(variables) == compat.tf_variable_names(
        rnn.OutputProjectionWrapper(rnn.InputProjectionWrapper(rnn.BasicLSTMCell(4), 6), 7))
    cell = rnn.OutputProjectionWrapper(rnn.InputProjectionWrapper(rnn.BasicLSTMCell(4), 6), 7)
    compat.load_tf_variables(cell, dict(sorted(variables.items())))
    x = torch.randn(2, 5, 3)
    out, state = rnn.dynamic_rnn(cell, x)
    ref_out, ref_state = rnn.dynamic_rnn(ref, x)
    torch.testing.assert_close(out, ref_out)
    for a, b in zip(nest.flatten(state), nest.flatten(ref_state), strict=True):
        torch.testing.assert_close(a, b)


def test_scope_and_errors():
    cell = rnn.GRUCell(3)
    with pytest.raises(ValueError, match="cannot place"):
        compat.load_tf_variables(cell, {"other/gru_cell/gates/kernel": np.zeros((5, 6))},
                                 scope="rnn")
    with pytest.raises(TypeError, match="does not know how to load"):
        compat.load_tf_variables({"x": torch.nn.Conv1d(1, 1, 1)}, {})


def _tf_gru_step(x, h, w_ru, b_ru, w_c, b_c):
    """TF 1.x's GRU (GRUCell, GRUBlockCell's op) in numpy: r, u from [x, h]; the candidate
    from [x, r * h]; h' = u * h + (1 - u) * c."""
    def sigmoid(a):
        return 1.0 / (1.0 + np.exp(-a))

    ru = sigmoid(np.concatenate([x, h], 1) @ w_ru + b_ru)
    r, u = np.split(ru, 2, axis=1)
    c = np.tanh(np.concatenate([x, r * h], 1) @ w_c + b_c)
    return u * h + (1 - u) * c


@pytest.mark.parametrize("names", [("w_ru", "b_ru", "w_c", "b_c"),
                                   ("gates/kernel", "gates/bias", "candidate/kernel",
                                    "candidate/bias")])
def test_gru_block_cell_checkpoints_of_either_naming_load(names):
    # contrib's GRUBlockCell names its variables w_ru, b_ru, w_c, b_c; GRUBlockCellV2 (and
    # GRUCell) gates/kernel, ...: both load, and the cell computes TF's GRU
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in ((7, 8), (8,), (7, 4), (4,))]
    for cls in (rnn.GRUBlockCell, rnn.GRUBlockCellV2):
        cell = cls(4)
        compat.load_tf_variables(cell, {f"gru_cell/{n}": a for n, a in zip(names, arrays,
                                                                            strict=True)})
        x, h = rng.standard_normal((2, 3)).astype(np.float32), np.zeros((2, 4), np.float32)
        got, _ = cell(torch.from_numpy(x), torch.from_numpy(h))
        np.testing.assert_allclose(got.detach().numpy(), _tf_gru_step(x, h, *arrays),
                                   rtol=1e-5, atol=1e-6)
    assert compat.tf_name(rnn.GRUBlockCell(4)) == "gru_cell"
    assert rnn.GRUBlockCell(cell_size=4).output_size == 4
    with pytest.raises(ValueError, match="give num_units .* exactly one of them"):
        rnn.GRUBlockCell(4, cell_size=4)


def test_lstm_block_cell_is_lstm_cell_with_tf_block_arguments():
    x = torch.randn(2, 5, 3)
    torch.manual_seed(0)
    ref = rnn.LSTMCell(4, use_peepholes=True, cell_clip=0.3, forget_bias=0.5, input_size=3)
    block = rnn.LSTMBlockCell(4, forget_bias=0.5, cell_clip=0.3, use_peephole=True,
                              input_size=3)
    block.load_state_dict(ref.state_dict())
    torch.testing.assert_close(rnn.dynamic_rnn(block, x)[0], rnn.dynamic_rnn(ref, x)[0])
    # TF's cell_clip=-1 means no clipping
    unclipped = rnn.LSTMBlockCell(4, cell_clip=-1, input_size=3)
    plain = rnn.LSTMCell(4, input_size=3)
    plain.load_state_dict(unclipped.state_dict())
    torch.testing.assert_close(rnn.dynamic_rnn(unclipped, x)[0], rnn.dynamic_rnn(plain, x)[0])
    assert compat.tf_name(block) == "lstm_cell"
    names = sorted(compat.tf_variable_names(block))
    assert names == ["lstm_cell/bias", "lstm_cell/kernel", "lstm_cell/w_f_diag",
                     "lstm_cell/w_i_diag", "lstm_cell/w_o_diag"]
