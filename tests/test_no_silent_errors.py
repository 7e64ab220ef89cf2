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
    with pytest.raises(TypeError, match="memory_mask must be booleans, received dtype "
                                        "torch.float32"):
        mech.setup_memory(memory, memory_mask=torch.tensor([[0.5, 1, 1], [1, 1, 1]]))
    # a row without memory is accepted at setup, as TF does, and refused when scored
    mech.setup_memory(memory, memory_mask=torch.tensor([[True, False, False], [False] * 3]))
    with pytest.raises(ValueError, match=r"rows \[1\] of the memory bound have no valid "
                                         r"position"):
        mech(torch.randn(2, 4), mech.initial_alignments(2))


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
    with pytest.raises(ValueError, match=r"state\.c must have shape \(3, 4\), received "
                                         r"\(1, 4\)"):
        cell(torch.randn(3, 5), cell.zero_state(1))
    assert not cell.built  # nothing built from a call that failed validation


@pytest.mark.parametrize("arg", ["cell_clip", "proj_clip"])
def test_negative_clip_refused(arg):
    with pytest.raises(ValueError, match=f"{arg} must be >= 0 and finite, received -1.0"):
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
    with pytest.raises(ValueError, match=r"state must have shape \(2, 6\), received "
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
    with pytest.raises(ValueError, match=r"basic_lstm_cell/kernel: expected shape \(5, 12\) "
                                         r"\(\[input \+ 3, 12\]\), received \(5, 10\)"):
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
        "from rnnkit.compat import register_tf_layout, load_tf_variables\n"
        "class Mine: pass\n"
        "register_tf_layout(Mine, 'mine')(lambda m, available: {})\n"
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


def _flag_calls():
    """Each public on/off switch, called with ``value`` (only that argument differs)."""
    x, lengths = torch.randn(3, 5, 4), torch.tensor([5, 4, 2])
    mem = torch.randn(3, 6, 4)
    emb = torch.randn(10, 4)

    def decode(**kw):
        helper = seq2seq.TrainingHelper(x, lengths)
        return seq2seq.dynamic_decode(
            seq2seq.BasicDecoder(rnn.GRUCell(4), helper, torch.zeros(3, 4)), **kw)

    def loss(**kw):
        return seq2seq.sequence_loss(torch.randn(3, 5, 10), torch.zeros(3, 5, dtype=torch.long),
                                     torch.ones(3, 5), **kw)

    def wrapper(**kw):
        return seq2seq.AttentionWrapper(rnn.GRUCell(4), seq2seq.LuongAttention(4, mem), **kw)

    return {
        "dynamic_rnn time_major": lambda v: rnn.dynamic_rnn(rnn.GRUCell(4), x, time_major=v),
        "bidirectional time_major": lambda v: rnn.bidirectional_dynamic_rnn(
            rnn.GRUCell(4), rnn.GRUCell(4), x, time_major=v),
        "stack_bidirectional time_major": lambda v: rnn.stack_bidirectional_dynamic_rnn(
            [rnn.GRUCell(4)], [rnn.GRUCell(4)], x, time_major=v),
        "dynamic_rnn swap_memory": lambda v: rnn.dynamic_rnn(rnn.GRUCell(4), x, swap_memory=v),
        "bidirectional swap_memory": lambda v: rnn.bidirectional_dynamic_rnn(
            rnn.GRUCell(4), rnn.GRUCell(4), x, swap_memory=v),
        "stack_bidirectional swap_memory": lambda v: rnn.stack_bidirectional_dynamic_rnn(
            [rnn.GRUCell(4)], [rnn.GRUCell(4)], x, swap_memory=v),
        "dynamic_decode swap_memory": lambda v: decode(swap_memory=v),
        "safe_cumprod exclusive": lambda v: seq2seq.safe_cumprod(x, exclusive=v),
        "safe_cumprod reverse": lambda v: seq2seq.safe_cumprod(x, reverse=v),
        "dynamic_decode output_time_major": lambda v: decode(output_time_major=v),
        "dynamic_decode impute_finished": lambda v: decode(impute_finished=v),
        "TrainingHelper time_major": lambda v: seq2seq.TrainingHelper(x, lengths, time_major=v),
        "ScheduledEmbeddingTrainingHelper time_major": lambda v:
            seq2seq.ScheduledEmbeddingTrainingHelper(x, lengths, emb, 0.5, time_major=v),
        "ScheduledOutputTrainingHelper time_major": lambda v:
            seq2seq.ScheduledOutputTrainingHelper(x, lengths, 0.5, time_major=v),
        "BahdanauAttention normalize": lambda v: seq2seq.BahdanauAttention(4, mem, normalize=v),
        "LuongAttention scale": lambda v: seq2seq.LuongAttention(4, mem, scale=v),
        "AttentionWrapper alignment_history": lambda v: wrapper(alignment_history=v),
        "AttentionWrapper output_attention": lambda v: wrapper(output_attention=v),
        "sequence_loss average_across_timesteps": lambda v: loss(average_across_timesteps=v),
        "sequence_loss average_across_batch": lambda v: loss(average_across_batch=v),
        "sequence_loss sum_over_timesteps": lambda v: loss(sum_over_timesteps=v),
        "sequence_loss sum_over_batch": lambda v: loss(sum_over_batch=v),
        "BasicLSTMCell state_is_tuple": lambda v: rnn.BasicLSTMCell(4, state_is_tuple=v),
        "LSTMCell use_peepholes": lambda v: rnn.LSTMCell(4, use_peepholes=v),
        "GRUCell reset_after": lambda v: rnn.GRUCell(4, reset_after=v),
        "LayerNormBasicLSTMCell layer_norm": lambda v: rnn.LayerNormBasicLSTMCell(4, layer_norm=v),
        "DropoutWrapper variational_recurrent": lambda v: rnn.DropoutWrapper(
            rnn.GRUCell(4), variational_recurrent=v, input_size=4, dtype=torch.float32),
        "MultiRNNCell state_is_tuple": lambda v: rnn.MultiRNNCell(
            [rnn.GRUCell(4)], state_is_tuple=v),
        "BeamSearchDecoder reorder_tensor_arrays": lambda v: seq2seq.BeamSearchDecoder(
            rnn.GRUCell(4), emb, torch.zeros(3, dtype=torch.long), 1, torch.zeros(3, 4),
            beam_width=2, reorder_tensor_arrays=v),
    }


_FLAG_CALLS = _flag_calls()


@pytest.mark.parametrize("name", sorted(_FLAG_CALLS))
def test_on_off_switches_refuse_what_is_not_a_bool(name):
    """The string "no" is truthy: taking it as True would silently mean the opposite."""
    call = _FLAG_CALLS[name]
    argument = name.split()[-1]
    for bad in ("no", "False", 0, 1, None, torch.tensor(True), [True]):
        with pytest.raises(TypeError, match=f"{argument} must be a bool, received"):
            call(bad)
    call(False)
    call(np.bool_(False))  # numpy booleans are booleans


def _number_calls():
    """Each public number-valued setting: (call with ``value``, values it must refuse)."""
    mem = torch.randn(3, 6, 4)
    emb = torch.randn(10, 4)
    start = torch.zeros(3, dtype=torch.long)
    nan, inf = float("nan"), float("inf")
    not_numbers = ("0.5", None, True, [0.5])

    def beam(**kw):
        return seq2seq.BeamSearchDecoder(rnn.GRUCell(4), emb, start, 1, torch.zeros(3, 4),
                                         beam_width=2, **kw)

    def monotonic(**kw):
        return seq2seq.BahdanauMonotonicAttention(4, mem, **kw)

    return {
        "BasicLSTMCell forget_bias": (lambda v: rnn.BasicLSTMCell(4, forget_bias=v),
                                      (*not_numbers, nan, inf)),
        "LSTMCell cell_clip": (lambda v: rnn.LSTMCell(4, cell_clip=v), ("3", True, nan, -0.5)),
        "LayerNormBasicLSTMCell norm_gain": (
            lambda v: rnn.LayerNormBasicLSTMCell(4, norm_gain=v), (*not_numbers, nan)),
        "LayerNormBasicLSTMCell norm_shift": (
            lambda v: rnn.LayerNormBasicLSTMCell(4, norm_shift=v), (*not_numbers, nan)),
        "LayerNormBasicLSTMCell dropout_keep_prob": (
            lambda v: rnn.LayerNormBasicLSTMCell(4, dropout_keep_prob=v), ("0.5", True, nan, 0.0)),
        "DropoutWrapper input_keep_prob": (
            lambda v: rnn.DropoutWrapper(rnn.GRUCell(4), input_keep_prob=v),
            (*not_numbers, nan, 0.0, 1.5)),
        "DropoutWrapper state_keep_prob": (
            lambda v: rnn.DropoutWrapper(rnn.GRUCell(4), state_keep_prob=v), ("0.5", nan)),
        "SampleEmbeddingHelper softmax_temperature": (
            lambda v: seq2seq.SampleEmbeddingHelper(emb, start, 1, softmax_temperature=v),
            ("0.5", True, nan, inf, 0.0)),
        "SampleEmbeddingHelper top_p": (
            lambda v: seq2seq.SampleEmbeddingHelper(emb, start, 1, top_p=v), ("0.5", True, nan)),
        "BeamSearchDecoder length_penalty_weight": (
            lambda v: beam(length_penalty_weight=v), (*not_numbers, nan, inf, -1.0)),
        "BeamSearchDecoder coverage_penalty_weight": (
            lambda v: beam(coverage_penalty_weight=v), (*not_numbers, nan, inf, -1.0)),
        "LuongAttention score_mask_value": (
            lambda v: seq2seq.LuongAttention(4, mem, score_mask_value=v), ("-1e9", True, nan)),
        "BahdanauMonotonicAttention sigmoid_noise": (
            lambda v: monotonic(sigmoid_noise=v), (*not_numbers, nan, inf)),
        "BahdanauMonotonicAttention score_bias_init": (
            lambda v: monotonic(score_bias_init=v), (*not_numbers, nan, inf)),
    }


_NUMBER_CALLS = _number_calls()


@pytest.mark.parametrize("name", sorted(_NUMBER_CALLS))
def test_number_settings_refuse_strings_bools_and_nan(name):
    """A string, a bool or NaN in a number setting is refused with the argument named (NaN
    would turn every score into NaN; "0.5" is not a number in TF either)."""
    call, bad_values = _NUMBER_CALLS[name]
    argument = name.split()[-1]
    for bad in bad_values:
        with pytest.raises((TypeError, ValueError), match=f"^{argument} must be .*received"):
            call(bad)
    call(np.float32(0.5))  # numpy scalars are numbers
    call(torch.tensor(0.5))  # and so are 0-d tensors


@pytest.mark.parametrize("make", [
    lambda f: rnn.GRUCell(4, activation=f),
    lambda f: rnn.BasicRNNCell(4, activation=f),
    lambda f: rnn.OutputProjectionWrapper(rnn.GRUCell(4), 3, activation=f),
    lambda f: rnn.InputProjectionWrapper(rnn.GRUCell(4), 3, activation=f),
    lambda f: seq2seq.LuongAttention(4, torch.randn(3, 6, 4), probability_fn=f),
    lambda f: seq2seq.BeamSearchDecoder(rnn.GRUCell(4), torch.randn(10, 4),
                                        torch.zeros(3, dtype=torch.long), 1, torch.zeros(3, 4),
                                        beam_width=2, output_layer=f),
], ids=["GRUCell", "BasicRNNCell", "OutputProjectionWrapper", "InputProjectionWrapper",
        "LuongAttention", "BeamSearchDecoder"])
def test_functions_are_checked_when_given_not_at_the_first_step(make):
    with pytest.raises(TypeError, match=r"^\w+ must be a function or None, received 'tanh'"):
        make("tanh")
    make(None)


def test_inference_and_custom_helpers_check_their_functions_shape_and_dtype():
    start = torch.zeros(3, 4)
    ids = lambda out: out.argmax(-1)  # noqa: E731
    done = lambda ids: ids == 0  # noqa: E731

    def inference(**kw):
        args = dict(sample_fn=ids, sample_shape=[], sample_dtype=torch.int64,
                    start_inputs=start, end_fn=done)
        return seq2seq.InferenceHelper(**{**args, **kw})

    for arg in ("sample_fn", "end_fn"):
        with pytest.raises(TypeError, match=f"^{arg} must be a function, received None"):
            inference(**{arg: None})
    with pytest.raises(TypeError, match="^next_inputs_fn must be a function or None, received 3"):
        inference(next_inputs_fn=3)
    with pytest.raises(TypeError, match="^sample_dtype must be a dtype .*received 'int6'"):
        inference(sample_dtype="int6")
    assert inference(sample_dtype="int64").sample_ids_dtype == torch.int64  # tf.as_dtype's
    with pytest.raises(ValueError, match=r"^sample_shape must be a shape \(ints >= 0\), "
                                         r"received \[2.5\]"):
        inference(sample_shape=[2.5])
    # an int is a one-dimensional shape, as tf.TensorShape(4) is
    assert inference(sample_shape=4).sample_ids_shape == torch.Size([4])
    assert inference(sample_shape=np.int64(4)).sample_ids_shape == torch.Size([4])

    def custom(**kw):
        args = dict(initialize_fn=lambda: (torch.zeros(3, dtype=torch.bool), start),
                    sample_fn=lambda time, outputs, state: ids(outputs),
                    next_inputs_fn=lambda time, outputs, state, sample_ids:
                        (sample_ids == 0, outputs, state))
        return seq2seq.CustomHelper(**{**args, **kw})

    for arg in ("initialize_fn", "sample_fn", "next_inputs_fn"):
        with pytest.raises(TypeError, match=f"^{arg} must be a function, received 'x'"):
            custom(**{arg: "x"})
    with pytest.raises(TypeError, match="^sample_ids_dtype must be a dtype"):
        custom(sample_ids_dtype=int)  # TF and numpy disagree on its width
    assert custom(sample_ids_dtype=np.int64).sample_ids_dtype == torch.int64
    assert custom(sample_ids_shape=2).sample_ids_shape == torch.Size([2])


def test_zero_state_dtype_is_checked_by_rnnkit():
    with pytest.raises(TypeError, match="^dtype must be a dtype .*received 'float3'"):
        rnn.GRUCell(4).zero_state(2, "float3")
    assert rnn.GRUCell(4).zero_state(2, "float64").dtype == torch.float64  # as tf.zeros


def test_attention_wrapper_tile_batch_and_loss_check_what_they_are_given():
    mem = torch.randn(3, 6, 4)

    def wrapper(**kw):
        return seq2seq.AttentionWrapper(rnn.GRUCell(4), seq2seq.LuongAttention(4, mem), **kw)

    with pytest.raises(TypeError, match="^cell_input_fn must be a function or None, received 'x'"):
        wrapper(cell_input_fn="x")
    with pytest.raises(TypeError, match=r"^attention_layer\[0\] must be a torch.nn.Module, "
                                        "received str"):
        wrapper(attention_layer="x")
    with pytest.raises(TypeError, match="^tile_batch needs tensors or arrays, received str"):
        seq2seq.tile_batch(("a",), 2)
    assert seq2seq.tile_batch(np.array([[1], [2]]), 2).dtype == torch.int64  # ids stay integer
    with pytest.raises(TypeError, match="^softmax_loss_function must be a function or None"):
        seq2seq.sequence_loss(torch.randn(3, 5, 10), torch.zeros(3, 5, dtype=torch.long),
                              torch.ones(3, 5), softmax_loss_function="x")


def test_sizes_and_counts_accept_numpy_ints_as_tf_did():
    """Sizes computed with numpy (``np.int64``) are ints; a float or a bool is not."""
    n = np.int64(4)
    mem = torch.randn(3, 6, 4)
    emb = torch.randn(10, 4)
    start = torch.zeros(3, dtype=torch.long)
    assert rnn.GRUCell(n, input_size=np.int32(4)).output_size == 4
    assert rnn.LSTMCell(4, num_proj=np.int64(3)).output_size == 3
    assert rnn.OutputProjectionWrapper(rnn.GRUCell(4), np.int64(3)).output_size == 3
    rnn.InputProjectionWrapper(rnn.GRUCell(4), np.int64(3))
    assert seq2seq.LuongAttention(n, mem).num_units == 4
    wrapper = seq2seq.AttentionWrapper(rnn.GRUCell(4), seq2seq.LuongAttention(4, mem),
                                       attention_layer_size=np.int64(5))
    assert wrapper.output_size == 5
    assert seq2seq.tile_batch(torch.zeros(2, 3), np.int64(2)).shape == (4, 3)
    seq2seq.BeamSearchDecoder(rnn.GRUCell(4), emb, start, 1, torch.zeros(3, 4),
                              beam_width=np.int64(2), min_length=np.int64(1),
                              no_repeat_ngram_size=np.int64(2))
    seq2seq.SampleEmbeddingHelper(emb, start, 1, top_k=np.int64(3))
    for bad in (4.0, True, "4"):
        with pytest.raises(ValueError, match=f"^num_units must be a positive int, received "
                                             f"{bad!r}"):
            rnn.GRUCell(bad)


@pytest.mark.parametrize("make, name", [
    (lambda s: rnn.DropoutWrapper(rnn.GRUCell(4), input_keep_prob=0.5, seed=s), "seed"),
    (lambda s: rnn.LayerNormBasicLSTMCell(4, dropout_keep_prob=0.5, dropout_prob_seed=s),
     "dropout_prob_seed"),
    (lambda s: seq2seq.LuongMonotonicAttention(4, torch.randn(2, 5, 4), sigmoid_noise=1.0,
                                               sigmoid_noise_seed=s), "sigmoid_noise_seed"),
    (lambda s: seq2seq.SampleEmbeddingHelper(torch.randn(5, 4), [1, 2], 0, seed=s), "seed"),
    (lambda s: seq2seq.ScheduledEmbeddingTrainingHelper(
        torch.randn(2, 3, 4), [3, 2], torch.randn(5, 4), 0.5, scheduling_seed=s),
     "scheduling_seed"),
    (lambda s: seq2seq.ScheduledOutputTrainingHelper(torch.randn(2, 3, 4), [3, 2], 0.5, seed=s),
     "seed"),
])
def test_seeds_are_ints(make, name):
    """A seed of 3.7 or "3" would silently become another stream."""
    for bad in (3.7, "3"):
        with pytest.raises(TypeError, match=f"^{name} must be an int"):
            make(bad)
    make(np.int64(3))


def test_an_lstm_state_as_a_keras_list_is_refused():
    """Keras (and tfa code built on it) hands LSTM states around as [h, c]; TF 1.x's and
    rnnkit's is LSTMStateTuple(c, h).  Read positionally, a list would swap h and c."""
    cell = rnn.LSTMCell(4)
    x, h, c = torch.randn(2, 3, 5), torch.randn(2, 4), torch.randn(2, 4)
    with pytest.raises(ValueError, match=r"initial_state: an LSTM state given as a list reads "
                                         r"as Keras's \[h, c\] order"):
        rnn.dynamic_rnn(cell, x, initial_state=[h, c])
    with pytest.raises(ValueError, match=r"an LSTM state given as a list"):
        rnn.dynamic_rnn(rnn.MultiRNNCell([rnn.GRUCell(4), rnn.LSTMCell(4)]), x,
                        initial_state=(torch.zeros(2, 4), [h, c]))
    mech = seq2seq.LuongAttention(4, torch.randn(2, 6, 4))
    wrapper = seq2seq.AttentionWrapper(rnn.LSTMCell(4), mech)
    state = wrapper.zero_state(2).clone(cell_state=[h, c])
    with pytest.raises(ValueError, match=r"cell_state: an LSTM state given as a list"):
        rnn.dynamic_rnn(wrapper, x, initial_state=state)
    # TF 1.x's forms keep working: the named tuple, or a plain tuple (c, h)
    named = rnn.dynamic_rnn(cell, x, initial_state=rnn.LSTMStateTuple(c, h))[1]
    plain = rnn.dynamic_rnn(cell, x, initial_state=(c, h))[1]
    torch.testing.assert_close(named, plain)
    # a MultiRNNCell's list of layer states is no LSTM state: fine
    multi = rnn.MultiRNNCell([rnn.LSTMCell(4), rnn.LSTMCell(4)])
    rnn.dynamic_rnn(multi, x, initial_state=[rnn.LSTMStateTuple(c, h)] * 2)
