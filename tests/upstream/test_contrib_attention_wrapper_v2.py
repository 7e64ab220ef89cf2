"""Port of TensorFlow r1.15 ``tensorflow/contrib/seq2seq/python/kernel_tests/
attention_wrapper_v2_test.py`` (``AttentionMechanismTest``, ``AttentionWrapperV2Test``: the
Keras-style V2 mechanisms) to ``rnnkit.tfa.seq2seq``.

Inputs replay upstream's numpy draws after ``TensorFlowTestCase.setUp`` seeded numpy with
``DEFAULT_GRAPH_SEED`` (87654321).  The decode tests' kernels are ``"ones"`` except the
attention layers' ``glorot_uniform(seed=1337)``; the golden script
``tests/golden/make_upstream_contrib_attention_golden.py`` records them and the outputs of
tensorflow-addons 0.23 in ``tests/fixtures/upstream_contrib_attention_v2.npz``.

r1.15's V2 mechanisms never masked the scores past ``memory_sequence_length`` (fixed by
tensorflow-addons PR 133, "Fix AttentionMechanism masking": "the expected mean of most tests
was wrong").  The fixture holds the decode with that bug (``bug:*``) and without: upstream's
values equal the first.  Where upstream's value is the bug's (``BUGGED`` in each test), the
test compares rnnkit, which masks, with the tensorflow-addons 0.23 value instead, and checks
that upstream's value is the recorded bug's.
"""

import numpy as np
import pytest
import torch
from conftest import load_fixture

from rnnkit import compat, nest, rnn, seq2seq
from rnnkit import tfa as rnnkit_tfa
from rnnkit.layers import Dense

tfa = rnnkit_tfa.seq2seq
SEED = 87654321  # tensorflow.python.framework.random_seed.DEFAULT_GRAPH_SEED
MECHANISMS = {
    "luong": tfa.LuongAttention,
    "luong_monotonic": tfa.LuongMonotonicAttention,
    "bahdanau": tfa.BahdanauAttention,
    "bahdanau_monotonic": tfa.BahdanauMonotonicAttention,
}

# -- AttentionMechanismTest ------------------------------------------------------------------

@pytest.fixture
def mechanism_data():
    """AttentionMechanismTest.setUp"""
    np.random.seed(SEED)
    batch, timestep, memory_size, units = 10, 5, 6, 8
    memory = np.random.randn(batch, timestep, memory_size).astype(np.float32)
    query = np.random.randn(batch, units).astype(np.float32)
    state = np.random.randn(batch, timestep).astype(np.float32)
    return batch, timestep, units, memory, query, state


@pytest.mark.parametrize("name", sorted(MECHANISMS))
def test_attention_shape_inference(mechanism_data, name):
    """AttentionMechanismTest.test_attention_shape_inference"""
    batch, timestep, units, memory, query, state = mechanism_data
    attention = MECHANISMS[name](units, memory)
    attention_score = attention([query, state])
    assert len(attention_score) == 2
    assert tuple(attention_score[0].shape) == (batch, timestep)
    assert tuple(attention_score[1].shape) == (batch, timestep)


@pytest.mark.parametrize("name", sorted(MECHANISMS))
def test_layer_output(mechanism_data, name):
    """AttentionMechanismTest.test_layer_output"""
    batch, timestep, units, memory, query, state = mechanism_data
    attention = MECHANISMS[name](units, memory)
    score = attention([query, state])
    assert len(score) == 2
    for s in score:
        assert tuple(s.shape) == (batch, timestep)
        assert torch.isfinite(s).all()


@pytest.mark.parametrize("name", sorted(MECHANISMS))
def test_passing_memory_from_call(mechanism_data, name):
    """AttentionMechanismTest.test_passing_memory_from_call (Keras' get_config / from_config
    and get_weights / set_weights become a second mechanism made with the same arguments
    and ``load_state_dict``)"""
    _, _, units, memory, query, state = mechanism_data
    attention = MECHANISMS[name](units, memory)
    ref_score = attention([query, state])
    again = MECHANISMS[name](units, memory_depth=memory.shape[-1])
    again(memory, setup_memory=True)
    again([query, state])  # size the query layer
    again.load_state_dict(attention.state_dict())
    score = again([query, state])
    for a, b in zip(ref_score, score, strict=True):
        np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-6,
                                   atol=1e-6)


# -- AttentionWrapperV2Test ------------------------------------------------------------------

def wrapper_setup():
    """AttentionWrapperV2Test.setUp: its arrays, in upstream's draw order."""
    np.random.seed(SEED)
    encoder_outputs = np.random.randn(64, 10, 256)
    encoder_sequence_length = np.random.randint(10, size=(64,)).astype(np.int32)
    decoder_inputs = np.random.randn(64, 12, 128)
    decoder_sequence_length = np.random.randint(12, size=(64,)).astype(np.int32)
    return encoder_outputs, encoder_sequence_length, decoder_inputs, decoder_sequence_length


@pytest.fixture(scope="module")
def golden():
    return load_fixture("upstream_contrib_attention_v2.npz")


def check_dtype(mechanism_cls, dtype, **kwargs):
    encoder_outputs, encoder_sequence_length, decoder_inputs, decoder_sequence_length = \
        wrapper_setup()
    # upstream's lengths include 0, which r1.15's V2 mechanisms accepted only because they
    # ignored memory_sequence_length (the PR 133 bug); TF 1.x's V1 mechanisms and tfa 0.23
    # assert lengths > 0 and so does rnnkit.  tfa's port of this test draws them from 1.
    assert (encoder_sequence_length == 0).any()
    encoder_sequence_length = np.maximum(encoder_sequence_length, 1)
    torch_dtype = {np.float32: torch.float32, np.float64: torch.float64}[dtype]
    attention_mechanism = mechanism_cls(
        units=128, memory=encoder_outputs.astype(dtype),
        memory_sequence_length=encoder_sequence_length, dtype=dtype, **kwargs)
    cell = rnn.LSTMCell(128)  # keras.layers.LSTMCell(128, recurrent_activation="sigmoid")
    cell = tfa.AttentionWrapper(cell, attention_mechanism)
    my_decoder = tfa.BasicDecoder(cell=cell, sampler=tfa.TrainingSampler())
    final_outputs, final_state, _ = my_decoder(
        decoder_inputs.astype(dtype),
        initial_state=cell.zero_state(dtype=torch_dtype, batch_size=64),
        sequence_length=decoder_sequence_length)
    assert isinstance(final_outputs, seq2seq.BasicDecoderOutput)
    assert final_outputs.rnn_output.dtype == torch_dtype
    # the Keras-style wrapper is tensorflow-addons' now: its state has tfa's five fields
    # (r1.15's sixth, `time`, is gone)
    assert isinstance(final_state, tfa.AttentionWrapperState)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bahdanau_normalized_d_type(dtype):
    """AttentionWrapperV2Test.testBahdanauNormalizedDType"""
    check_dtype(tfa.BahdanauAttention, dtype, normalize=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_luong_scaled_d_type(dtype):
    """AttentionWrapperV2Test.testLuongScaledDType"""
    check_dtype(tfa.LuongAttention, dtype, scale=True)


ENC_LENGTHS = [3, 2, 3, 1, 1]
DEC_LENGTHS = [2, 0, 1, 2, 3]
BATCH, ENC_TIME, CELL_DEPTH, ENC_DEPTH = 5, 8, 9, 10


def assert_mean(x, mean):
    np.testing.assert_allclose(float(np.mean(x)), mean, atol=1e-3, rtol=1e-6)


def tf_variables(rec, mechanism):
    """The recorded variables, the mechanism's scope renamed to its tfa layer name
    (``LuongAttention``: rnnkit.tfa's mechanisms take tfa's names as their TF scope; the
    fixture uses TF 1.x's ``luong_attention``)."""
    out = {}
    for key, value in rec.items():
        if key.startswith("var:"):
            parts = key[4:].split("/")
            if parts[1] != "lstm_cell" and not parts[1].startswith("attention_layer"):
                parts[1] = mechanism.tf_name
            out["/".join(parts)] = value
    return out


def run_wrapper(golden, case, creator, expected, bugged, depth=3, alignment_history=False,
                attention_layer_size=6, create_query_layer=False, **kwargs):
    """Upstream's ``_testWithAttention``; ``expected`` holds upstream's means as
    ``{field: mean}`` (``cell_state`` as Keras' ``[h, c]``), ``bugged`` the fields whose
    upstream value is r1.15's masking bug's."""
    rec = {k[len(case) + 1:]: v for k, v in golden.items() if k.startswith(case + "/")}
    wrapper_setup()  # upstream's setUp draws come first
    decoder_inputs = np.random.randn(BATCH, 4, 7).astype(np.float32)
    encoder_outputs = np.random.randn(BATCH, ENC_TIME, ENC_DEPTH).astype(np.float32)
    np.testing.assert_array_equal(decoder_inputs, rec["dec_inputs"])
    np.testing.assert_array_equal(encoder_outputs, rec["enc_outputs"])
    if create_query_layer:
        kwargs["query_layer"] = Dense(depth, kernel_initializer="ones", use_bias=False)
    kwargs["memory_layer"] = Dense(depth, kernel_initializer="ones", use_bias=False)
    mechanism = creator(units=depth, memory=encoder_outputs,
                        memory_sequence_length=ENC_LENGTHS, **kwargs)
    # keras.layers.LSTMCell(9, recurrent_activation="sigmoid", kernel_initializer="ones",
    # recurrent_initializer="ones"): rnnkit's cells are TF 1.x's; the recorded kernels
    # (ones, and glorot_uniform(seed=1337) for the attention layer) are loaded below
    cell = tfa.AttentionWrapper(rnn.LSTMCell(CELL_DEPTH), mechanism,
                                attention_layer_size=attention_layer_size,
                                alignment_history=alignment_history)
    compat.load_tf_variables(cell, tf_variables(rec, mechanism))
    my_decoder = tfa.BasicDecoder(cell=cell, sampler=tfa.TrainingSampler())
    initial_state = cell.get_initial_state(dtype=torch.float32, batch_size=BATCH)
    with torch.no_grad():
        final_outputs, final_state, _ = my_decoder(
            decoder_inputs, initial_state=initial_state, sequence_length=DEC_LENGTHS)
    assert isinstance(final_outputs, seq2seq.BasicDecoderOutput)
    # the Keras-style wrapper is tensorflow-addons' now: its state has tfa's five fields
    # (r1.15's sixth, `time`, is gone)
    assert isinstance(final_state, tfa.AttentionWrapperState)
    attention_depth = attention_layer_size or ENC_DEPTH
    assert tuple(final_outputs.rnn_output.shape) == (BATCH, 3, attention_depth)
    assert tuple(final_outputs.sample_id.shape) == (BATCH, 3)
    assert tuple(final_state.attention.shape) == (BATCH, attention_depth)
    # Keras' LSTM state is [h, c]; rnnkit's TF 1.x LSTMStateTuple(c, h)
    h, c = final_state.cell_state.h, final_state.cell_state.c
    assert tuple(h.shape) == tuple(c.shape) == (BATCH, CELL_DEPTH)
    got = {"rnn_output": final_outputs.rnn_output, "sample_id": final_outputs.sample_id,
           "h": h, "c": c, "attention": final_state.attention,
           "alignments": final_state.alignments, "attention_state": final_state.attention_state}
    if alignment_history:
        history = final_state.alignment_history.stack()
        assert tuple(history.shape) == (3, BATCH, ENC_TIME)
        nest.assert_same_structure(cell.state_size, cell.zero_state(BATCH, torch.float32))
        got["history"] = history
    assert final_state._fields == ("cell_state", "attention", "alignments",
                                   "alignment_history", "attention_state")
    # sample ids are int64 in rnnkit (README, differences), int32 in TF
    assert final_outputs.sample_id.dtype == torch.int64
    recorded = {"rnn_output": rec["rnn_output"], "sample_id": rec["sample_id"],
                "h": rec["h"], "c": rec["c"], "attention": rec["attention"],
                "alignments": rec["alignments:0"], "attention_state": rec["attention_state:0"],
                "history": rec.get("history:0")}
    for field, mean in expected.items():
        value = got[field].detach().numpy()
        if field in bugged:
            bug = rec["bug:" + {"alignments": "alignments:0",
                                "attention_state": "attention_state:0",
                                "history": "history:0"}.get(field, field)]
            assert_mean(bug, mean)  # upstream's value is the bug's ...
            assert abs(float(np.mean(recorded[field])) - mean) > 1e-3  # ... not tfa's
            assert_mean(value, float(np.mean(recorded[field])))
        else:
            assert_mean(value, mean)
    for field, value in got.items():  # the same decode in tensorflow-addons 0.23
        if field == "sample_id":
            np.testing.assert_array_equal(value.numpy(), recorded[field])
        else:
            np.testing.assert_allclose(value.detach().numpy(), recorded[field], atol=1e-5,
                                       rtol=1e-5)


# the fields whose upstream value is the bug's: with softmax the outputs and the cell state
# (not the alignments' mean, 1/8 either way), with monotonic attention the alignments
ALL = ("rnn_output", "sample_id", "h", "c", "attention")
NOT_IDS = ("rnn_output", "h", "c", "attention")  # the same sample ids with and without it
ALIGN = ("alignments", "attention_state", "history")


def test_bahdanau_not_normalized(golden):
    """AttentionWrapperV2Test.testBahdanauNotNormalized"""
    run_wrapper(golden, "bahdanau_not_normalized", tfa.BahdanauAttention,
                {"rnn_output": 0.051747426, "sample_id": 3.33333333, "h": 0.44189346,
                 "c": 0.65429491, "attention": 0.073610783, "alignments": 0.125,
                 "attention_state": 0.125, "history": 0.125}, ALL,
                alignment_history=True, create_query_layer=True, kernel_initializer="ones")


def test_bahdanau_normalized(golden):
    """AttentionWrapperV2Test.testBahdanauNormalized"""
    run_wrapper(golden, "bahdanau_normalized", tfa.BahdanauAttention,
                {"rnn_output": 0.047594748, "sample_id": 3.6, "h": 0.41311637,
                 "c": 0.61683208, "attention": 0.090581432, "alignments": 0.125,
                 "attention_state": 0.125}, NOT_IDS,
                create_query_layer=True, kernel_initializer="ones", normalize=True)


def test_luong_not_normalized(golden):
    """AttentionWrapperV2Test.testLuongNotNormalized"""
    run_wrapper(golden, "luong_not_normalized", tfa.LuongAttention,
                {"rnn_output": 0.05481226, "sample_id": 3.13333333, "h": 0.38453412,
                 "c": 0.5785929, "attention": 0.16311775, "alignments": 0.125,
                 "attention_state": 0.125}, ALL, depth=9)


def test_luong_scaled(golden):
    """AttentionWrapperV2Test.testLuongScaled"""
    run_wrapper(golden, "luong_scaled", tfa.LuongAttention,
                {"rnn_output": 0.05481226, "sample_id": 3.13333333, "h": 0.38453412,
                 "c": 0.5785929, "attention": 0.16311775, "alignments": 0.125,
                 "attention_state": 0.125}, ALL, depth=9, scale=True)


def test_not_use_attention_layer(golden):
    """AttentionWrapperV2Test.testNotUseAttentionLayer"""
    run_wrapper(golden, "not_use_attention_layer", tfa.BahdanauAttention,
                {"rnn_output": 0.072406612, "sample_id": 3.86666666, "h": 0.61177742,
                 "c": 1.032002, "attention": 0.011346335, "alignments": 0.125,
                 "attention_state": 0.125}, NOT_IDS,
                attention_layer_size=None, create_query_layer=True, kernel_initializer="ones")


def test_bahdanau_monotonic_not_normalized(golden):
    """AttentionWrapperV2Test.testBahdanauMonotonicNotNormalized"""
    run_wrapper(golden, "bahdanau_monotonic_not_normalized", tfa.BahdanauMonotonicAttention,
                {"rnn_output": 0.041342419, "sample_id": 3.53333333, "h": 0.33866978,
                 "c": 0.46913195, "attention": 0.092498459, "alignments": 0.12079944,
                 "attention_state": 0.12079944, "history": 0.121448785067}, ALIGN,
                alignment_history=True, create_query_layer=True, kernel_initializer="ones")


def test_bahdanau_monotonic_normalized(golden):
    """AttentionWrapperV2Test.testBahdanauMonotonicNormalized"""
    run_wrapper(golden, "bahdanau_monotonic_normalized", tfa.BahdanauMonotonicAttention,
                {"rnn_output": 0.043294173, "sample_id": 3.53333333, "h": 0.40034312,
                 "c": 0.5925445, "attention": 0.096119694, "alignments": 0.1211452,
                 "attention_state": 0.1211452, "history": 0.12258384}, ALIGN,
                alignment_history=True, create_query_layer=True, kernel_initializer="ones",
                normalize=True)


def test_luong_monotonic_not_normalized(golden):
    """AttentionWrapperV2Test.testLuongMonotonicNotNormalized"""
    run_wrapper(golden, "luong_monotonic_not_normalized", tfa.LuongMonotonicAttention,
                {"rnn_output": 0.027387079, "sample_id": 3.133333333, "h": 0.32660431,
                 "c": 0.52464348, "attention": 0.089345723, "alignments": 0.11831035,
                 "attention_state": 0.11831035, "history": 0.12194442004}, ALIGN,
                depth=9, alignment_history=True)


def test_luong_monotonic_scaled(golden):
    """AttentionWrapperV2Test.testLuongMonotonicScaled"""
    run_wrapper(golden, "luong_monotonic_scaled", tfa.LuongMonotonicAttention,
                {"rnn_output": 0.027387079, "sample_id": 3.133333333, "h": 0.32660431,
                 "c": 0.52464348, "attention": 0.089345723, "alignments": 0.11831035,
                 "attention_state": 0.11831035, "history": 0.12194442004}, ALIGN,
                depth=9, alignment_history=True, scale=True)
