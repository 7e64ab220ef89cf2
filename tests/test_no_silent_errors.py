"""No silent wrong results, no opaque errors, and TF habits that work.

One test per class of failure: padding that leaks into results, inputs accepted with a wrong
meaning, errors raised from deep inside torch, and TF's order of doing things.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from rnnkit import compat, rnn, seq2seq

# -- padding never changes a result -------------------------------------------------------


def _luong(memory, lengths, units=4):
    mech = seq2seq.LuongAttention(units, memory, lengths)
    return seq2seq.AttentionWrapper(rnn.GRUCell(units, input_size=3 + 5), mech,
                                    attention_layer_size=5)


@pytest.mark.parametrize("poison", [float("nan"), float("inf")])
def test_nan_or_inf_in_memory_padding_never_reaches_outputs(poison):
    torch.manual_seed(0)
    memory = torch.randn(2, 5, 4)
    lengths = torch.tensor([5, 2])
    wrapper = _luong(memory, lengths)
    x = torch.randn(2, 3, 3)
    clean, _ = rnn.dynamic_rnn(wrapper, x, initial_state=wrapper.zero_state(2))
    dirty = memory.clone()
    dirty[1, 2:] = poison
    wrapper.attention_mechanisms[0].setup_memory(dirty, lengths)
    out, state = rnn.dynamic_rnn(wrapper, x, initial_state=wrapper.zero_state(2))
    torch.testing.assert_close(out, clean)
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in wrapper.parameters() if p.grad is not None)


@pytest.mark.parametrize("poison", [float("nan"), float("inf"), -float("inf")])
def test_sequence_loss_ignores_logits_where_weight_is_zero(poison):
    torch.manual_seed(1)
    logits = torch.randn(2, 4, 5)
    targets = torch.randint(0, 5, (2, 4))
    weights = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    clean = seq2seq.sequence_loss(logits, targets, weights)
    dirty = logits.clone()
    dirty[0, 3] = poison
    dirty[1, 1:] = poison
    dirty.requires_grad_(True)
    loss = seq2seq.sequence_loss(dirty, targets, weights)
    torch.testing.assert_close(loss, clean)
    loss.backward()
    assert torch.isfinite(dirty.grad).all() and not dirty.grad[1, 1:].any()


def test_memory_mask_must_be_boolean_and_mark_each_row():
    memory = torch.randn(2, 3, 4)
    mech = seq2seq.LuongAttention(4, memory, [3, 2])
    with pytest.raises(TypeError, match="memory_mask must be a bool tensor, received dtype "
                                        "torch.float32"):
        mech.setup_memory(memory, memory_mask=torch.tensor([[0.5, 1, 1], [1, 1, 1]]))
    with pytest.raises(ValueError, match=r"rows \[1\] are all False"):
        mech.setup_memory(memory, memory_mask=torch.tensor([[True, False, False], [False] * 3]))


# -- nothing accepted with a wrong meaning ----------------------------------------------


@pytest.mark.parametrize("lengths", [[3.0, 2.0], np.array([3.0, 2.0]), [2.5, 1]])
def test_float_lengths_are_refused_in_any_container(lengths):
    with pytest.raises(TypeError, match="sequence_length must hold integers"):
        rnn.dynamic_rnn(rnn.GRUCell(2), torch.randn(2, 3, 2), sequence_length=lengths)


def test_float_token_ids_are_refused():
    emb = torch.randn(5, 2)
    with pytest.raises(TypeError, match="start_tokens must hold integers, received dtype "
                                        "torch.float32"):
        seq2seq.GreedyEmbeddingHelper(emb, [1.0, 2.0], 3)
    with pytest.raises(TypeError, match="start_tokens must hold integers"):
        seq2seq.BeamSearchDecoder(rnn.GRUCell(2, input_size=2), emb, np.array([1.5]), 3,
                                  torch.zeros(2, 2), 2, output_layer=nn.Linear(2, 5))
    with pytest.raises(TypeError, match="parent_ids must hold integers"):
        seq2seq.gather_tree(torch.zeros(2, 1, 2, dtype=torch.long), torch.zeros(2, 1, 2),
                            torch.tensor([2]), 1)
    with pytest.raises(TypeError, match="end_token must be an int, received 3.0"):
        seq2seq.GreedyEmbeddingHelper(emb, [1, 2], 3.0)


def test_direct_cell_call_never_broadcasts_a_state():
    cell = rnn.BasicLSTMCell(4)
    with pytest.raises(ValueError, match=r"state leaf must have shape \(3, 4\), received "
                                         r"\(1, 4\)"):
        cell(torch.randn(3, 5), cell.zero_state(1))
    assert not cell.built  # nothing built from a call that failed validation


@pytest.mark.parametrize("arg", ["cell_clip", "proj_clip"])
def test_negative_clip_refused(arg):
    with pytest.raises(ValueError, match=f"{arg} must be a positive number or None, "
                                         "received -1.0"):
        rnn.LSTMCell(3, num_proj=2, **{arg: -1.0})


# -- errors from rnnkit, not from inside torch --------------------------------------------


def test_dtype_mismatch_in_a_direct_call_is_named():
    cell = rnn.BasicLSTMCell(4, input_size=3)
    with pytest.raises(TypeError, match="state has dtype torch.float64 but inputs have dtype "
                                        "torch.float32"):
        cell(torch.randn(2, 3), cell.zero_state(2, torch.float64))
    with pytest.raises(TypeError, match="inputs have dtype torch.float16 but BasicLSTMCell "
                                        "parameter weight_ih has dtype torch.float32"):
        cell(torch.randn(2, 3).half(), cell.zero_state(2, torch.float16))


def test_flat_multi_cell_state_width_is_checked():
    cell = rnn.MultiRNNCell([rnn.GRUCell(3), rnn.GRUCell(3)], state_is_tuple=False)
    with pytest.raises(ValueError, match=r"state must have shape \[batch, 6\] .* received "
                                         r"\(2, 5\)"):
        cell(torch.randn(2, 4), torch.zeros(2, 5))


def test_output_projection_wrapper_depth_is_named():
    cell = rnn.OutputProjectionWrapper(rnn.BasicLSTMCell(4, input_size=5), 3)
    with pytest.raises(ValueError, match=r"BasicLSTMCell inputs must have shape \[batch, 5\], "
                                         r"received \(2, 6\)"):
        cell(torch.randn(2, 6), cell.zero_state(2))


def test_attention_wrapper_bad_state_builds_nothing():
    memory = torch.randn(2, 5, 4)
    wrapper = _luong(memory, [5, 2])
    good = wrapper.zero_state(2)
    bad = good.clone(attention=torch.zeros(2, 9))
    with pytest.raises(ValueError, match="attention"):
        wrapper(torch.randn(2, 3), bad)
    out, _ = wrapper(torch.randn(2, 3), good)  # a later valid call works
    assert out.shape == (2, 5) and torch.isfinite(out).all()


def _lstm_vars(cell_units=3, depth=2, cols=None):
    rng = np.random.default_rng(0)
    cols = cols or 4 * cell_units
    return {"basic_lstm_cell/kernel": rng.normal(size=(depth + cell_units, cols)),
            "basic_lstm_cell/bias": rng.normal(size=(4 * cell_units,))}


def test_load_tf_variables_errors_are_named_and_change_nothing():
    cell = rnn.BasicLSTMCell(3, input_size=2)
    before = {k: v.clone() for k, v in cell.state_dict().items()}
    with pytest.raises(ValueError, match=r"basic_lstm_cell/kernel: expected a kernel "
                                         r"\[input \+ 3, 12\], received shape \(5, 10\)"):
        compat.load_tf_variables(cell, _lstm_vars(cols=10))
    with pytest.raises(TypeError, match="variables must be a mapping"):
        compat.load_tf_variables(cell, list(_lstm_vars().items()))
    bad = dict(_lstm_vars(), **{"basic_lstm_cell/extra": np.zeros(3)})
    with pytest.raises(ValueError, match="cannot place"):
        compat.load_tf_variables(cell, bad)
    wrong_bias = dict(_lstm_vars(), **{"basic_lstm_cell/bias": np.zeros(7)})
    with pytest.raises(ValueError, match="bias"):
        compat.load_tf_variables(cell, wrong_bias)  # the kernel loads first, then this fails
    for k, v in cell.state_dict().items():
        torch.testing.assert_close(v, before[k], msg=f"{k} was changed by a failed load")
    compat.load_tf_variables(cell, _lstm_vars())  # and a good load still works
    assert not torch.equal(cell.weight_ih, before["weight_ih"])


def test_registering_a_mapping_first_keeps_the_built_in_ones():
    code = (
        "import numpy as np\n"
        "from rnnkit.compat import register_tf_mapping, load_tf_variables\n"
        "class Mine: pass\n"
        "register_tf_mapping(Mine, 'mine')(lambda m, s: {})\n"
        "from rnnkit import rnn\n"
        "c = rnn.BasicRNNCell(2, input_size=1)\n"
        "load_tf_variables(c, {'basic_rnn_cell/kernel': np.ones((3, 2)),\n"
        "                      'basic_rnn_cell/bias': np.zeros(2)})\n"
        "print(float(c.weight_ih.sum()))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "2.0"


# -- TF's order of doing things ----------------------------------------------------------


def test_optimizer_made_before_the_first_call_trains_built_in_cells():
    torch.manual_seed(2)
    cell = rnn.MultiRNNCell([rnn.BasicLSTMCell(4), rnn.LSTMCell(3, num_proj=2),
                             rnn.GRUCell(3), rnn.LayerNormBasicLSTMCell(3)])
    opt = torch.optim.SGD(cell.parameters(), lr=0.5)  # TF's order: before the graph runs
    out, _ = rnn.dynamic_rnn(cell, torch.randn(2, 5, 3))
    before = {k: v.detach().clone() for k, v in cell.named_parameters()}
    out.square().sum().backward()
    opt.step()
    unchanged = [k for k, v in cell.named_parameters() if torch.equal(v, before[k])]
    assert unchanged == []


class _LazyUserCell(rnn.RNNCell):
    """A user cell written as the seed's: parameters made in build."""

    def __init__(self, declare: bool = False):
        super().__init__()
        if declare:
            self.declare_variables("kernel")

    @property
    def state_size(self):
        return 3

    @property
    def output_size(self):
        return 3

    def build(self, inputs_shape):
        self.kernel = self.add_variable("kernel", [inputs_shape[1] + 3, 3])

    def call(self, inputs, state):
        h = torch.tanh(torch.cat([inputs, state], 1) @ self.kernel)
        return h, h


def _train(cell, steps=3):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1)), *cell.parameters()], lr=0.1)
    x = torch.randn(2, 4, 2)
    for _ in range(steps):
        out, _ = rnn.dynamic_rnn(cell, x)
        opt.zero_grad()
        out.sum().backward()
        opt.step()
    return opt


def test_user_cell_built_after_the_optimizer_is_reported():
    with pytest.warns(UserWarning, match=r"_LazyUserCell created parameters \['kernel'\] at "
                                         "its first call; they receive gradients but no "
                                         "optimizer holds them"):
        _train(_LazyUserCell())


def test_user_cell_declaring_its_variables_trains_in_tf_order():
    cell = _LazyUserCell(declare=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt = _train(cell)
    assert any(p is cell.kernel for g in opt.param_groups for p in g["params"])
    assert cell.kernel.shape == (5, 3)


def test_attention_memory_bound_once_trains_over_many_steps():
    torch.manual_seed(3)
    memory = torch.randn(2, 5, 4)  # bound once, as TF code binds it in the graph
    wrapper = _luong(memory, [5, 3])
    mech = wrapper.attention_mechanisms[0]
    opt = torch.optim.SGD(wrapper.parameters(), lr=0.5)
    x = torch.randn(2, 3, 3)
    for _ in range(3):  # used to fail: "backward through the graph a second time"
        out, _ = rnn.dynamic_rnn(wrapper, x, initial_state=wrapper.zero_state(2))
        opt.zero_grad()
        out.square().sum().backward()
        opt.step()
    # decoding after the step, without setup_memory, uses the current weights
    with torch.no_grad():
        got, _ = rnn.dynamic_rnn(wrapper, x, initial_state=wrapper.zero_state(2))
        mech.setup_memory(memory, [5, 3])
        fresh, _ = rnn.dynamic_rnn(wrapper, x, initial_state=wrapper.zero_state(2))
    torch.testing.assert_close(got, fresh)
    torch.testing.assert_close(mech.keys, mech.memory_layer(mech.values))


# -- numpy in, as TF accepted ---------------------------------------------------------------


def test_numpy_ids_and_iterations_work_as_in_tf():
    torch.manual_seed(4)
    cell = rnn.GRUCell(4, input_size=2)
    emb = torch.randn(6, 2)
    out = nn.Linear(4, 6)
    a = seq2seq.dynamic_decode(seq2seq.BasicDecoder(
        cell, seq2seq.GreedyEmbeddingHelper(emb, np.array([1, 2]), np.int64(5)),
        cell.zero_state(2), out), maximum_iterations=np.int64(4))[0]
    b = seq2seq.dynamic_decode(seq2seq.BasicDecoder(
        cell, seq2seq.GreedyEmbeddingHelper(emb, torch.tensor([1, 2]), 5),
        cell.zero_state(2), out), maximum_iterations=4)[0]
    assert torch.equal(a.sample_id, b.sample_id)
    torch.testing.assert_close(a.rnn_output, b.rnn_output)


def test_user_helper_may_return_numpy_finished():
    cell = rnn.GRUCell(3, input_size=2)
    steps = {"t": 0}

    def initialize():
        return np.array([False, False]), torch.zeros(2, 2)

    def sample(time, outputs, state):
        return outputs.argmax(-1)

    def next_inputs(time, outputs, state, sample_ids):
        steps["t"] = time + 1
        return np.array([time >= 1, time >= 2]), torch.zeros(2, 2), state

    helper = seq2seq.CustomHelper(initialize, sample, next_inputs)
    outputs, _, lengths = seq2seq.dynamic_decode(
        seq2seq.BasicDecoder(cell, helper, cell.zero_state(2)), maximum_iterations=10)
    assert lengths.tolist() == [2, 3] and outputs.rnn_output.shape == (2, 3, 3)


def test_the_optimizer_hook_exists_only_while_a_lazy_user_cell_is_unjudged():
    """Importing rnnkit and training built-in cells registers no global optimizer hook."""
    code = (
        "import torch, warnings\n"
        "from torch.optim.optimizer import _global_optimizer_pre_hooks as hooks\n"
        "from rnnkit import rnn\n"
        "import test_no_silent_errors as t\n"
        "cell = rnn.MultiRNNCell([rnn.BasicLSTMCell(3), rnn.GRUCell(3)])\n"
        "t._train(cell)\n"
        "print(len(hooks))\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    t._train(t._LazyUserCell())\n"
        "print(len(hooks), len(w))\n"
        "torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))]).step()\n"
        "print(len(hooks))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=pathlib.Path(__file__).parent, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["0", "0", "1", "0"]  # warned, then the hook removed itself
