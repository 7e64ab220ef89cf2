"""Port of tensorflow-addons 0.23 ``tensorflow_addons/seq2seq/tests/basic_decoder_test.py``
against ``rnnkit.tfa.seq2seq``.

Keras's ``LSTMCell`` / ``GRUCell`` are ``rnnkit.rnn.LSTMCell`` / ``rnnkit.rnn.GRUCell(
reset_after=True)``, Keras's ``Dense`` is ``rnnkit.layers.Dense``.  Ids are int64 where tfa
has int32 (README's differences): the dtype checks compare with ``torch.int64``.  An LSTM
state is ``LSTMStateTuple(c, h)``; upstream only checks its length and shapes.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnkit import rnn, tfa
from rnnkit.layers import Dense

s2s = tfa.seq2seq
sampler_py = tfa.seq2seq.sampler


def _cell(cell_class, depth):
    return rnn.LSTMCell(depth) if cell_class == "LSTMCell" \
        else rnn.GRUCell(depth, reset_after=True)


def _np(t):
    return t.detach().numpy()


def _check_lstm_states(first_state, step_state, batch_size, cell_depth):
    assert len(first_state) == 2
    assert len(step_state) == 2
    for s in (*first_state, *step_state):
        assert (batch_size, cell_depth) == tuple(s.shape)


@pytest.mark.parametrize("use_output_layer", [True, False])
@pytest.mark.parametrize("cell_class", ["LSTMCell", "GRUCell"])
def test_step_with_training_helper_output_layer(cell_class, use_output_layer):
    """basic_decoder_test.test_step_with_training_helper_output_layer"""
    sequence_length = [3, 4, 3, 1, 0]
    batch_size, max_time, input_depth, cell_depth, output_layer_depth = 5, 8, 7, 10, 3
    inputs = np.random.randn(batch_size, max_time, input_depth).astype(np.float32)
    input_t = torch.tensor(inputs)
    cell = _cell(cell_class, cell_depth)
    sampler = sampler_py.TrainingSampler(time_major=False)
    if use_output_layer:
        output_layer = Dense(output_layer_depth, use_bias=False)
        expected_output_depth = output_layer_depth
    else:
        output_layer = None
        expected_output_depth = cell_depth
    initial_state = cell.get_initial_state(batch_size=batch_size, dtype=torch.float32)
    my_decoder = s2s.BasicDecoder(cell=cell, sampler=sampler, output_layer=output_layer)
    first_finished, first_inputs, first_state = my_decoder.initialize(
        input_t, initial_state=initial_state, sequence_length=sequence_length)
    output_size = my_decoder.output_size
    output_dtype = my_decoder.output_dtype
    assert s2s.BasicDecoderOutput(expected_output_depth, torch.Size([])) == output_size
    assert s2s.BasicDecoderOutput(torch.float32, torch.int64) == output_dtype
    step_outputs, step_state, step_next_inputs, step_finished = my_decoder.step(
        torch.tensor(0), first_inputs, first_state)
    if cell_class == "LSTMCell":
        _check_lstm_states(first_state, step_state, batch_size, cell_depth)
    else:
        assert isinstance(first_state, torch.Tensor) and isinstance(step_state, torch.Tensor)
        assert (batch_size, cell_depth) == tuple(first_state.shape)
        assert (batch_size, cell_depth) == tuple(step_state.shape)
    assert type(step_outputs) is s2s.BasicDecoderOutput
    assert (batch_size, expected_output_depth) == tuple(step_outputs[0].shape)
    assert (batch_size,) == tuple(step_outputs[1].shape)
    if use_output_layer:  # the output layer was used: its kernel exists
        assert len(list(output_layer.parameters())) == 1
        assert output_layer.weight.shape == (output_layer_depth, cell_depth)
    np.testing.assert_equal([False, False, False, False, True], first_finished.numpy())
    np.testing.assert_equal([False, False, False, True, True], step_finished.numpy())
    assert output_dtype.sample_id == step_outputs.sample_id.dtype
    np.testing.assert_equal(np.argmax(_np(step_outputs.rnn_output), -1),
                            step_outputs.sample_id.numpy())


@pytest.mark.parametrize("use_mask", [True, False, None])
def test_step_with_training_helper_masked_input(use_mask):
    """basic_decoder_test.test_step_with_training_helper_masked_input"""
    batch_size, max_time = 5, 8
    sequence_length = [max_time] * batch_size if use_mask is None else [3, 4, 3, 1, 0]
    sequence_length = np.array(sequence_length, dtype=np.int32)
    mask = [[True] * sl + [False] * (max_time - sl) for sl in sequence_length]
    input_depth, cell_depth, output_layer_depth = 7, 10, 3
    inputs = np.random.randn(batch_size, max_time, input_depth).astype(np.float32)
    input_t = torch.tensor(inputs)
    cell = rnn.LSTMCell(cell_depth)
    sampler = sampler_py.TrainingSampler(time_major=False)
    output_layer = Dense(output_layer_depth, use_bias=False)
    initial_state = cell.get_initial_state(batch_size=batch_size, dtype=torch.float32)
    my_decoder = s2s.BasicDecoder(cell=cell, sampler=sampler, output_layer=output_layer)
    if use_mask is None:
        first_finished, first_inputs, first_state = my_decoder.initialize(
            input_t, initial_state=initial_state)
    elif use_mask:
        first_finished, first_inputs, first_state = my_decoder.initialize(
            input_t, initial_state=initial_state, mask=torch.tensor(mask))
    else:
        first_finished, first_inputs, first_state = my_decoder.initialize(
            input_t, initial_state=initial_state, sequence_length=sequence_length)
    output_size = my_decoder.output_size
    output_dtype = my_decoder.output_dtype
    assert s2s.BasicDecoderOutput(output_layer_depth, torch.Size([])) == output_size
    assert s2s.BasicDecoderOutput(torch.float32, torch.int64) == output_dtype
    step_outputs, step_state, step_next_inputs, step_finished = my_decoder.step(
        torch.tensor(0), first_inputs, first_state)
    _check_lstm_states(first_state, step_state, batch_size, cell_depth)
    assert type(step_outputs) is s2s.BasicDecoderOutput
    assert (batch_size, output_layer_depth) == tuple(step_outputs[0].shape)
    assert (batch_size,) == tuple(step_outputs[1].shape)
    assert len(list(output_layer.parameters())) == 1
    np.testing.assert_equal(sequence_length == 0, first_finished.numpy())
    np.testing.assert_equal(np.maximum(sequence_length - 1, 0) == 0, step_finished.numpy())
    assert output_dtype.sample_id == step_outputs.sample_id.dtype
    np.testing.assert_equal(np.argmax(_np(step_outputs.rnn_output), -1),
                            step_outputs.sample_id.numpy())


def _embedding_sampler_step(sampler, batch_size, vocabulary_size, input_depth):
    start_tokens = np.random.randint(0, vocabulary_size, size=batch_size)
    end_token = 1
    embeddings = np.random.randn(vocabulary_size, input_depth).astype(np.float32)
    cell = rnn.LSTMCell(vocabulary_size)
    initial_state = cell.get_initial_state(batch_size=batch_size, dtype=torch.float32)
    my_decoder = s2s.BasicDecoder(cell=cell, sampler=sampler)
    first_finished, first_inputs, first_state = my_decoder.initialize(
        torch.tensor(embeddings), start_tokens=start_tokens, end_token=end_token,
        initial_state=initial_state)
    output_size = my_decoder.output_size
    output_dtype = my_decoder.output_dtype
    assert s2s.BasicDecoderOutput(vocabulary_size, torch.Size([])) == output_size
    assert s2s.BasicDecoderOutput(torch.float32, torch.int64) == output_dtype
    step_outputs, step_state, step_next_inputs, step_finished = my_decoder.step(
        torch.tensor(0), first_inputs, first_state)
    _check_lstm_states(first_state, step_state, batch_size, vocabulary_size)
    assert isinstance(step_outputs, s2s.BasicDecoderOutput)
    assert (batch_size, vocabulary_size) == tuple(step_outputs[0].shape)
    assert (batch_size,) == tuple(step_outputs[1].shape)
    assert output_dtype.sample_id == step_outputs.sample_id.dtype
    return (embeddings, end_token, first_finished, step_outputs, step_next_inputs,
            step_finished)


def test_step_with_greedy_embedding_helper():
    """basic_decoder_test.test_step_with_greedy_embedding_helper"""
    embeddings, end_token, first_finished, step_outputs, step_next_inputs, step_finished = \
        _embedding_sampler_step(sampler_py.GreedyEmbeddingSampler(), 5, 7, 10)
    expected_sample_ids = np.argmax(_np(step_outputs.rnn_output), -1)
    np.testing.assert_equal([False] * 5, first_finished.numpy())
    np.testing.assert_equal(expected_sample_ids == end_token, step_finished.numpy())
    np.testing.assert_equal(expected_sample_ids, step_outputs.sample_id.numpy())
    np.testing.assert_equal(embeddings[expected_sample_ids], _np(step_next_inputs))


def test_step_with_sample_embedding_helper():
    """basic_decoder_test.test_step_with_sample_embedding_helper"""
    np.random.seed(0)
    embeddings, end_token, _, step_outputs, step_next_inputs, step_finished = \
        _embedding_sampler_step(sampler_py.SampleEmbeddingSampler(seed=0), 5, 7, 10)
    sample_ids = step_outputs.sample_id.numpy()
    np.testing.assert_equal(sample_ids == end_token, step_finished.numpy())
    np.testing.assert_equal(embeddings[sample_ids, :], _np(step_next_inputs))


def test_step_with_scheduled_embedding_training_helper():
    """basic_decoder_test.test_step_with_scheduled_embedding_training_helper"""
    sequence_length = [3, 4, 3, 1, 0]
    batch_size, max_time, input_depth, vocabulary_size = 5, 8, 7, 10
    inputs = np.random.randn(batch_size, max_time, input_depth).astype(np.float32)
    embeddings = np.random.randn(vocabulary_size, input_depth).astype(np.float32)
    half = torch.tensor(0.5)
    cell = rnn.LSTMCell(vocabulary_size)
    sampler = sampler_py.ScheduledEmbeddingTrainingSampler(sampling_probability=half,
                                                           time_major=False)
    initial_state = cell.get_initial_state(batch_size=batch_size, dtype=torch.float32)
    my_decoder = s2s.BasicDecoder(cell=cell, sampler=sampler)
    first_finished, first_inputs, first_state = my_decoder.initialize(
        torch.tensor(inputs), sequence_length=sequence_length, embedding=embeddings,
        initial_state=initial_state)
    output_size = my_decoder.output_size
    output_dtype = my_decoder.output_dtype
    assert s2s.BasicDecoderOutput(vocabulary_size, torch.Size([])) == output_size
    assert s2s.BasicDecoderOutput(torch.float32, torch.int64) == output_dtype
    step_outputs, step_state, step_next_inputs, step_finished = my_decoder.step(
        torch.tensor(0), first_inputs, first_state)
    _check_lstm_states(first_state, step_state, batch_size, vocabulary_size)
    assert isinstance(step_outputs, s2s.BasicDecoderOutput)
    assert (batch_size, vocabulary_size) == tuple(step_outputs[0].shape)
    assert (batch_size,) == tuple(step_outputs[1].shape)
    assert (batch_size, input_depth) == tuple(step_next_inputs.shape)
    np.testing.assert_equal([False, False, False, False, True], first_finished.numpy())
    np.testing.assert_equal([False, False, False, True, True], step_finished.numpy())
    sample_ids = step_outputs.sample_id.numpy()
    assert output_dtype.sample_id == step_outputs.sample_id.dtype
    batch_where_not_sampling = np.where(sample_ids == -1)
    batch_where_sampling = np.where(sample_ids > -1)
    np.testing.assert_equal(_np(step_next_inputs)[batch_where_sampling],
                            embeddings[sample_ids[batch_where_sampling]])
    np.testing.assert_equal(_np(step_next_inputs)[batch_where_not_sampling],
                            np.squeeze(inputs[batch_where_not_sampling, 1], axis=0))


@pytest.mark.parametrize("use_auxiliary_inputs", [True, False])
@pytest.mark.parametrize("use_next_inputs_fn", [True, False])
@pytest.mark.parametrize("sampling_probability", [0.0, 0.5])
def test_step_with_scheduled_output_training_helper(sampling_probability, use_next_inputs_fn,
                                                    use_auxiliary_inputs):
    """basic_decoder_test.test_step_with_scheduled_output_training_helper"""
    sequence_length = [3, 4, 3, 1, 0]
    batch_size, max_time, input_depth = 5, 8, 7
    cell_depth = input_depth
    if use_auxiliary_inputs:
        auxiliary_input_depth = 4
        auxiliary_inputs = np.random.randn(batch_size, max_time,
                                           auxiliary_input_depth).astype(np.float32)
    else:
        auxiliary_inputs = None
    inputs = np.random.randn(batch_size, max_time, input_depth).astype(np.float32)
    cell = rnn.LSTMCell(cell_depth)
    sampling_probability = torch.tensor(sampling_probability)
    if use_next_inputs_fn:
        def next_inputs_fn(outputs):
            return F.one_hot(outputs.argmax(1), cell_depth).float()  # deterministic
    else:
        next_inputs_fn = None
    sampler = sampler_py.ScheduledOutputTrainingSampler(
        sampling_probability=sampling_probability, time_major=False,
        next_inputs_fn=next_inputs_fn)
    initial_state = cell.get_initial_state(batch_size=batch_size, dtype=torch.float32)
    my_decoder = s2s.BasicDecoder(cell=cell, sampler=sampler)
    first_finished, first_inputs, first_state = my_decoder.initialize(
        torch.tensor(inputs), sequence_length=sequence_length, initial_state=initial_state,
        auxiliary_inputs=None if auxiliary_inputs is None else torch.tensor(auxiliary_inputs))
    output_size = my_decoder.output_size
    output_dtype = my_decoder.output_dtype
    assert s2s.BasicDecoderOutput(cell_depth, torch.Size([])) == output_size
    assert s2s.BasicDecoderOutput(torch.float32, torch.int64) == output_dtype
    step_outputs, step_state, step_next_inputs, step_finished = my_decoder.step(
        torch.tensor(0), first_inputs, first_state)
    if use_next_inputs_fn:
        output_after_next_inputs_fn = next_inputs_fn(step_outputs.rnn_output)
    _check_lstm_states(first_state, step_state, batch_size, cell_depth)
    assert isinstance(step_outputs, s2s.BasicDecoderOutput)
    assert (batch_size, cell_depth) == tuple(step_outputs[0].shape)
    assert (batch_size,) == tuple(step_outputs[1].shape)
    np.testing.assert_equal([False, False, False, False, True], first_finished.numpy())
    np.testing.assert_equal([False, False, False, True, True], step_finished.numpy())
    sample_ids = step_outputs.sample_id.numpy()
    assert output_dtype.sample_id == step_outputs.sample_id.dtype
    batch_where_not_sampling = np.where(np.logical_not(sample_ids))
    batch_where_sampling = np.where(sample_ids)
    auxiliary_inputs_to_concat = (auxiliary_inputs[:, 1] if use_auxiliary_inputs
                                  else np.array([]).reshape(batch_size, 0).astype(np.float32))
    fed = _np(output_after_next_inputs_fn) if use_next_inputs_fn else _np(step_outputs.rnn_output)
    expected_next_sampling_inputs = np.concatenate(
        (fed[batch_where_sampling], auxiliary_inputs_to_concat[batch_where_sampling]), axis=-1)
    np.testing.assert_equal(_np(step_next_inputs)[batch_where_sampling],
                            expected_next_sampling_inputs)
    np.testing.assert_equal(
        _np(step_next_inputs)[batch_where_not_sampling],
        np.concatenate((np.squeeze(inputs[batch_where_not_sampling, 1], axis=0),
                        auxiliary_inputs_to_concat[batch_where_not_sampling]), axis=-1))


def _inference_step(sampler, batch_size, cell_depth, start_inputs):
    cell = rnn.LSTMCell(cell_depth)
    initial_state = cell.get_initial_state(batch_size=batch_size, dtype=torch.float32)
    my_decoder = s2s.BasicDecoder(cell=cell, sampler=sampler)
    first_finished, first_inputs, first_state = my_decoder.initialize(
        start_inputs, initial_state=initial_state)
    output_size, output_dtype = my_decoder.output_size, my_decoder.output_dtype
    step_outputs, step_state, step_next_inputs, step_finished = my_decoder.step(
        torch.tensor(0), first_inputs, first_state)
    _check_lstm_states(first_state, step_state, batch_size, cell_depth)
    assert isinstance(step_outputs, s2s.BasicDecoderOutput)
    assert (batch_size, cell_depth) == tuple(step_outputs[0].shape)
    assert output_dtype.sample_id == step_outputs.sample_id.dtype
    return output_size, output_dtype, step_outputs, step_next_inputs, step_finished


def test_step_with_inference_helper_categorical():
    """basic_decoder_test.test_step_with_inference_helper_categorical"""
    batch_size, vocabulary_size, start_token, end_token = 5, 7, 0, 6
    start_inputs = F.one_hot(torch.full((batch_size,), start_token), vocabulary_size).float()

    def sample_fn(x):  # samples categorically from the logits
        return sampler_py.categorical_sample(logits=x)

    def next_inputs_fn(x):  # one-hot encoding of the sampled labels
        return F.one_hot(x, vocabulary_size).float()

    def end_fn(sample_ids):
        return sample_ids == end_token

    sampler = sampler_py.InferenceSampler(sample_fn, sample_shape=(), sample_dtype=torch.int64,
                                          end_fn=end_fn, next_inputs_fn=next_inputs_fn)
    output_size, output_dtype, step_outputs, step_next_inputs, step_finished = \
        _inference_step(sampler, batch_size, vocabulary_size, start_inputs)
    assert s2s.BasicDecoderOutput(vocabulary_size, torch.Size([])) == output_size
    assert s2s.BasicDecoderOutput(torch.float32, torch.int64) == output_dtype
    assert (batch_size,) == tuple(step_outputs[1].shape)
    sample_ids = step_outputs.sample_id.numpy()
    expected_step_next_inputs = np.zeros((batch_size, vocabulary_size))
    expected_step_next_inputs[np.arange(batch_size), sample_ids] = 1.0
    np.testing.assert_equal(sample_ids == end_token, step_finished.numpy())
    np.testing.assert_equal(expected_step_next_inputs, _np(step_next_inputs))


def test_step_with_inference_helper_multilabel():
    """basic_decoder_test.test_step_with_inference_helper_multilabel"""
    batch_size, vocabulary_size, start_token, end_token = 5, 7, 0, 6
    cell_depth = vocabulary_size
    start_inputs = F.one_hot(torch.full((batch_size,), start_token), vocabulary_size).float()

    def sample_fn(x):  # independent Bernoullis from the logits
        return sampler_py.bernoulli_sample(logits=x, dtype=torch.bool)

    def next_inputs_fn(x):
        return x.float()

    def end_fn(sample_ids):
        return sample_ids[:, end_token]

    sampler = sampler_py.InferenceSampler(sample_fn, sample_shape=[cell_depth],
                                          sample_dtype=torch.bool, end_fn=end_fn,
                                          next_inputs_fn=next_inputs_fn)
    output_size, output_dtype, step_outputs, step_next_inputs, step_finished = \
        _inference_step(sampler, batch_size, cell_depth, start_inputs)
    assert s2s.BasicDecoderOutput(cell_depth, torch.Size([cell_depth])) == output_size
    assert s2s.BasicDecoderOutput(torch.float32, torch.bool) == output_dtype
    assert (batch_size, cell_depth) == tuple(step_outputs[1].shape)
    sample_ids = step_outputs.sample_id.numpy()
    np.testing.assert_equal(sample_ids[:, end_token], step_finished.numpy())
    np.testing.assert_equal(sample_ids.astype(np.float32), _np(step_next_inputs))


def test_basic_decoder_with_attention_wrapper():
    """basic_decoder_test.test_basic_decoder_with_attention_wrapper: BasicDecoder accepts an
    AttentionWrapper whose mechanism has no memory yet."""
    units, vocab_size = 32, 1000
    attention_mechanism = s2s.LuongAttention(units)
    cell = s2s.AttentionWrapper(rnn.LSTMCell(units), attention_mechanism)
    output_layer = Dense(vocab_size)
    s2s.BasicDecoder(cell, sampler_py.TrainingSampler(), output_layer=output_layer)


def test_right_padded_sequence_assertion():
    """basic_decoder_test.test_right_padded_sequence_assertion: tfa's private
    ``_check_sequence_is_right_padded`` is the check TrainingSampler makes of a mask (tfa's
    InvalidArgumentError is rnnkit's ValueError)."""
    right_padded_sequence = torch.tensor([[True, True, False, False],
                                          [True, True, True, False]])
    left_padded_sequence = torch.tensor([[False, False, True, True],
                                         [False, True, True, True]])
    inputs = torch.zeros(2, 4, 3)
    sampler = sampler_py.TrainingSampler()
    finished, _ = sampler.initialize(inputs, mask=right_padded_sequence)
    assert sampler.helper is not None and not finished.any()
    with pytest.raises(ValueError, match="right-padded"):
        sampler.initialize(inputs, mask=left_padded_sequence)
