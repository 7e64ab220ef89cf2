"""Port of tensorflow-addons 0.23
``tensorflow_addons/seq2seq/tests/attention_wrapper_test.py`` against ``rnnkit.tfa.seq2seq``.

Keras's ``LSTMCell`` / ``GRUCell`` are ``rnnkit.rnn.LSTMCell`` / ``GRUCell(reset_after=True)``
(an LSTM state is ``LSTMStateTuple(c, h)`` where Keras has ``[h, c]``), Keras's ``Dense`` is
``rnnkit.layers.Dense`` and Keras's ``RNN`` layer is ``rnnkit.rnn.dynamic_rnn``.  Ids are
int64 (README's differences).  The ``_test_with_attention`` cases load the one seeded random
weight (the attention layer's kernel) recorded by ``tests/golden/make_upstream_tfa_golden.py``
and compare with upstream's hard-coded means (upstream's ``atol=1e-3``) and with the
recorded tfa outputs.
"""

import numpy as np
import pytest
import torch
from conftest import load_fixture

from rnnkit import nest, rnn, tfa
from rnnkit.layers import Dense

wrapper = tfa.seq2seq
basic_decoder = tfa.seq2seq
sampler_py = tfa.seq2seq.sampler


class DummyData:
    def __init__(self):
        self.batch, self.timestep, self.memory_size, self.units = 10, 5, 6, 8
        self.memory = np.random.randn(self.batch, self.timestep,
                                      self.memory_size).astype(np.float32)
        self.memory_length = np.random.randint(low=1, high=self.timestep + 1,
                                               size=(self.batch,))
        self.query = np.random.randn(self.batch, self.units).astype(np.float32)
        self.state = np.random.randn(self.batch, self.timestep).astype(np.float32)


attention_classes = [wrapper.LuongAttention, wrapper.LuongMonotonicAttention,
                     wrapper.BahdanauAttention, wrapper.BahdanauMonotonicAttention]
attention_ids = ["Luong", "LuongMonotonic", "Bahdanau", "BahdanauMonotonic"]


def _t(x):
    return torch.as_tensor(x)


@pytest.mark.parametrize("attention_cls", attention_classes, ids=attention_ids)
def test_attention_shape_inference(attention_cls):
    """attention_wrapper_test.test_attention_shape_inference"""
    dummy_data = DummyData()
    attention = attention_cls(dummy_data.units, dummy_data.memory)
    attention_score = attention([_t(dummy_data.query), _t(dummy_data.state)])
    assert len(attention_score) == 2
    assert attention_score[0].shape == (dummy_data.batch, dummy_data.timestep)
    assert attention_score[1].shape == (dummy_data.batch, dummy_data.timestep)


@pytest.mark.parametrize("attention_cls", attention_classes, ids=attention_ids)
def test_layer_output(attention_cls):
    """attention_wrapper_test.test_layer_output"""
    dummy_data = DummyData()
    attention = attention_cls(dummy_data.units, dummy_data.memory)
    score = attention([_t(dummy_data.query), _t(dummy_data.state)])
    assert len(score) == 2
    assert score[0].shape == (dummy_data.batch, dummy_data.timestep)
    assert score[1].shape == (dummy_data.batch, dummy_data.timestep)


@pytest.mark.parametrize("attention_cls", attention_classes, ids=attention_ids)
def test_passing_memory_from_call(attention_cls):
    """attention_wrapper_test.test_passing_memory_from_call: a second mechanism given the
    first one's weights and its memory through the Keras call (``setup_memory=True``)
    scores the same (Keras's ``get_config`` / ``set_weights`` are a new mechanism and
    ``load_state_dict`` here)."""
    dummy_data = DummyData()
    attention = attention_cls(dummy_data.units, dummy_data.memory)
    query, state = _t(dummy_data.query), _t(dummy_data.state)
    ref_score = attention([query, state])
    attention_from_config = attention_cls(dummy_data.units)
    attention_from_config(_t(dummy_data.memory), setup_memory=True)
    attention_from_config([query, state])  # built for the query (Keras's build)
    attention_from_config.load_state_dict(attention.state_dict())
    score = attention_from_config([query, state])
    for want, got in zip(ref_score, score, strict=True):
        np.testing.assert_allclose(want.detach().numpy(), got.detach().numpy())


@pytest.mark.parametrize("attention_cls", attention_classes, ids=attention_ids)
def test_manual_memory_reset(attention_cls):
    """attention_wrapper_test.test_manual_memory_reset"""
    dummy_data = DummyData()
    attention = attention_cls(dummy_data.units)

    def _compute_score(batch_size):
        memory = dummy_data.memory[:batch_size]
        attention.setup_memory(memory,
                               memory_sequence_length=dummy_data.memory_length[:batch_size])
        assert list(attention.values.shape) == list(memory.shape)
        assert list(attention.keys.shape) == list(memory.shape)[:-1] + [dummy_data.units]
        return attention([_t(dummy_data.query[:batch_size]),
                          _t(dummy_data.state[:batch_size])])

    _compute_score(batch_size=dummy_data.batch)
    variables = list(attention.parameters())
    _compute_score(batch_size=dummy_data.batch - 1)
    after = list(attention.parameters())
    assert len(after) == len(variables)  # no new variables were created
    for var_1, var_2 in zip(variables, after, strict=True):
        assert var_1 is var_2


def test_masking():
    """attention_wrapper_test.test_masking"""
    memory = torch.ones(4, 4, 5)
    memory_sequence_length = torch.tensor([1, 2, 3, 4], dtype=torch.int32)
    query = torch.ones(4, 5)
    attention = wrapper.LuongAttention(5, memory, memory_sequence_length)
    alignment, _ = attention([query, None])
    assert np.sum(np.triu(alignment.detach().numpy(), k=1)) == 0


@pytest.mark.parametrize("attention_cls", attention_classes, ids=attention_ids)
def test_memory_re_setup(attention_cls):
    """attention_wrapper_test.test_memory_re_setup: a model that binds its encoder's output
    as memory (with the embedding's mask) twice per call, then scores, trains and predicts
    (Keras's ``fit`` is a plain training loop here; upstream checks that it runs).  The
    encoder runs over every step: Keras's masked LSTM skipping steps is not rnnkit's."""

    class MyModel(torch.nn.Module):
        def __init__(self, vocab, embedding_dim, memory_size, units):
            super().__init__()
            self.emb = torch.nn.Embedding(vocab, embedding_dim)
            self.encoder = rnn.LSTMCell(memory_size)
            self.attn_mch = attention_cls(units)

        def forward(self, enc_input, query, state):
            mask = enc_input != 0  # Keras's Embedding(mask_zero=True)
            enc_output, _ = rnn.dynamic_rnn(self.encoder, self.emb(enc_input),
                                            dtype=torch.float32)
            self.attn_mch(enc_output, mask=mask, setup_memory=True)
            self.attn_mch(enc_output, mask=mask, setup_memory=True)
            return self.attn_mch([query, state])

    vocab, embedding_dim, num_batches = 20, 6, 5
    dummy_data = DummyData()
    model = MyModel(vocab, embedding_dim, dummy_data.memory_size, dummy_data.units)
    x = np.random.randint(vocab, size=(num_batches * dummy_data.batch, dummy_data.timestep))
    x_test = np.random.randint(vocab, size=(num_batches * dummy_data.batch,
                                            dummy_data.timestep))
    y = np.random.randn(num_batches * dummy_data.batch, dummy_data.timestep)
    query = np.tile(dummy_data.query, [num_batches, 1])
    state = np.tile(dummy_data.state, [num_batches, 1])
    model(_t(x[: dummy_data.batch]), _t(query[: dummy_data.batch]),
          _t(state[: dummy_data.batch]))  # built (Keras builds at the first batch)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=0.001)
    for b in range(num_batches):
        rows = slice(b * dummy_data.batch, (b + 1) * dummy_data.batch)
        target = torch.tensor(y[rows], dtype=torch.float32)
        outputs = model(_t(x[rows]), _t(query[rows]), _t(state[rows]))
        loss = sum(torch.mean((o - target) ** 2) for o in outputs)  # "mse" on (y, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        assert torch.isfinite(loss)
    with torch.no_grad():
        predicted = model(_t(x_test), _t(query), _t(state))
    assert all(torch.isfinite(p).all() for p in predicted)


class DummyData2:
    def __init__(self):
        self.batch, self.units, self.encoder_timestep = 64, 128, 10
        self.encoder_dim, self.decoder_timestep = 256, 12
        self.encoder_outputs = np.random.randn(self.batch, self.encoder_timestep,
                                               self.encoder_dim)
        self.encoder_sequence_length = np.random.randint(
            1, high=self.encoder_timestep, size=(self.batch,)).astype(np.int32)
        self.decoder_inputs = np.random.randn(self.batch, self.decoder_timestep, self.units)
        self.decoder_sequence_length = np.random.randint(
            self.decoder_timestep, size=(self.batch,)).astype(np.int32)


def test_custom_attention_layer():
    """attention_wrapper_test.test_custom_attention_layer"""
    dummy_data = DummyData2()
    attention_mechanism = wrapper.LuongAttention(dummy_data.units)
    cell = rnn.LSTMCell(dummy_data.units)
    attention_layer = Dense(dummy_data.units * 2, use_bias=False, activation=torch.tanh)
    attention_wrapper = wrapper.AttentionWrapper(cell, attention_mechanism,
                                                 attention_layer=attention_layer)
    with pytest.raises(ValueError):  # the mechanism has no memory yet
        attention_wrapper.get_initial_state(batch_size=dummy_data.batch, dtype=torch.float32)
    attention_mechanism.setup_memory(
        dummy_data.encoder_outputs.astype(np.float32),
        memory_sequence_length=dummy_data.encoder_sequence_length)
    initial_state = attention_wrapper.get_initial_state(batch_size=dummy_data.batch,
                                                        dtype=torch.float32)
    assert initial_state.attention.shape[-1] == dummy_data.units * 2
    first_input = torch.tensor(dummy_data.decoder_inputs[:, 0].astype(np.float32))
    output, _ = attention_wrapper(first_input, initial_state)
    assert output.shape[-1] == dummy_data.units * 2


def _dtype_case(dtype, make_mechanism):
    dummy_data = DummyData2()
    encoder_outputs = torch.tensor(dummy_data.encoder_outputs, dtype=dtype)
    decoder_inputs = torch.tensor(dummy_data.decoder_inputs, dtype=dtype)
    attention_mechanism = make_mechanism(dummy_data, encoder_outputs)
    cell = rnn.LSTMCell(dummy_data.units, dtype=dtype)
    cell = wrapper.AttentionWrapper(cell, attention_mechanism, dtype=dtype)
    my_decoder = basic_decoder.BasicDecoder(cell=cell, sampler=sampler_py.TrainingSampler(),
                                            dtype=dtype)
    final_outputs, final_state, _ = my_decoder(
        decoder_inputs,
        initial_state=cell.get_initial_state(batch_size=dummy_data.batch, dtype=dtype),
        sequence_length=dummy_data.decoder_sequence_length)
    assert isinstance(final_outputs, basic_decoder.BasicDecoderOutput)
    assert final_outputs.rnn_output.dtype == dtype
    assert isinstance(final_state, wrapper.AttentionWrapperState)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bahdanau_normalized_dtype(dtype):
    """attention_wrapper_test.test_bahdanau_normalized_dtype (torch dtypes for numpy's)"""
    _dtype_case(dtype, lambda d, memory: wrapper.BahdanauAttention(
        units=d.units, memory=memory, memory_sequence_length=d.encoder_sequence_length,
        normalize=True, dtype=dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_luong_scaled_dtype(dtype):
    """attention_wrapper_test.test_luong_scaled_dtype (torch dtypes for numpy's)"""
    _dtype_case(dtype, lambda d, memory: wrapper.LuongAttention(
        units=d.units, memory=memory, memory_sequence_length=d.encoder_sequence_length,
        scale=True, dtype=dtype))


# -- _test_with_attention --------------------------------------------------------------------

GOLDEN = load_fixture("upstream_tfa_attention_wrapper.npz")


def set_random_state_for_tf_and_np():
    """upstream's: numpy seeded, then DummyData2's draws (TF's seed only shapes the
    attention layer's kernel, loaded from the fixture)."""
    np.random.seed(87654321)
    DummyData2()


def _test_with_attention(case, create_attention_mechanism, expected, attention_mechanism_depth=3,
                         alignment_history=False, attention_layer_size=6,
                         create_query_layer=False, create_attention_kwargs=None):
    """upstream's _test_with_attention; ``expected``: upstream's means, by field (cell
    state as Keras orders it: ``[h, c]``)."""
    encoder_sequence_length = [3, 2, 3, 1, 1]
    decoder_sequence_length = [2, 0, 1, 2, 3]
    batch_size, encoder_max_time, input_depth = 5, 8, 7
    encoder_output_depth, cell_depth, decoder_max_time = 10, 9, 4
    create_attention_kwargs = dict(create_attention_kwargs or {})
    attention_depth = attention_layer_size or encoder_output_depth
    decoder_inputs = np.random.randn(batch_size, decoder_max_time, input_depth).astype(np.float32)
    encoder_outputs = np.random.randn(batch_size, encoder_max_time,
                                      encoder_output_depth).astype(np.float32)
    golden = {k.split(":", 1)[1]: v for k, v in GOLDEN.items() if k.startswith(case + ":")}
    np.testing.assert_array_equal(decoder_inputs, golden["decoder_inputs"])  # same stream
    np.testing.assert_array_equal(encoder_outputs, golden["encoder_outputs"])
    depth = attention_mechanism_depth
    if create_query_layer:  # deterministic layers, as upstream
        create_attention_kwargs["query_layer"] = Dense(depth, kernel_initializer="ones",
                                                       use_bias=False)
    create_attention_kwargs["memory_layer"] = Dense(depth, kernel_initializer="ones",
                                                    use_bias=False)
    mechanism = create_attention_mechanism(units=depth, memory=encoder_outputs,
                                           memory_sequence_length=encoder_sequence_length,
                                           **create_attention_kwargs)
    # Keras LSTMCell(kernel_initializer="ones", recurrent_initializer="ones"), zero bias
    # with unit_forget_bias: TF's fused [input + state] kernel of ones, forget_bias=1
    cell = rnn.LSTMCell(cell_depth, initializer="ones", forget_bias=1.0)
    cell = wrapper.AttentionWrapper(cell, mechanism, attention_layer_size=attention_layer_size,
                                    alignment_history=alignment_history)
    if attention_layer_size is not None:  # upstream's glorot_uniform(seed=1337) kernel
        layer = cell.attention_layers[0]
        with torch.no_grad():
            layer.weight.copy_(torch.tensor(golden["attention_layer_kernel"].T))
    my_decoder = basic_decoder.BasicDecoder(cell=cell, sampler=sampler_py.TrainingSampler())
    initial_state = cell.get_initial_state(batch_size=batch_size, dtype=torch.float32)
    final_outputs, final_state, _ = my_decoder(
        torch.tensor(decoder_inputs), initial_state=initial_state,
        sequence_length=decoder_sequence_length)
    assert isinstance(final_outputs, basic_decoder.BasicDecoderOutput)
    assert isinstance(final_state, wrapper.AttentionWrapperState)
    # upstream's expected state has tfa's five fields
    assert type(final_state) is type(wrapper.AttentionWrapperState(
        cell_state=final_state.cell_state, attention=final_state.attention,
        alignments=final_state.alignments, attention_state=final_state.attention_state,
        alignment_history=()))
    expected_time = max(decoder_sequence_length)
    assert (batch_size, expected_time, attention_depth) == tuple(final_outputs.rnn_output.shape)
    assert (batch_size, expected_time) == tuple(final_outputs.sample_id.shape)
    assert (batch_size, attention_depth) == tuple(final_state.attention.shape)
    assert (batch_size, cell_depth) == tuple(final_state.cell_state.h.shape)
    assert (batch_size, cell_depth) == tuple(final_state.cell_state.c.shape)
    got = {
        "rnn_output": final_outputs.rnn_output, "sample_id": final_outputs.sample_id,
        "cell_state_h": final_state.cell_state.h, "cell_state_c": final_state.cell_state.c,
        "attention": final_state.attention, "alignments": final_state.alignments,
        "attention_state": final_state.attention_state,
    }
    if alignment_history:
        got["alignment_history"] = final_state.alignment_history.stack()
        assert (expected_time, batch_size, encoder_max_time) == tuple(
            got["alignment_history"].shape)
        nest.assert_same_structure(
            cell.state_size, cell.get_initial_state(batch_size=batch_size, dtype=torch.float32))
    else:
        assert final_state.alignment_history == ()
    for field, (shape, mean) in expected.items():
        value = got[field].detach().numpy()
        assert value.shape == shape, field
        assert value.dtype == (np.int64 if field == "sample_id" else np.float32), field
        np.testing.assert_allclose(value.mean(), mean, atol=1e-3, err_msg=field)
        # and tfa's own outputs, element by element
        np.testing.assert_allclose(value, golden[field], rtol=1e-5, atol=1e-6, err_msg=field)


def test_bahdanau_not_normalized():
    """attention_wrapper_test.test_bahdanau_not_normalized (the float32 policy)"""
    set_random_state_for_tf_and_np()
    _test_with_attention(
        "bahdanau_not_normalized", wrapper.BahdanauAttention, {
            "rnn_output": ((5, 3, 6), -0.003204414), "sample_id": ((5, 3), 3.2),
            "cell_state_h": ((5, 9), 0.40868404), "cell_state_c": ((5, 9), 0.89017969),
            "attention": ((5, 6), 0.041453815), "alignments": ((5, 8), 0.125),
            "attention_state": ((5, 8), 0.125), "alignment_history": ((3, 5, 8), 0.125)},
        alignment_history=True, create_query_layer=True,
        create_attention_kwargs={"kernel_initializer": "ones"})


def test_bahdanau_normalized():
    """attention_wrapper_test.test_bahdanau_normalized"""
    set_random_state_for_tf_and_np()
    _test_with_attention(
        "bahdanau_normalized", wrapper.BahdanauAttention, {
            "rnn_output": ((5, 3, 6), -0.008089137), "sample_id": ((5, 3), 2.8),
            "cell_state_h": ((5, 9), 0.49166861), "cell_state_c": ((5, 9), 1.01068615),
            "attention": ((5, 6), 0.042427111), "alignments": ((5, 8), 0.125),
            "attention_state": ((5, 8), 0.125)},
        create_query_layer=True,
        create_attention_kwargs={"kernel_initializer": "ones", "normalize": True})


LUONG = {
    "rnn_output": ((5, 3, 6), -0.06124732), "sample_id": ((5, 3), 2.73333333),
    "cell_state_h": ((5, 9), 0.52021580), "cell_state_c": ((5, 9), 1.0964939),
    "attention": ((5, 6), -0.0318060), "alignments": ((5, 8), 0.125),
    "attention_state": ((5, 8), 0.125)}


def test_luong_not_normalized():
    """attention_wrapper_test.test_luong_not_normalized (the float32 policy)"""
    set_random_state_for_tf_and_np()
    _test_with_attention("luong_not_normalized", wrapper.LuongAttention, LUONG,
                         attention_mechanism_depth=9)


def test_luong_scaled():
    """attention_wrapper_test.test_luong_scaled"""
    set_random_state_for_tf_and_np()
    _test_with_attention("luong_scaled", wrapper.LuongAttention, LUONG,
                         attention_mechanism_depth=9, create_attention_kwargs={"scale": True})


def test_not_use_attention_layer():
    """attention_wrapper_test.test_not_use_attention_layer"""
    set_random_state_for_tf_and_np()
    _test_with_attention(
        "not_use_attention_layer", wrapper.BahdanauAttention, {
            "rnn_output": ((5, 3, 10), 0.078317143), "sample_id": ((5, 3), 4.2),
            "cell_state_h": ((5, 9), 0.89382392), "cell_state_c": ((5, 9), 1.722382),
            "attention": ((5, 10), 0.026356646), "alignments": ((5, 8), 0.125),
            "attention_state": ((5, 8), 0.125)},
        attention_layer_size=None, create_query_layer=True,
        create_attention_kwargs={"kernel_initializer": "ones"})


def test_bahdanau_monotonic_not_normalized():
    """attention_wrapper_test.test_bahdanau_monotonic_not_normalized"""
    set_random_state_for_tf_and_np()
    _test_with_attention(
        "bahdanau_monotonic_not_normalized", wrapper.BahdanauMonotonicAttention, {
            "rnn_output": ((5, 3, 6), -0.009921653), "sample_id": ((5, 3), 3.13333333),
            "cell_state_h": ((5, 9), 0.44612807), "cell_state_c": ((5, 9), 0.95786464),
            "attention": ((5, 6), 0.038682378), "alignments": ((5, 8), 0.09778417),
            "attention_state": ((5, 8), 0.09778417),
            "alignment_history": ((3, 5, 8), 0.10261579603)},
        alignment_history=True, create_query_layer=True,
        create_attention_kwargs={"kernel_initializer": "ones"})


def test_bahdanau_monotonic_normalized():
    """attention_wrapper_test.test_bahdanau_monotonic_normalized"""
    set_random_state_for_tf_and_np()
    _test_with_attention(
        "bahdanau_monotonic_normalized", wrapper.BahdanauMonotonicAttention, {
            "rnn_output": ((5, 3, 6), 0.007140680), "sample_id": ((5, 3), 3.26666666),
            "cell_state_h": ((5, 9), 0.47012400), "cell_state_c": ((5, 9), 1.0249618),
            "attention": ((5, 6), 0.068432882), "alignments": ((5, 8), 0.0615656),
            "attention_state": ((5, 8), 0.0615656),
            "alignment_history": ((3, 5, 8), 0.07909643)},
        alignment_history=True, create_query_layer=True,
        create_attention_kwargs={"kernel_initializer": "ones", "normalize": True})


LUONG_MONOTONIC = {
    "rnn_output": ((5, 3, 6), 0.003664831), "sample_id": ((5, 3), 3.06666666),
    "cell_state_h": ((5, 9), 0.54318606), "cell_state_c": ((5, 9), 1.12592840),
    "attention": ((5, 6), 0.059128221), "alignments": ((5, 8), 0.05112994),
    "attention_state": ((5, 8), 0.05112994), "alignment_history": ((3, 5, 8), 0.06994973868)}


def test_luong_monotonic_not_normalized():
    """attention_wrapper_test.test_luong_monotonic_not_normalized"""
    set_random_state_for_tf_and_np()
    _test_with_attention("luong_monotonic_not_normalized", wrapper.LuongMonotonicAttention,
                         LUONG_MONOTONIC, attention_mechanism_depth=9, alignment_history=True)


def test_luong_monotonic_scaled():
    """attention_wrapper_test.test_luong_monotonic_scaled"""
    set_random_state_for_tf_and_np()
    _test_with_attention("luong_monotonic_scaled", wrapper.LuongMonotonicAttention,
                         LUONG_MONOTONIC, attention_mechanism_depth=9, alignment_history=True,
                         create_attention_kwargs={"scale": True})


# -- Keras RNN layers and other cells -------------------------------------------------------

def test_attention_state_with_keras_rnn():
    """attention_wrapper_test.test_attention_state_with_keras_rnn (tfa issue 1095)"""
    cell = rnn.LSTMCell(8)
    mechanism = wrapper.LuongAttention(units=8, memory=torch.ones(2, 4, 8))
    cell = wrapper.AttentionWrapper(cell=cell, attention_mechanism=mechanism)
    outputs, _ = rnn.dynamic_rnn(cell, torch.ones(2, 4, 8), dtype=torch.float32)
    initial_state = cell.get_initial_state(batch_size=2, dtype=torch.float32)
    again, _ = rnn.dynamic_rnn(cell, torch.ones(2, 4, 8), initial_state=initial_state)
    torch.testing.assert_close(again, outputs)  # the explicit zero state is the default's
    assert torch.isfinite(outputs).all()


def test_attention_state_with_variable_length_input():
    """attention_wrapper_test.test_attention_state_with_variable_length_input"""
    cell = rnn.LSTMCell(3)
    mechanism = wrapper.LuongAttention(units=3)
    cell = wrapper.AttentionWrapper(cell, mechanism)
    var_len = int(torch.randint(2, 10, ()))
    lengths = torch.randint(1, var_len + 1, (var_len,), dtype=torch.int32)
    data = torch.ones(var_len, var_len, 3)
    mechanism.setup_memory(data)
    outputs, _ = rnn.dynamic_rnn(cell, data, sequence_length=lengths, dtype=torch.float32)
    assert outputs.shape == (var_len, var_len, 3) and torch.isfinite(outputs).all()


def test_attention_wrapper_with_gru_cell():
    """attention_wrapper_test.test_attention_wrapper_with_gru_cell"""
    mechanism = wrapper.LuongAttention(units=3)
    cell = wrapper.AttentionWrapper(rnn.GRUCell(3, reset_after=True), mechanism)
    memory = torch.ones(2, 5, 3)
    inputs = torch.ones(2, 3)
    mechanism.setup_memory(memory)
    initial_state = cell.get_initial_state(inputs=inputs)
    _, state = cell(inputs, initial_state)
    nest.assert_same_structure(initial_state, state)


def test_attention_wrapper_with_multiple_attention_mechanisms():
    """attention_wrapper_test.test_attention_wrapper_with_multiple_attention_mechanisms"""
    cell = rnn.LSTMCell(5)
    mechanisms = [wrapper.LuongAttention(units=3), wrapper.LuongAttention(units=3)]
    # upstream checks that the wrapper is made without an error
    wrapper.AttentionWrapper(cell, mechanisms, attention_layer_size=[4, 5])
    wrapper.AttentionWrapper(cell, mechanisms, attention_layer=[Dense(4), Dense(5)])
