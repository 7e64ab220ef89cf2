"""Inputs nobody writes on purpose: each is refused with the argument named, or handled with
TF's meaning; nothing hangs, nothing fails inside torch (issue: reliability of the newer
surfaces).  Property tests draw the inputs of each class with hypothesis."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from rnnkit import rnn, seq2seq

EMB = torch.randn(6, 2)
FAST = settings(max_examples=25, deadline=None)


def _cell():
    return rnn.GRUCell(3, input_size=2)


# -- every loop a user can make unbounded is bounded ------------------------------------------

def test_raw_rnn_whose_loop_fn_never_finishes_stops_with_an_error_naming_the_bound():
    cell = _cell()

    def loop_fn(time, cell_output, cell_state, loop_state):
        state = cell.zero_state(2) if cell_output is None else cell_state
        return torch.tensor([False, False]), torch.zeros(2, 2), state, cell_output, None

    with pytest.raises(RuntimeError, match=r"raw_rnn: loop_fn did not finish every entry within "
                                         r"maximum_iterations=7 steps"):
        rnn.raw_rnn(cell, loop_fn, maximum_iterations=7)
    with pytest.raises(RuntimeError, match=r"within maximum_iterations=1000 steps"):
        rnn.raw_rnn(cell, loop_fn)  # the default bound, as dynamic_decode's


def test_raw_rnn_stops_as_tf_when_loop_fn_finishes():
    cell = _cell()

    def loop_fn(time, cell_output, cell_state, loop_state):
        state = cell.zero_state(2) if cell_output is None else cell_state
        return torch.tensor([time >= 3, time >= 2]), torch.ones(2, 2), state, cell_output, None

    emit, _, _ = rnn.raw_rnn(cell, loop_fn, maximum_iterations=3)
    assert emit.stack().shape == (3, 2, 3)
    assert (emit.stack()[2, 1] == 0).all()  # finished entries emit zeros


@FAST
@given(st.integers(min_value=1, max_value=10**9))
def test_check_finished_every_beyond_the_decode_length_returns(k):
    cell = _cell()
    helper = seq2seq.GreedyEmbeddingHelper(EMB, torch.tensor([0, 0]), 1)
    dec = seq2seq.BasicDecoder(cell, helper, cell.zero_state(2), nn.Linear(3, 6))
    out, _, lengths = seq2seq.dynamic_decode(dec, maximum_iterations=5, check_finished_every=k)
    assert out.sample_id.shape[1] <= 5 and int(lengths.max()) <= 5


# -- sampling edge cases ----------------------------------------------------------------------

def _sample(logits, **kw):
    helper = seq2seq.SampleEmbeddingHelper(EMB, torch.tensor([0, 0]), 1, seed=0, **kw)
    return helper.sample(0, logits, None)


@pytest.mark.parametrize("bad", [float("nan"), float("-inf")])
def test_logits_without_a_finite_maximum_are_refused_naming_the_rows(bad):
    logits = torch.randn(2, 6)
    logits[1] = bad
    with pytest.raises(ValueError, match=r"cannot sample: a row of the logits holds NaN or no "
                                         r"finite value"):
        _sample(logits)


@FAST
@given(st.floats(min_value=1e-45, max_value=1e-30))
def test_a_tiny_temperature_samples_the_most_likely_token(temperature):
    logits = torch.tensor([[0.1, 2.0, -1.0, 0.0, 0.5, 0.3], [3.0, -2.0, 0.0, 1.0, 2.9, 0.0]])
    ids = _sample(logits, softmax_temperature=temperature)
    assert ids.tolist() == [1, 0]


@FAST
@given(st.floats(min_value=1e-300, max_value=1e-8))
def test_a_tiny_top_p_keeps_the_most_likely_token(top_p):
    logits = torch.tensor([[0.1, 2.0, -1.0, 0.0, 0.5, 0.3]])
    kept = seq2seq.filter_logits(logits, top_p=top_p)
    assert torch.isfinite(kept).tolist() == [[False, True, False, False, False, False]]
    assert _sample(logits.expand(2, 6), top_p=top_p).tolist() == [1, 1]


@pytest.mark.parametrize("seed", [2**64, 2**70, -(2**63) - 1])
def test_seeds_outside_64_bits_are_refused_by_name(seed):
    with pytest.raises(ValueError, match=r"seed must lie in \[-2\*\*63, 2\*\*64\)"):
        seq2seq.SampleEmbeddingHelper(EMB, torch.tensor([0, 0]), 1, seed=seed)


def test_complex_temperature_is_refused():
    with pytest.raises(TypeError, match="softmax_temperature must be a number"):
        seq2seq.SampleEmbeddingHelper(EMB, torch.tensor([0]), 1, softmax_temperature=1 + 2j)


# -- silently accepted before -----------------------------------------------------------------

def test_beam_search_refuses_impute_finished():
    cell = _cell()
    dec = seq2seq.BeamSearchDecoder(cell, EMB, torch.tensor([0]), 1, cell.zero_state(1), 2,
                                    output_layer=nn.Linear(3, 6))
    with pytest.raises(ValueError, match=r"impute_finished=True: BeamSearchDecoder reorders "
                                         r"its hypotheses"):
        seq2seq.dynamic_decode(dec, maximum_iterations=4, impute_finished=True)


@FAST
@given(st.integers(min_value=-5, max_value=12))
def test_gather_tree_from_array_lengths_must_lie_within_the_time(length):
    t = torch.randn(4, 1, 2)
    parents = torch.zeros(4, 1, 2, dtype=torch.long)
    lengths = torch.tensor([[length, 1]])
    if 0 <= length <= 4:
        assert seq2seq.gather_tree_from_array(t, parents, lengths).shape == (4, 1, 2)
    else:
        with pytest.raises(ValueError, match=r"sequence_length values must lie in \[0, 4\]"):
            seq2seq.gather_tree_from_array(t, parents, lengths)


# -- legitimate input accepted ----------------------------------------------------------------

def test_empty_python_lists_for_batch_zero_are_integers():
    out, _ = rnn.dynamic_rnn(rnn.GRUCell(3, input_size=2), torch.randn(0, 4, 2),
                             sequence_length=[], dtype=torch.float32)
    assert out.shape == (0, 4, 3)
    helper = seq2seq.GreedyEmbeddingHelper(EMB, [], 1)
    assert helper.batch_size == 0


@pytest.mark.parametrize("flag", [np.bool_(True), np.bool_(False)])
def test_numpy_bools_are_switches(flag):
    cell, x = rnn.GRUCell(3, input_size=2, reset_after=True), torch.randn(2, 4, 2)
    out, _ = rnn.dynamic_rnn(cell, x, fused=flag)
    ref, _ = rnn.dynamic_rnn(cell, x, fused=bool(flag))
    assert out.shape == (2, 4, 3)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)  # the same path, the same values


# -- opaque before ----------------------------------------------------------------------------

def test_meta_tensors_flow_through_shapes_and_are_refused_where_values_are_read():
    """``meta`` tensors (shapes without data) run through the drivers as through torch's
    modules; lengths, whose values rnnkit reads, are refused naming them."""
    out, _ = rnn.dynamic_rnn(rnn.GRUCell(3), torch.randn(2, 4, 2, device="meta"),
                             dtype=torch.float32)
    assert out.shape == (2, 4, 3) and out.device.type == "meta"
    with pytest.raises(ValueError, match=r"sequence_length are on the meta device"):
        rnn.dynamic_rnn(rnn.GRUCell(3), torch.randn(2, 4, 2, device="meta"),
                        sequence_length=torch.tensor([4, 2], device="meta"), dtype=torch.float32)


def test_nan_temperature_like_values_never_reach_the_sampler():
    for value in (math.nan, math.inf, 0.0, -1.0):
        with pytest.raises(ValueError, match="softmax_temperature"):
            seq2seq.SampleEmbeddingHelper(EMB, torch.tensor([0]), 1, softmax_temperature=value)


# -- the TF variable loader -------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_tensor_kernels_of_any_float_dtype_load_exactly(dtype):
    from rnnkit import compat

    kernel = (torch.arange(7 * 16).reshape(7, 16) / 64).to(dtype)
    cell = rnn.BasicLSTMCell(4)
    compat.load_tf_variables(cell, {"basic_lstm_cell/kernel": kernel.requires_grad_(),
                                    "basic_lstm_cell/bias": torch.zeros(16)})
    got = compat.tf_variables_of(cell)["basic_lstm_cell/kernel"]
    np.testing.assert_array_equal(got, kernel.detach().float().numpy())


@pytest.mark.parametrize("value", [np.ones((7, 16), np.complex64), torch.ones(7, 16).bool()])
def test_complex_and_bool_kernels_are_refused_by_name(value):
    from rnnkit import compat

    with pytest.raises(TypeError, match=r"basic_lstm_cell/kernel has dtype .*real numbers"):
        compat.load_tf_variables(rnn.BasicLSTMCell(4), {"basic_lstm_cell/kernel": value,
                                                        "basic_lstm_cell/bias": np.zeros(16)})


# -- property tests for the legitimate-input and opaque classes ---------------------------------

@FAST
@given(st.integers(min_value=0, max_value=4), st.integers(min_value=1, max_value=3))
def test_python_lists_of_any_batch_size_are_ids_and_lengths(batch, time):
    lengths = [time] * batch
    out, _ = rnn.dynamic_rnn(rnn.GRUCell(3, input_size=2), torch.randn(batch, time, 2),
                             sequence_length=lengths, dtype=torch.float32)
    assert out.shape == (batch, time, 3)
    assert seq2seq.GreedyEmbeddingHelper(EMB, [1] * batch, 2).batch_size == batch


@FAST
@given(st.one_of(st.none(), st.integers(), st.floats(), st.binary(max_size=8),
                 st.lists(st.integers(), max_size=2)))
def test_anything_but_a_path_is_refused_by_the_checkpoint_reader_by_type(value):
    from rnnkit import compat

    with pytest.raises(TypeError, match="ckpt must be a checkpoint path"):
        compat.list_tf_variables(value)


@FAST
@given(st.lists(st.lists(st.booleans(), min_size=3, max_size=3), min_size=2, max_size=2))
def test_masks_as_nested_lists_or_numpy_bools_mean_the_same(rows):
    memory = torch.randn(2, 3, 4)
    a = seq2seq.LuongAttention(4, memory_depth=4)
    if not all(any(r) for r in rows):
        a.setup_memory(memory, memory_mask=rows)  # accepted; refused only when scored
        return
    b = seq2seq.LuongAttention(4, memory_depth=4)
    b.load_state_dict(a.state_dict())
    a.setup_memory(memory, memory_mask=rows)
    b.setup_memory(memory, memory_mask=np.array(rows))
    q = torch.randn(2, 4)
    torch.testing.assert_close(a(q, a.initial_state(2))[0], b(q, b.initial_state(2))[0])


def test_raw_rnn_emit_structure_with_a_batch_dimension_is_refused_not_broadcast():
    cell = _cell()

    def loop_fn(time, cell_output, cell_state, loop_state):
        state = cell.zero_state(2) if cell_output is None else cell_state
        emit = torch.zeros(2, 3) if cell_output is None else cell_output  # batch given
        return torch.tensor([time >= 2] * 2), torch.zeros(2, 2), state, emit, None

    with pytest.raises(ValueError, match=r"emit_output leaf 0 has shape \(2, 3\), but the emit "
                                         r"structure given at time 0 makes it \(2, 2, 3\)"):
        rnn.raw_rnn(cell, loop_fn)
