"""Port of TensorFlow r1.15
``tensorflow/contrib/seq2seq/python/kernel_tests/decoder_v2_test.py``.

Contrib's Keras-style ``BasicDecoderV2(cell, sampler, output_time_major=...,
maximum_iterations=..., impute_finished=...)`` called with the batch's tensors is
:class:`rnnkit.tfa.seq2seq.BasicDecoder` (tensorflow-addons' successor, same arguments);
``sampler_py.TrainingSampler`` is :class:`rnnkit.tfa.seq2seq.TrainingSampler`.  Upstream runs
each test in graph and eager modes (shape checks differ between them); here there is one
mode, checked as upstream checks eager mode.  Lengths are int64 (README, differences).
"""

import numpy as np
import torch

from rnnkit import rnn, seq2seq, tfa

SEQUENCE_LENGTH = [3, 4, 3, 1, 0]
BATCH, MAX_TIME, INPUT_DEPTH, CELL_DEPTH = 5, 8, 7, 10


def _check_decode_rnn(time_major, maximum_iterations=None):
    max_out = max(SEQUENCE_LENGTH)
    shape = (MAX_TIME, BATCH, INPUT_DEPTH) if time_major else (BATCH, MAX_TIME, INPUT_DEPTH)
    input_t = torch.from_numpy(np.random.randn(*shape).astype(np.float32))
    cell = rnn.LSTMCell(CELL_DEPTH)
    sampler = tfa.seq2seq.TrainingSampler(time_major=time_major)
    decoder = tfa.seq2seq.BasicDecoder(cell=cell, sampler=sampler, output_time_major=time_major,
                                       maximum_iterations=maximum_iterations)
    initial_state = cell.zero_state(dtype=torch.float32, batch_size=BATCH)
    final_outputs, _, final_sequence_length = decoder(
        input_t, initial_state=initial_state, sequence_length=SEQUENCE_LENGTH)

    def _t(shape):
        return (shape[1], shape[0]) + shape[2:] if time_major else shape

    assert tuple(final_sequence_length.shape) == (BATCH,)
    time_steps = max_out
    expected_length = SEQUENCE_LENGTH
    if maximum_iterations is not None:
        time_steps = min(max_out, maximum_iterations)
        expected_length = [min(x, maximum_iterations) for x in expected_length]
    # upstream skips this check for maximum_iterations == 0 in eager mode (b/123431432);
    # rnnkit returns the empty [0, batch, ...] outputs there, so it is checked always
    assert tuple(final_outputs.rnn_output.shape) == _t((BATCH, time_steps, CELL_DEPTH))
    assert tuple(final_outputs.sample_id.shape) == _t((BATCH, time_steps))
    # upstream: assertItemsEqual (same values in any order); the order is TF's too
    assert final_sequence_length.tolist() == expected_length


def test_dynamic_decode_rnn_batch_major():
    """DecodeV2RNNTest.testDynamicDecodeRNNBatchMajor"""
    _check_decode_rnn(time_major=False)


def test_dynamic_decode_rnn_time_major():
    """DecodeV2RNNTest.testDynamicDecodeRNNTimeMajor"""
    _check_decode_rnn(time_major=True)


def test_dynamic_decode_rnn_zero_max_iters():
    """DecodeV2RNNTest.testDynamicDecodeRNNZeroMaxIters"""
    _check_decode_rnn(time_major=True, maximum_iterations=0)


def test_dynamic_decode_rnn_one_max_iter():
    """DecodeV2RNNTest.testDynamicDecodeRNNOneMaxIter"""
    _check_decode_rnn(time_major=True, maximum_iterations=1)


def _check_matches_dynamic_rnn(use_sequence_length):
    max_out = max(SEQUENCE_LENGTH)
    inputs = torch.from_numpy(np.random.randn(BATCH, MAX_TIME, INPUT_DEPTH).astype(np.float32))
    cell = rnn.LSTMCell(CELL_DEPTH)
    zero_state = cell.zero_state(dtype=torch.float32, batch_size=BATCH)
    sampler = tfa.seq2seq.TrainingSampler()
    decoder = tfa.seq2seq.BasicDecoder(cell=cell, sampler=sampler,
                                       impute_finished=use_sequence_length)
    decoder_outputs, decoder_state, _ = decoder(inputs, initial_state=zero_state,
                                                sequence_length=SEQUENCE_LENGTH)
    rnn_outputs, rnn_state = rnn.dynamic_rnn(
        cell, inputs, sequence_length=SEQUENCE_LENGTH if use_sequence_length else None,
        initial_state=zero_state)
    assert isinstance(decoder_outputs, seq2seq.BasicDecoderOutput)
    # the decoder runs max_out steps; dynamic_rnn zeros the outputs and carries the state
    # past each length the same way.  Tolerance: TF's assertAllClose defaults.
    np.testing.assert_allclose(decoder_outputs.rnn_output.detach().numpy(),
                               rnn_outputs[:, :max_out].detach().numpy(),
                               rtol=1e-6, atol=1e-6)
    if use_sequence_length:
        for got, want in zip(decoder_state, rnn_state, strict=True):
            np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(),
                                       rtol=1e-6, atol=1e-6)


def test_dynamic_decode_rnn_with_training_helper_matches_dynamic_rnn_with_seq_len():
    """DecodeV2RNNTest.testDynamicDecodeRNNWithTrainingHelperMatchesDynamicRNNWithSeqLen"""
    _check_matches_dynamic_rnn(use_sequence_length=True)


def test_dynamic_decode_rnn_with_training_helper_matches_dynamic_rnn_no_seq_len():
    """DecodeV2RNNTest.testDynamicDecodeRNNWithTrainingHelperMatchesDynamicRNNNoSeqLen"""
    _check_matches_dynamic_rnn(use_sequence_length=False)
