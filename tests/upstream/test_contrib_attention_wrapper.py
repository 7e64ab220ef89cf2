"""Port of TensorFlow r1.15 ``tensorflow/contrib/seq2seq/python/kernel_tests/
attention_wrapper_test.py`` (``AttentionWrapperTest``) to ``rnnkit.seq2seq``.

Upstream draws its inputs with numpy after ``TensorFlowTestCase.setUp`` seeded it with
``DEFAULT_GRAPH_SEED`` (87654321, replayed here) and its weights with TF's seeded
initialisers; ``tests/golden/make_upstream_contrib_attention_golden.py`` records those
weights (and the per-step sigmoid noise of the monotonic tests) with TF 2.15, plus the outputs
tensorflow-addons 0.23 computes from them, in ``tests/fixtures/upstream_contrib_attention.npz``.
Each decode test loads the weights, compares the summaries (shape, dtype, mean) with
upstream's hard-coded ones at upstream's ``atol=1e-3``, and the full tensors with the recorded
tensorflow-addons outputs.
"""

import functools

import numpy as np
import pytest
import torch
from conftest import load_fixture

from rnnkit import compat, rnn, seq2seq

SEED = 87654321  # tensorflow.python.framework.random_seed.DEFAULT_GRAPH_SEED
ENC_LENGTHS = [3, 2, 3, 1, 1]
DEC_LENGTHS = [2, 0, 1, 2, 3]
BATCH, ENC_TIME, DEC_TIME, INPUT_DEPTH, ENC_DEPTH, CELL_DEPTH = 5, 8, 4, 7, 10, 9


@pytest.fixture(scope="module")
def golden():
    return load_fixture("upstream_contrib_attention.npz")


def case_arrays(golden, case):
    prefix = case + "/"
    return {k[len(prefix):]: v for k, v in golden.items() if k.startswith(prefix)}


class RecordedNoise:
    """Stands in for a monotonic mechanism's noise generator: TF's ``random_normal(seed=3)``
    draws, one per decode step, as the golden script recorded them."""

    def __init__(self, draws):
        self.draws = [torch.from_numpy(d) for d in draws]
        self.step = 0

    def normal(self, like):
        draw = self.draws[self.step]
        self.step += 1
        assert draw.shape == like.shape
        return draw.to(like.dtype)

    def refuse_graphs(self, what):
        pass


def assert_summary(x, shape, dtype, mean):
    """Upstream's ``ResultSummary`` check: equal shape and dtype, mean within 1e-3."""
    assert tuple(x.shape) == shape
    assert x.dtype == dtype
    np.testing.assert_allclose(x.double().mean().item(), mean, atol=1e-3, rtol=1e-6)


def close(x, expected, atol=1e-6):
    np.testing.assert_allclose(x.detach().numpy(), expected, atol=atol, rtol=1e-5)


def run_decode(golden, case, creators, depths, layer_sizes, is_multi, alignment_history):
    """Upstream's ``_testWithMaybeMultiAttention``: a TrainingHelper decode of an
    AttentionWrapper over an LSTMCell(9); returns ``(outputs, state, recorded)``."""
    np.random.seed(SEED)  # TensorFlowTestCase.setUp
    decoder_inputs = np.random.randn(BATCH, DEC_TIME, INPUT_DEPTH).astype(np.float32)
    encoder_outputs = np.random.randn(BATCH, ENC_TIME, ENC_DEPTH).astype(np.float32)
    rec = case_arrays(golden, case)
    np.testing.assert_array_equal(decoder_inputs, rec["dec_inputs"])
    np.testing.assert_array_equal(encoder_outputs, rec["enc_outputs"])
    mechanisms = [creator(num_units=depth, memory=torch.from_numpy(encoder_outputs),
                          memory_sequence_length=ENC_LENGTHS)
                  for creator, depth in zip(creators, depths, strict=True)]
    cell = seq2seq.AttentionWrapper(
        rnn.LSTMCell(CELL_DEPTH), mechanisms if is_multi else mechanisms[0],
        attention_layer_size=layer_sizes if is_multi else layer_sizes[0],
        alignment_history=alignment_history)
    compat.load_tf_variables(cell, {k[4:]: v for k, v in rec.items() if k.startswith("var:")})
    if "noise:0" in rec:
        mechanisms[0]._noise = RecordedNoise([rec[f"noise:{t}"] for t in range(3)])
    helper = seq2seq.TrainingHelper(torch.from_numpy(decoder_inputs), DEC_LENGTHS)
    decoder = seq2seq.BasicDecoder(cell, helper,
                                   cell.zero_state(dtype=torch.float32, batch_size=BATCH))
    with torch.no_grad():
        outputs, state, _ = seq2seq.dynamic_decode(decoder)
    assert isinstance(outputs, seq2seq.BasicDecoderOutput)
    assert isinstance(state, seq2seq.AttentionWrapperState)
    assert isinstance(state.cell_state, rnn.LSTMStateTuple)
    return outputs, state, rec


# sample ids are int64 in rnnkit (README, differences), int32 in TF
IDS = torch.int64
F32 = torch.float32


def check(outputs, state, rec, expected, alignment_history):
    """``expected``: upstream's means as (rnn_output shape, rnn_output, sample_id, c, h,
    attention shape, attention, alignments [per mechanism], history [per mechanism])."""
    (out_shape, out_mean, ids_mean, c_mean, h_mean, att_shape, att_mean, align_means,
     history_means) = expected
    assert_summary(outputs.rnn_output, out_shape, F32, out_mean)
    assert_summary(outputs.sample_id, out_shape[:2], IDS, ids_mean)
    assert_summary(state.cell_state.c, (BATCH, CELL_DEPTH), F32, c_mean)
    assert_summary(state.cell_state.h, (BATCH, CELL_DEPTH), F32, h_mean)
    assert_summary(state.attention, att_shape, F32, att_mean)
    assert int(state.time) == 3
    multi = isinstance(state.alignments, tuple)
    alignments = state.alignments if multi else (state.alignments,)
    attention_states = state.attention_state if multi else (state.attention_state,)
    assert len(alignments) == len(align_means)
    for k, mean in enumerate(align_means):
        assert_summary(alignments[k], (BATCH, ENC_TIME), F32, mean)
        assert_summary(attention_states[k], (BATCH, ENC_TIME), F32, mean)
    # the same decode in tensorflow-addons 0.23 on the same weights
    close(outputs.rnn_output, rec["rnn_output"])
    np.testing.assert_array_equal(outputs.sample_id.numpy(), rec["sample_id"])
    close(state.cell_state.c, rec["c"])
    close(state.cell_state.h, rec["h"])
    close(state.attention, rec["attention"])
    for k, a in enumerate(alignments):
        close(a, rec[f"alignments:{k}"])
        close(attention_states[k], rec[f"attention_state:{k}"])
    if alignment_history:
        histories = state.alignment_history if multi else (state.alignment_history,)
        assert len(histories) == len(history_means)
        for k, mean in enumerate(history_means):
            stacked = histories[k].stack()  # time major, as TF's TensorArray
            assert_summary(stacked, (3, BATCH, ENC_TIME), F32, mean)
            close(stacked, rec[f"history:{k}"])
    else:
        assert state.alignment_history == ()


def test_attention_wrapper_state():
    """AttentionWrapperTest.testAttentionWrapperState"""
    num_fields = len(seq2seq.AttentionWrapperState._fields)
    state = seq2seq.AttentionWrapperState(*([None] * num_fields))
    new_state = state.clone(time=1)
    assert state.time is None
    assert new_state.time == 1


def single(golden, case, creator, expected, depth=3, alignment_history=False, layer_size=6):
    outputs, state, rec = run_decode(golden, case, [creator], [depth], [layer_size], False,
                                     alignment_history)
    check(outputs, state, rec, expected, alignment_history)


def test_bahdanau_not_normalized(golden):
    """AttentionWrapperTest.testBahdanauNotNormalized"""
    single(golden, "bahdanau_not_normalized", seq2seq.BahdanauAttention,
           ((5, 3, 6), -0.0052250605, 1.4, -0.0040092287, -0.0020015112, (5, 6),
            -0.0052052638, [0.125], [0.12500001]), alignment_history=True)


def test_bahdanau_normalized(golden):
    """AttentionWrapperTest.testBahdanauNormalized"""
    single(golden, "bahdanau_normalized",
           functools.partial(seq2seq.BahdanauAttention, normalize=True),
           ((5, 3, 6), -0.00597103, 1.6, -0.0040052128, -0.0019996136, (5, 6),
            -0.00595117, [0.125], []))


def test_luong_not_normalized(golden):
    """AttentionWrapperTest.testLuongNotNormalized"""
    single(golden, "luong_not_normalized", seq2seq.LuongAttention,
           ((5, 3, 6), -0.0052615386, 1.3333333333, -0.004009536, -0.0020016613, (5, 6),
            -0.0051812846, [0.125], []), depth=9)


def test_luong_scaled(golden):
    """AttentionWrapperTest.testLuongScaled"""
    single(golden, "luong_scaled", functools.partial(seq2seq.LuongAttention, scale=True),
           ((5, 3, 6), -0.0052615386, 1.3333333333333333, -0.004009536, -0.0020016613,
            (5, 6), -0.0051812846, [0.125], []), depth=9)


def test_not_use_attention_layer(golden):
    """AttentionWrapperTest.testNotUseAttentionLayer"""
    single(golden, "not_use_attention_layer", seq2seq.BahdanauAttention,
           ((5, 3, 10), 0.117389656, 4.5999999999999996, -0.0063607907, -0.00323448,
            (5, 10), 0.117389656, [0.125], []), layer_size=None)


def test_safe_cumprod():
    """AttentionWrapperTest.test_safe_cumprod"""
    np.random.seed(SEED)
    test_input = np.random.uniform(size=(10, 20))
    for axis in [0, 1]:
        for exclusive in [True, False]:
            # tf.cumprod(x, axis, exclusive) in numpy
            expected = np.cumprod(test_input, axis=axis)
            if exclusive:
                expected = np.cumprod(np.concatenate(
                    [np.ones_like(np.take(test_input, [0], axis)),
                     np.delete(test_input, -1, axis)], axis), axis=axis)
            got = seq2seq.safe_cumprod(torch.from_numpy(test_input), axis=axis,
                                       exclusive=exclusive).numpy()
            assert got.shape == expected.shape
            np.testing.assert_array_less(np.abs(got - expected), 0.5e-5)  # places=5


def monotonic_attention_explicit(p_choose_i, previous_attention):
    """The recurrence of monotonic attention followed step by step (upstream's reference)."""
    out = [previous_attention[0]]
    for j in range(1, p_choose_i.shape[0]):
        out.append((1 - p_choose_i[j - 1]) * out[j - 1] + previous_attention[j])
    return p_choose_i * np.array(out)


def sample(p_choose_i):
    """A sequence of emit / ingest decisions drawn from ``p_choose_i``."""
    output = np.zeros(p_choose_i.shape)
    t_im1 = 0
    for i in range(p_choose_i.shape[0]):
        for j in range(t_im1, p_choose_i.shape[1]):
            if np.random.uniform() <= p_choose_i[i, j]:
                output[i, j] = 1
                t_im1 = j
                break
        else:
            t_im1 = p_choose_i.shape[1]
    return output


def test_monotonic_attention():
    """AttentionWrapperTest.test_monotonic_attention"""
    np.random.seed(SEED)
    places5 = 0.5e-5

    def explicit(p, prev):
        return np.array([monotonic_attention_explicit(a, b) for a, b in zip(p, prev,
                                                                              strict=True)])

    p_choose_i = np.random.uniform(size=(10, 20)).astype(np.float32)
    previous_attention = np.random.uniform(size=(10, 20)).astype(np.float32)
    previous_attention /= previous_attention.sum(axis=1).reshape((-1, 1))
    expected = explicit(p_choose_i, previous_attention)
    got = seq2seq.monotonic_attention(torch.from_numpy(p_choose_i),
                                      torch.from_numpy(previous_attention), "recursive")
    assert got.shape == expected.shape
    np.testing.assert_array_less(np.abs(got.numpy() - expected), places5)

    # parallel is unstable when p_choose_i is close to 1
    p_choose_i = np.random.uniform(0, 0.9, size=(10, 20)).astype(np.float32)
    expected = explicit(p_choose_i, previous_attention)
    got = seq2seq.monotonic_attention(torch.from_numpy(p_choose_i),
                                      torch.from_numpy(previous_attention), "parallel")
    assert got.shape == expected.shape
    np.testing.assert_array_less(np.abs(got.numpy() - expected), places5)

    # hard mode: probabilities are 0 or 1
    p_choose_i = np.random.choice(np.array([0, 1], np.float32), (10, 20))
    previous_attention = np.zeros((10, 20), np.float32)
    random_idx = np.random.randint(0, previous_attention.shape[1], previous_attention.shape[0])
    previous_attention[np.arange(previous_attention.shape[0]), random_idx] = 1
    expected = explicit(p_choose_i, previous_attention)
    got = seq2seq.monotonic_attention(torch.from_numpy(p_choose_i),
                                      torch.from_numpy(previous_attention), "hard")
    assert got.shape == expected.shape
    np.testing.assert_array_less(np.abs(got.numpy() - expected), places5)

    # recursive attention against the average of sampled decisions
    p_choose_i = np.random.uniform(size=(4, 5)).astype(np.float32)
    sampled = np.mean([sample(p_choose_i) for _ in range(100000)], axis=0)
    recursive = [np.array([1] + [0] * (p_choose_i.shape[1] - 1), np.float32)]
    for j in range(p_choose_i.shape[0]):
        recursive.append(seq2seq.monotonic_attention(
            torch.from_numpy(p_choose_i[j][np.newaxis]),
            torch.from_numpy(recursive[-1][np.newaxis]), "recursive").numpy()[0])
    recursive = np.array(recursive[1:])
    assert recursive.shape == sampled.shape
    np.testing.assert_array_less(np.abs(recursive - sampled), 0.5e-2)  # places=2


def test_bahdanau_monotonic_not_normalized(golden):
    """AttentionWrapperTest.testBahdanauMonotonicNotNormalized"""
    single(golden, "bahdanau_monotonic_not_normalized",
           functools.partial(seq2seq.BahdanauMonotonicAttention, sigmoid_noise=1.0,
                             sigmoid_noise_seed=3),
           ((5, 3, 6), -0.002122893, 1.7333333333333334, -0.0040002423, -0.0019968653,
            (5, 6), -5.9313523e-05, [0.032228071], [0.050430927]), alignment_history=True)


def test_bahdanau_monotonic_normalized(golden):
    """AttentionWrapperTest.testBahdanauMonotonicNormalized"""
    single(golden, "bahdanau_monotonic_normalized",
           functools.partial(seq2seq.BahdanauMonotonicAttention, normalize=True,
                             sigmoid_noise=1.0, sigmoid_noise_seed=3),
           ((5, 3, 6), -0.0025896581, 1.6, -0.0040013152, -0.0019973689, (5, 6),
            -0.00069823361, [0.028698336], [0.04865776002407074]), alignment_history=True)


def check_hard(mechanism_cls):
    b, t, u, d = 10, 20, 30, 40
    a = mechanism_cls(d, torch.randn(b, t, u), mode="hard")
    # previous attention [1, 0, 0, ...]
    attn, _ = a(torch.randn(b, d), torch.nn.functional.one_hot(torch.zeros(b, dtype=torch.long),
                                                               t).float())
    attn = attn.detach().numpy()
    assert np.all(np.logical_or(attn == 0, attn == 1))
    # each distribution sums to 1, or to 0 when every p_choose_i is 0
    assert np.all(np.logical_or(attn.sum(axis=1) == 1, attn.sum(axis=1) == 0))


def test_bahdanau_monotonic_hard():
    """AttentionWrapperTest.testBahdanauMonotonicHard"""
    check_hard(seq2seq.BahdanauMonotonicAttention)


def test_luong_monotonic_not_normalized(golden):
    """AttentionWrapperTest.testLuongMonotonicNotNormalized"""
    single(golden, "luong_monotonic_not_normalized",
           functools.partial(seq2seq.LuongMonotonicAttention, sigmoid_noise=1.0,
                             sigmoid_noise_seed=3),
           ((5, 3, 6), -0.0021257224, 1.7333333333333334, -0.0040003359, -0.001996913,
            (5, 6), -5.2024145e-05, [0.032198936], [0.050387777]), depth=9,
           alignment_history=True)


def test_luong_monotonic_scaled(golden):
    """AttentionWrapperTest.testLuongMonotonicScaled"""
    single(golden, "luong_monotonic_scaled",
           functools.partial(seq2seq.LuongMonotonicAttention, scale=True, sigmoid_noise=1.0,
                             sigmoid_noise_seed=3),
           ((5, 3, 6), -0.0021257224, 1.7333333333333334, -0.0040003359, -0.001996913,
            (5, 6), -5.2024145e-05, [0.032198936], [0.050387777]), depth=9,
           alignment_history=True)


def test_multi_attention(golden):
    """AttentionWrapperTest.testMultiAttention"""
    outputs, state, rec = run_decode(
        golden, "multi_attention", [seq2seq.BahdanauAttention, seq2seq.LuongAttention],
        [9, 9], [3, 4], True, True)
    check(outputs, state, rec,
          ((5, 3, 7), 0.0011709079, 3.2000000000000002, -0.0038725811, -0.0019329828, (5, 7),
           0.001174294, [0.125, 0.125], [0.125, 0.125]), True)


def test_luong_monotonic_hard():
    """AttentionWrapperTest.testLuongMonotonicHard"""
    check_hard(seq2seq.LuongMonotonicAttention)


def test_multi_attention_no_attention_layer(golden):
    """AttentionWrapperTest.testMultiAttentionNoAttentionLayer"""
    outputs, state, rec = run_decode(
        golden, "multi_attention_no_attention_layer",
        [seq2seq.BahdanauAttention, seq2seq.LuongAttention], [9, 9], None, True, True)
    check(outputs, state, rec,
          ((5, 3, 20), 0.11798714846372604, 7.933333333333334, -0.0036486709, -0.0018835809,
           (5, 20), 0.11798714846372604, [0.125, 0.125], [0.125, 0.125]), True)


def test_single_attention_as_list(golden):
    """AttentionWrapperTest.testSingleAttentionAsList"""
    outputs, state, rec = run_decode(golden, "single_attention_as_list",
                                     [seq2seq.BahdanauAttention], [9], [3], True, True)
    check(outputs, state, rec,
          ((5, 3, 3), -0.0098485695, 1.8, -0.0040023471, -0.0019979973, (5, 3),
           -0.0098808752, [0.125], [0.125]), True)
