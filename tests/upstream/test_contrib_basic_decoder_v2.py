"""Port of TensorFlow r1.15
``tensorflow/contrib/seq2seq/python/kernel_tests/basic_decoder_v2_test.py``.

Contrib's Keras-style ``BasicDecoderV2`` and ``sampler_py.*Sampler`` are
:mod:`rnnkit.tfa.seq2seq`'s ``BasicDecoder`` and samplers (tensorflow-addons' successors,
same arguments): settings at construction, the batch's tensors at ``initialize``.
Differences adapted as in ``test_contrib_basic_decoder.py``: int64 sample ids (README,
differences), shapes of the results for TF's static shapes, ``categorical_sample`` /
``bernoulli_sample`` written with torch.  Upstream runs each test in graph and eager modes;
there is one mode here.
"""

import numpy as np
import pytest
import torch

from rnnkit import layers, rnn, seq2seq, tfa

SEQUENCE_LENGTH = [3, 4, 3, 1, 0]
sampler_py = tfa.seq2seq.sampler


def _np(x):
    return x.detach().numpy()


def _run(decoder, inputs, **kwargs):
    """``initialize(inputs, **kwargs)`` and one ``step`` at time 0, as upstream fetches."""
    first_finished, first_inputs, first_state = decoder.initialize(inputs, **kwargs)
    step_outputs, step_state, step_next_inputs, step_finished = decoder.step(
        0, first_inputs, first_state)
    return dict(first_finished=first_finished, first_inputs=first_inputs,
                first_state=first_state, step_outputs=step_outputs, step_state=step_state,
                step_next_inputs=step_next_inputs, step_finished=step_finished)


def _check_structure(r, batch_size, output_depth, cell_depth, sample_shape=()):
    assert isinstance(r["first_state"], rnn.LSTMStateTuple)
    assert isinstance(r["step_state"], rnn.LSTMStateTuple)
    assert isinstance(r["step_outputs"], seq2seq.BasicDecoderOutput)
    assert tuple(r["step_outputs"][0].shape) == (batch_size, output_depth)
    assert tuple(r["step_outputs"][1].shape) == (batch_size, *sample_shape)
    for state in (r["first_state"], r["step_state"]):
        assert tuple(state[0].shape) == (batch_size, cell_depth)
        assert tuple(state[1].shape) == (batch_size, cell_depth)


@pytest.mark.parametrize("use_output_layer", [True, False],
                         ids=["use_output_layer", "without_output_layer"])
def test_step_with_training_helper_output_layer(use_output_layer):
    """BasicDecoderTest.testStepWithTrainingHelperOutputLayer (both named parameters)"""
    batch_size, max_time, input_depth, cell_depth, output_layer_depth = 5, 8, 7, 10, 3
    inputs = np.random.randn(batch_size, max_time, input_depth).astype(np.float32)
    input_t = torch.from_numpy(inputs)
    cell = rnn.LSTMCell(cell_depth)
    sampler = sampler_py.TrainingSampler(time_major=False)
    if use_output_layer:
        output_layer = layers.Dense(output_layer_depth, use_bias=False)
        expected_output_depth = output_layer_depth
    else:
        output_layer = None
        expected_output_depth = cell_depth
    initial_state = cell.zero_state(dtype=torch.float32, batch_size=batch_size)
    decoder = tfa.seq2seq.BasicDecoder(cell=cell, sampler=sampler, output_layer=output_layer)

    r = _run(decoder, input_t, initial_state=initial_state, sequence_length=SEQUENCE_LENGTH)
    assert decoder.output_size == seq2seq.BasicDecoderOutput(expected_output_depth,
                                                             torch.Size([]))
    assert decoder.output_dtype == seq2seq.BasicDecoderOutput(torch.float32, torch.int64)
    assert decoder.batch_size == batch_size
    _check_structure(r, batch_size, expected_output_depth, cell_depth)
    if use_output_layer:  # the output layer was used: its one variable exists
        params = list(output_layer.parameters())
        assert len(params) == 1
        assert not isinstance(params[0], torch.nn.UninitializedParameter)

    np.testing.assert_array_equal(_np(r["first_finished"]), [False, False, False, False, True])
    np.testing.assert_array_equal(_np(r["step_finished"]), [False, False, False, True, True])
    assert r["step_outputs"].sample_id.dtype == decoder.output_dtype.sample_id
    np.testing.assert_array_equal(np.argmax(_np(r["step_outputs"].rnn_output), -1),
                                  _np(r["step_outputs"].sample_id))


def test_step_with_greedy_embedding_helper():
    """BasicDecoderTest.DISABLED_testStepWithGreedyEmbeddingHelper (disabled upstream by
    its name; it passes here, so it runs)"""
    batch_size = 5
    vocabulary_size = 7
    cell_depth = vocabulary_size  # the cell's outputs are the logits
    input_depth = 10
    start_tokens = np.random.randint(0, vocabulary_size, size=batch_size)
    end_token = 1
    embeddings = np.random.randn(vocabulary_size, input_depth).astype(np.float32)
    embeddings_t = torch.from_numpy(embeddings)
    cell = rnn.LSTMCell(vocabulary_size)
    sampler = sampler_py.GreedyEmbeddingSampler()
    initial_state = cell.zero_state(dtype=torch.float32, batch_size=batch_size)
    decoder = tfa.seq2seq.BasicDecoder(cell=cell, sampler=sampler)

    r = _run(decoder, embeddings_t, start_tokens=start_tokens, end_token=end_token,
             initial_state=initial_state)
    assert decoder.output_size == seq2seq.BasicDecoderOutput(cell_depth, torch.Size([]))
    assert decoder.output_dtype == seq2seq.BasicDecoderOutput(torch.float32, torch.int64)
    assert decoder.batch_size == batch_size
    _check_structure(r, batch_size, cell_depth, cell_depth)

    expected_sample_ids = np.argmax(_np(r["step_outputs"].rnn_output), -1)
    np.testing.assert_array_equal(_np(r["first_finished"]), [False] * 5)
    np.testing.assert_array_equal(_np(r["step_finished"]), expected_sample_ids == end_token)
    assert r["step_outputs"].sample_id.dtype == decoder.output_dtype.sample_id
    np.testing.assert_array_equal(_np(r["step_outputs"].sample_id), expected_sample_ids)
    np.testing.assert_array_equal(_np(r["step_next_inputs"]), embeddings[expected_sample_ids])


def test_step_with_sample_embedding_helper():
    """BasicDecoderTest.testStepWithSampleEmbeddingHelper"""
    batch_size = 5
    vocabulary_size = 7
    cell_depth = vocabulary_size
    input_depth = 10
    np.random.seed(0)
    start_tokens = np.random.randint(0, vocabulary_size, size=batch_size)
    end_token = 1
    embeddings = np.random.randn(vocabulary_size, input_depth).astype(np.float32)
    embeddings_t = torch.from_numpy(embeddings)
    cell = rnn.LSTMCell(vocabulary_size)
    sampler = sampler_py.SampleEmbeddingSampler(seed=0)
    initial_state = cell.zero_state(dtype=torch.float32, batch_size=batch_size)
    decoder = tfa.seq2seq.BasicDecoder(cell=cell, sampler=sampler)

    r = _run(decoder, embeddings_t, start_tokens=start_tokens, end_token=end_token,
             initial_state=initial_state)
    assert decoder.output_size == seq2seq.BasicDecoderOutput(cell_depth, torch.Size([]))
    assert decoder.output_dtype == seq2seq.BasicDecoderOutput(torch.float32, torch.int64)
    assert decoder.batch_size == batch_size
    _check_structure(r, batch_size, cell_depth, cell_depth)

    sample_ids = _np(r["step_outputs"].sample_id)
    assert r["step_outputs"].sample_id.dtype == decoder.output_dtype.sample_id
    np.testing.assert_array_equal(_np(r["step_finished"]), sample_ids == end_token)
    np.testing.assert_array_equal(_np(r["step_next_inputs"]), embeddings[sample_ids])


def test_step_with_scheduled_embedding_training_helper():
    """BasicDecoderTest.testStepWithScheduledEmbeddingTrainingHelper"""
    batch_size, max_time, input_depth, vocabulary_size = 5, 8, 7, 10
    inputs = np.random.randn(batch_size, max_time, input_depth).astype(np.float32)
    input_t = torch.from_numpy(inputs)
    embeddings = np.random.randn(vocabulary_size, input_depth).astype(np.float32)
    half = torch.tensor(0.5)
    cell = rnn.LSTMCell(vocabulary_size)
    sampler = sampler_py.ScheduledEmbeddingTrainingSampler(sampling_probability=half,
                                                           time_major=False)
    initial_state = cell.zero_state(dtype=torch.float32, batch_size=batch_size)
    decoder = tfa.seq2seq.BasicDecoder(cell=cell, sampler=sampler)

    r = _run(decoder, input_t, sequence_length=SEQUENCE_LENGTH, embedding=embeddings,
             initial_state=initial_state)
    assert decoder.output_size == seq2seq.BasicDecoderOutput(vocabulary_size, torch.Size([]))
    assert decoder.output_dtype == seq2seq.BasicDecoderOutput(torch.float32, torch.int64)
    assert decoder.batch_size == batch_size
    _check_structure(r, batch_size, vocabulary_size, vocabulary_size)
    assert tuple(r["step_next_inputs"].shape) == (batch_size, input_depth)

    np.testing.assert_array_equal(_np(r["first_finished"]), [False, False, False, False, True])
    np.testing.assert_array_equal(_np(r["step_finished"]), [False, False, False, True, True])
    sample_ids = _np(r["step_outputs"].sample_id)
    assert r["step_outputs"].sample_id.dtype == decoder.output_dtype.sample_id
    where_not_sampling = np.where(sample_ids == -1)
    where_sampling = np.where(sample_ids > -1)
    next_inputs = _np(r["step_next_inputs"])
    np.testing.assert_allclose(next_inputs[where_sampling],
                               embeddings[sample_ids[where_sampling]], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(next_inputs[where_not_sampling],
                               np.squeeze(inputs[where_not_sampling, 1], axis=0),
                               rtol=1e-6, atol=1e-6)


def _check_step_with_scheduled_output_training_helper(sampling_probability, use_next_inputs_fn,
                                                      use_auxiliary_inputs):
    batch_size, max_time, input_depth = 5, 8, 7
    cell_depth = input_depth
    if use_auxiliary_inputs:
        auxiliary_input_depth = 4
        auxiliary_inputs = np.random.randn(
            batch_size, max_time, auxiliary_input_depth).astype(np.float32)
    else:
        auxiliary_inputs = None
    inputs = np.random.randn(batch_size, max_time, input_depth).astype(np.float32)
    input_t = torch.from_numpy(inputs)
    cell = rnn.LSTMCell(cell_depth)
    sampling_probability = torch.tensor(sampling_probability)

    if use_next_inputs_fn:
        def next_inputs_fn(outputs):
            # deterministic, for the test
            samples = torch.argmax(outputs, dim=1)
            return torch.nn.functional.one_hot(samples, cell_depth).float()
    else:
        next_inputs_fn = None

    sampler = sampler_py.ScheduledOutputTrainingSampler(
        sampling_probability=sampling_probability, time_major=False,
        next_inputs_fn=next_inputs_fn)
    initial_state = cell.zero_state(dtype=torch.float32, batch_size=batch_size)
    decoder = tfa.seq2seq.BasicDecoder(cell=cell, sampler=sampler)

    r = _run(decoder, input_t, sequence_length=SEQUENCE_LENGTH, initial_state=initial_state,
             auxiliary_inputs=(None if auxiliary_inputs is None
                               else torch.from_numpy(auxiliary_inputs)))
    assert decoder.output_size == seq2seq.BasicDecoderOutput(cell_depth, torch.Size([]))
    assert decoder.output_dtype == seq2seq.BasicDecoderOutput(torch.float32, torch.int64)
    if use_next_inputs_fn:
        output_after_next_inputs_fn = _np(next_inputs_fn(r["step_outputs"].rnn_output))
    assert decoder.batch_size == batch_size
    _check_structure(r, batch_size, cell_depth, cell_depth)

    np.testing.assert_array_equal(_np(r["first_finished"]), [False, False, False, False, True])
    np.testing.assert_array_equal(_np(r["step_finished"]), [False, False, False, True, True])

    sample_ids = _np(r["step_outputs"].sample_id)
    assert r["step_outputs"].sample_id.dtype == decoder.output_dtype.sample_id
    where_not_sampling = np.where(np.logical_not(sample_ids))
    where_sampling = np.where(sample_ids)
    aux_to_concat = (auxiliary_inputs[:, 1] if use_auxiliary_inputs
                     else np.array([]).reshape(batch_size, 0).astype(np.float32))
    fed = (output_after_next_inputs_fn if use_next_inputs_fn
           else _np(r["step_outputs"].rnn_output))
    expected_sampling_inputs = np.concatenate(
        (fed[where_sampling], aux_to_concat[where_sampling]), axis=-1)
    next_inputs = _np(r["step_next_inputs"])
    np.testing.assert_allclose(next_inputs[where_sampling], expected_sampling_inputs,
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        next_inputs[where_not_sampling],
        np.concatenate((np.squeeze(inputs[where_not_sampling, 1], axis=0),
                        aux_to_concat[where_not_sampling]), axis=-1),
        rtol=1e-6, atol=1e-6)
    return sample_ids


def test_step_with_scheduled_output_training_helper_without_next_inputs_fn_or_aux_inputs():
    """BasicDecoderTest.testStepWithScheduledOutputTrainingHelperWithoutNextInputsFnOrAuxInputs"""
    _check_step_with_scheduled_output_training_helper(
        sampling_probability=0.5, use_next_inputs_fn=False, use_auxiliary_inputs=False)


def test_step_with_scheduled_output_training_helper_with_next_inputs_fn():
    """BasicDecoderTest.testStepWithScheduledOutputTrainingHelperWithNextInputsFn"""
    _check_step_with_scheduled_output_training_helper(
        sampling_probability=0.5, use_next_inputs_fn=True, use_auxiliary_inputs=False)


def test_step_with_scheduled_output_training_helper_with_auxiliary_inputs():
    """BasicDecoderTest.testStepWithScheduledOutputTrainingHelperWithAuxiliaryInputs"""
    _check_step_with_scheduled_output_training_helper(
        sampling_probability=0.5, use_next_inputs_fn=False, use_auxiliary_inputs=True)


def test_step_with_scheduled_output_training_helper_with_next_inputs_fn_and_aux_inputs():
    """BasicDecoderTest.testStepWithScheduledOutputTrainingHelperWithNextInputsFnAndAuxInputs"""
    _check_step_with_scheduled_output_training_helper(
        sampling_probability=0.5, use_next_inputs_fn=True, use_auxiliary_inputs=True)


def test_step_with_scheduled_output_training_helper_with_no_sampling():
    """BasicDecoderTest.testStepWithScheduledOutputTrainingHelperWithNoSampling"""
    sample_ids = _check_step_with_scheduled_output_training_helper(
        sampling_probability=0.0, use_next_inputs_fn=True, use_auxiliary_inputs=True)
    assert not sample_ids.any()  # probability 0: the ground truth everywhere


def _categorical_sample(logits):
    """contrib's ``sampler_py.categorical_sample``: one id per row from ``softmax(logits)``."""
    return torch.multinomial(torch.softmax(logits, -1), 1).squeeze(-1)


def _bernoulli_sample(logits):
    """contrib's ``sampler_py.bernoulli_sample(logits=..., dtype=bool)``."""
    return torch.bernoulli(torch.sigmoid(logits)).bool()


def test_step_with_inference_helper_categorical():
    """BasicDecoderTest.testStepWithInferenceHelperCategorical"""
    batch_size, vocabulary_size = 5, 7
    cell_depth = vocabulary_size
    start_token, end_token = 0, 6
    start_inputs = torch.nn.functional.one_hot(
        torch.ones(batch_size, dtype=torch.long) * start_token, vocabulary_size).float()

    def next_inputs_fn(ids):  # one-hot of the sampled labels
        return torch.nn.functional.one_hot(ids, vocabulary_size).float()

    def end_fn(sample_ids):
        return sample_ids == end_token

    cell = rnn.LSTMCell(vocabulary_size)
    sampler = sampler_py.InferenceSampler(
        _categorical_sample, sample_shape=(), sample_dtype=torch.int64, end_fn=end_fn,
        next_inputs_fn=next_inputs_fn)
    initial_state = cell.zero_state(dtype=torch.float32, batch_size=batch_size)
    decoder = tfa.seq2seq.BasicDecoder(cell=cell, sampler=sampler)

    r = _run(decoder, start_inputs, initial_state=initial_state)
    assert decoder.output_size == seq2seq.BasicDecoderOutput(cell_depth, torch.Size([]))
    assert decoder.output_dtype == seq2seq.BasicDecoderOutput(torch.float32, torch.int64)
    assert decoder.batch_size == batch_size
    _check_structure(r, batch_size, cell_depth, cell_depth)

    sample_ids = _np(r["step_outputs"].sample_id)
    assert r["step_outputs"].sample_id.dtype == decoder.output_dtype.sample_id
    expected_next_inputs = np.zeros((batch_size, vocabulary_size))
    expected_next_inputs[np.arange(batch_size), sample_ids] = 1.0
    np.testing.assert_array_equal(_np(r["step_finished"]), sample_ids == end_token)
    np.testing.assert_array_equal(_np(r["step_next_inputs"]), expected_next_inputs)


def test_step_with_inference_helper_multilabel():
    """BasicDecoderTest.testStepWithInferenceHelperMultilabel"""
    batch_size, vocabulary_size = 5, 7
    cell_depth = vocabulary_size
    start_token, end_token = 0, 6
    start_inputs = torch.nn.functional.one_hot(
        torch.ones(batch_size, dtype=torch.long) * start_token, vocabulary_size).float()

    def end_fn(sample_ids):
        return sample_ids[:, end_token]

    cell = rnn.LSTMCell(vocabulary_size)
    sampler = sampler_py.InferenceSampler(
        _bernoulli_sample, sample_shape=[cell_depth], sample_dtype=torch.bool, end_fn=end_fn,
        next_inputs_fn=lambda ids: ids.float())
    initial_state = cell.zero_state(dtype=torch.float32, batch_size=batch_size)
    decoder = tfa.seq2seq.BasicDecoder(cell=cell, sampler=sampler)

    r = _run(decoder, start_inputs, initial_state=initial_state)
    # TF compares TensorShape([7]) with 7 (equal there); here the shape is torch.Size([7])
    assert decoder.output_size == seq2seq.BasicDecoderOutput(cell_depth,
                                                             torch.Size([cell_depth]))
    assert decoder.output_dtype == seq2seq.BasicDecoderOutput(torch.float32, torch.bool)
    assert decoder.batch_size == batch_size
    _check_structure(r, batch_size, cell_depth, cell_depth, sample_shape=(cell_depth,))

    sample_ids = _np(r["step_outputs"].sample_id)
    assert r["step_outputs"].sample_id.dtype == decoder.output_dtype.sample_id
    np.testing.assert_array_equal(_np(r["step_finished"]), sample_ids[:, end_token])
    np.testing.assert_array_equal(_np(r["step_next_inputs"]), sample_ids.astype(np.float32))
