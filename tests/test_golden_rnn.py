"""rnnkit vs TF 1.x (tf.compat.v1, TF 2.15) on the same weights (fixtures from
tests/golden/make_rnn_golden.py), through load_tf_variables."""

import numpy as np
import pytest
import torch
from conftest import leaves, load_fixture, tf_vars

from rnnkit import compat, nest, rnn

CASES = {
    "basic_rnn": lambda: rnn.BasicRNNCell(5),
    "basic_lstm": lambda: rnn.BasicLSTMCell(5),
    "basic_lstm_concat": lambda: rnn.BasicLSTMCell(4, forget_bias=0.5, state_is_tuple=False),
    "lstm_full": lambda: rnn.LSTMCell(5, use_peepholes=True, cell_clip=0.8, num_proj=3,
                                      proj_clip=0.6),
    "lstm_proj": lambda: rnn.LSTMCell(5, num_proj=3),
    "gru": lambda: rnn.GRUCell(5),
    "gru_reset_after": lambda: rnn.GRUCell(5, reset_after=True),
    "multi": lambda: rnn.MultiRNNCell([rnn.BasicLSTMCell(5), rnn.GRUCell(4), rnn.BasicRNNCell(3)]),
}


@pytest.mark.parametrize("fused", ["auto", False])
@pytest.mark.parametrize("name", sorted(CASES))
def test_dynamic_rnn_matches_tf(name, fused):
    fx = load_fixture(f"rnn_{name}.npz")
    cell = CASES[name]()
    scope = "" if name == "gru_reset_after" else "rnn/"
    compat.load_tf_variables(cell, tf_vars(fx), scope=scope)
    x = torch.from_numpy(fx["x"])
    init = None
    if "init:0" in fx:
        init = nest.pack_sequence_as(cell.state_size,
                                     [torch.from_numpy(v) for v in leaves(fx, "init:")])
    out, state = rnn.dynamic_rnn(cell, x, sequence_length=torch.from_numpy(fx["lengths"]),
                                 initial_state=init, fused=fused)
    np.testing.assert_allclose(out.detach().numpy(), fx["out"], atol=2e-5, rtol=1e-4)
    for got, want in zip(nest.flatten(state), leaves(fx, "state:"), strict=True):
        np.testing.assert_allclose(got.detach().numpy(), want, atol=2e-5, rtol=1e-4)


def test_bidirectional_matches_tf():
    fx = load_fixture("rnn_bidir_lstm.npz")
    fw, bw = rnn.BasicLSTMCell(5), rnn.BasicLSTMCell(5)
    compat.load_tf_variables({"bidirectional_rnn/fw/basic_lstm_cell": fw,
                              "bidirectional_rnn/bw/basic_lstm_cell": bw}, tf_vars(fx))
    (of, ob), states = rnn.bidirectional_dynamic_rnn(
        fw, bw, torch.from_numpy(fx["x"]), sequence_length=fx["lengths"].tolist())
    np.testing.assert_allclose(of.detach().numpy(), fx["out"], atol=2e-5)
    np.testing.assert_allclose(ob.detach().numpy(), fx["out_bw"], atol=2e-5)
    for got, want in zip(nest.flatten(states), leaves(fx, "state:"), strict=True):
        np.testing.assert_allclose(got.detach().numpy(), want, atol=2e-5)


def test_load_rejects_unknown_and_missing_names():
    fx = load_fixture("rnn_basic_lstm.npz")
    cell = rnn.BasicLSTMCell(5)
    variables = tf_vars(fx)
    with pytest.raises(ValueError, match="cannot place"):
        compat.load_tf_variables(cell, {**variables, "rnn/basic_lstm_cell/oops": np.zeros(3)},
                                 scope="rnn/")
    only_kernel = {k: v for k, v in variables.items() if k.endswith("kernel")}
    with pytest.raises(ValueError, match="no value for parameters"):
        compat.load_tf_variables(rnn.BasicLSTMCell(5), only_kernel, scope="rnn")
    with pytest.raises(ValueError, match="expected shape"):
        compat.load_tf_variables(rnn.BasicLSTMCell(5), {
            "rnn/basic_lstm_cell/kernel": variables["rnn/basic_lstm_cell/kernel"],
            "rnn/basic_lstm_cell/bias": np.zeros(7, np.float32)}, scope="rnn/")


def test_load_dense_and_wrappers_names():
    cell = rnn.OutputProjectionWrapper(rnn.DropoutWrapper(rnn.GRUCell(4)), 6)
    names = compat.tf_variable_names(cell)
    assert "output_projection_wrapper/kernel" in names
    assert "output_projection_wrapper/gru_cell/gates/kernel" in names
    dense = torch.nn.Linear(4, 6)
    k = np.arange(24, dtype=np.float32).reshape(4, 6)
    compat.load_tf_variables({"decoder/output_projection": dense},
                             {"decoder/output_projection/kernel": k,
                              "decoder/output_projection/bias": np.ones(6, np.float32)})
    np.testing.assert_array_equal(dense.weight.detach().numpy(), k.T)
