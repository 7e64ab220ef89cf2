"""Port of TensorFlow r1.15 ``tensorflow/contrib/seq2seq/python/kernel_tests/decoder_test.py``.

``decoder.dynamic_decode`` is :func:`rnnkit.seq2seq.dynamic_decode`.  Upstream shares the
variables of the decoder and of ``dynamic_rnn`` through a variable scope; here both run the
same cell module.  Lengths are int64 (README, differences); TF's static shapes with an
unknown time (``None``) are checked as the shapes of the results.
"""

import numpy as np
import torch

from rnnkit import rnn, seq2seq

SEQUENCE_LENGTH = [3, 4, 3, 1, 0]
BATCH, MAX_TIME, INPUT_DEPTH, CELL_DEPTH = 5, 8, 7, 10


def _check_dynamic_decode_rnn(time_major, maximum_iterations=None):
    max_out = max(SEQUENCE_LENGTH)
    shape = (MAX_TIME, BATCH, INPUT_DEPTH) if time_major else (BATCH, MAX_TIME, INPUT_DEPTH)
    inputs = np.random.randn(*shape).astype(np.float32)
    cell = rnn.LSTMCell(CELL_DEPTH)
    helper = seq2seq.TrainingHelper(inputs, SEQUENCE_LENGTH, time_major=time_major)
    decoder = seq2seq.BasicDecoder(
        cell=cell, helper=helper,
        initial_state=cell.zero_state(dtype=torch.float32, batch_size=BATCH))
    final_outputs, final_state, final_sequence_length = seq2seq.dynamic_decode(
        decoder, output_time_major=time_major, maximum_iterations=maximum_iterations)

    def _t(shape):
        return (shape[1], shape[0]) + shape[2:] if time_major else shape

    assert isinstance(final_outputs, seq2seq.BasicDecoderOutput)
    assert isinstance(final_state, rnn.LSTMStateTuple)
    assert tuple(final_sequence_length.shape) == (BATCH,)

    time_steps = max_out
    expected_length = SEQUENCE_LENGTH
    if maximum_iterations is not None:
        time_steps = min(max_out, maximum_iterations)
        expected_length = [min(x, maximum_iterations) for x in expected_length]
    assert tuple(final_outputs.rnn_output.shape) == _t((BATCH, time_steps, CELL_DEPTH))
    assert tuple(final_outputs.sample_id.shape) == _t((BATCH, time_steps))
    # upstream: assertItemsEqual (same values in any order); the order is TF's too
    assert final_sequence_length.tolist() == expected_length


def test_dynamic_decode_rnn_batch_major():
    """DynamicDecodeRNNTest.testDynamicDecodeRNNBatchMajor"""
    _check_dynamic_decode_rnn(time_major=False)


def test_dynamic_decode_rnn_time_major():
    """DynamicDecodeRNNTest.testDynamicDecodeRNNTimeMajor"""
    _check_dynamic_decode_rnn(time_major=True)


def test_dynamic_decode_rnn_zero_max_iters():
    """DynamicDecodeRNNTest.testDynamicDecodeRNNZeroMaxIters"""
    _check_dynamic_decode_rnn(time_major=True, maximum_iterations=0)


def test_dynamic_decode_rnn_one_max_iter():
    """DynamicDecodeRNNTest.testDynamicDecodeRNNOneMaxIter"""
    _check_dynamic_decode_rnn(time_major=True, maximum_iterations=1)


def _check_matches_dynamic_rnn(use_sequence_length):
    max_out = max(SEQUENCE_LENGTH)
    inputs = np.random.randn(BATCH, MAX_TIME, INPUT_DEPTH).astype(np.float32)
    cell = rnn.LSTMCell(CELL_DEPTH)
    zero_state = cell.zero_state(dtype=torch.float32, batch_size=BATCH)
    helper = seq2seq.TrainingHelper(inputs, SEQUENCE_LENGTH)
    decoder = seq2seq.BasicDecoder(cell=cell, helper=helper, initial_state=zero_state)
    # impute_finished=True: outputs and final state as dynamic_rnn with sequence_length
    decoder_outputs, decoder_state, _ = seq2seq.dynamic_decode(
        decoder, impute_finished=use_sequence_length)
    rnn_outputs, rnn_state = rnn.dynamic_rnn(
        cell, torch.from_numpy(inputs),
        sequence_length=SEQUENCE_LENGTH if use_sequence_length else None,
        initial_state=zero_state)
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
    """DynamicDecodeRNNTest.testDynamicDecodeRNNWithTrainingHelperMatchesDynamicRNNWithSeqLen"""
    _check_matches_dynamic_rnn(use_sequence_length=True)


def test_dynamic_decode_rnn_with_training_helper_matches_dynamic_rnn_no_seq_len():
    """DynamicDecodeRNNTest.testDynamicDecodeRNNWithTrainingHelperMatchesDynamicRNNNoSeqLen"""
    _check_matches_dynamic_rnn(use_sequence_length=False)
