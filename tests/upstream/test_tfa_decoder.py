"""Port of tensorflow-addons 0.23 ``tensorflow_addons/seq2seq/tests/decoder_test.py``
against ``rnnkit.tfa.seq2seq``.

Keras's ``LSTMCell`` is ``rnnkit.rnn.LSTMCell`` and Keras's ``RNN`` layer is
``rnnkit.rnn.dynamic_rnn`` (a Keras mask is ``sequence_length``).
"""

import numpy as np
import pytest
import torch

from rnnkit import rnn, tfa

s2s = tfa.seq2seq


@pytest.mark.parametrize("maximum_iterations", [None, 1, "tensor"])
@pytest.mark.parametrize("time_major", [True, False])
def test_dynamic_decode_rnn(time_major, maximum_iterations):
    """decoder_test.test_dynamic_decode_rnn (upstream's "mostly a smoke test": shapes and
    lengths)"""
    if maximum_iterations == "tensor":
        maximum_iterations = torch.tensor(1, dtype=torch.int32)
    sequence_length = [3, 4, 3, 1, 0]
    batch_size, max_time, input_depth, cell_depth = 5, 8, 7, 10
    max_out = max(sequence_length)
    cell = rnn.LSTMCell(cell_depth)
    sampler = s2s.TrainingSampler(time_major=time_major)
    my_decoder = s2s.BasicDecoder(cell=cell, sampler=sampler, output_time_major=time_major,
                                  maximum_iterations=maximum_iterations)

    def _decode(inputs, sequence_length):
        initial_state = cell.get_initial_state(batch_size=len(sequence_length),
                                               dtype=inputs.dtype)
        return my_decoder(inputs, initial_state=initial_state, sequence_length=sequence_length)

    inputs = torch.randn(batch_size, max_time, input_depth)
    if time_major:
        inputs = inputs.transpose(0, 1)
    final_outputs, _, final_sequence_length = _decode(
        inputs, torch.tensor(sequence_length, dtype=torch.int32))

    def _t(shape):
        return (shape[1], shape[0]) + shape[2:] if time_major else shape

    assert (batch_size,) == tuple(final_sequence_length.shape)
    time_steps, expected_length = max_out, sequence_length
    if maximum_iterations is not None:
        time_steps = min(max_out, int(maximum_iterations))
        expected_length = [min(x, int(maximum_iterations)) for x in expected_length]
    assert _t((batch_size, time_steps, cell_depth)) == tuple(final_outputs.rnn_output.shape)
    assert _t((batch_size, time_steps)) == tuple(final_outputs.sample_id.shape)
    np.testing.assert_array_equal(expected_length, final_sequence_length.numpy())


@pytest.mark.parametrize("use_sequence_length", [True, False])
def test_dynamic_decode_rnn_with_training_helper_matches_dynamic_rnn(use_sequence_length):
    """decoder_test.test_dynamic_decode_rnn_with_training_helper_matches_dynamic_rnn"""
    sequence_length = [3, 4, 3, 1, 0]
    batch_size, max_time, input_depth, cell_depth = 5, 8, 7, 10
    max_out = max(sequence_length)
    inputs = torch.tensor(np.random.randn(batch_size, max_time, input_depth).astype(np.float32))
    cell = rnn.LSTMCell(cell_depth)
    zero_state = cell.get_initial_state(batch_size=batch_size, dtype=torch.float32)
    my_decoder = s2s.BasicDecoder(cell=cell, sampler=s2s.TrainingSampler(),
                                  impute_finished=use_sequence_length)
    final_decoder_outputs, final_decoder_state, _ = my_decoder(
        inputs, initial_state=zero_state, sequence_length=sequence_length)
    # Keras's RNN layer with the mask (or without): dynamic_rnn with the lengths (outputs
    # zeroed past them, the state carried through)
    final_rnn_outputs, final_rnn_state = rnn.dynamic_rnn(
        cell, inputs, sequence_length=sequence_length if use_sequence_length else None,
        initial_state=zero_state)
    # the decoder runs out to max_out only
    np.testing.assert_allclose(final_decoder_outputs.rnn_output.detach().numpy(),
                               final_rnn_outputs[:, 0:max_out, :].detach().numpy(),
                               rtol=1e-6, atol=1e-6)  # fused kernel vs step loop rounding
    if use_sequence_length:
        for got, want in zip(final_decoder_state, final_rnn_state, strict=True):
            np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(),
                                       rtol=1e-6, atol=1e-6)


def test_dynamic_decode_rnn_with_scheduled_embedding_training_sampler():
    """decoder_test.test_dynamic_decode_rnn_with_scheduled_embedding_training_sampler (the
    float32 policy; the mixed_float16 one is in the notes)"""
    sequence_length = [3, 4, 3, 1]
    batch_size, input_depth, cell_depth, vocab_size = 4, 7, 10, 12
    max_time = max(sequence_length)
    embedding = torch.nn.Embedding(vocab_size, input_depth)
    cell = rnn.LSTMCell(cell_depth)
    sampler = s2s.ScheduledEmbeddingTrainingSampler(sampling_probability=torch.tensor(1.0),
                                                    embedding_fn=embedding)
    my_decoder = s2s.BasicDecoder(cell=cell, sampler=sampler)
    inputs = torch.rand(batch_size, max_time, input_depth)
    initial_state = cell.get_initial_state(batch_size=batch_size, dtype=torch.float32)
    final_outputs, _, _ = my_decoder(inputs, initial_state=initial_state,
                                     sequence_length=sequence_length)
    assert final_outputs.rnn_output.dtype == torch.float32
