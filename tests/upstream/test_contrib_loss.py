"""Port of TensorFlow r1.15 ``tensorflow/contrib/seq2seq/python/kernel_tests/loss_test.py``.

``loss.sequence_loss`` is :func:`rnnkit.seq2seq.sequence_loss`; contrib's Keras-style
``loss.SequenceLoss`` is :class:`rnnkit.seq2seq.SequenceLoss` (called as
``loss(targets, logits, weights)``, contrib's argument order).  Tolerances are TF's
``assertAllClose`` defaults (rtol = atol = 1e-6).
"""

import numpy as np
import pytest
import torch

from rnnkit import seq2seq

BATCH, TIME, CLASSES = 2, 3, 5
# sparse softmax cross-entropy of targets [0, 1, 2] under uniform logits: log(5)
EXPECTED_LOSS = 1.60944


def _close(expected, got):
    got = got.detach().numpy()
    assert got.shape == np.shape(expected)  # assertAllClose compares shapes too
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


@pytest.fixture
def data():
    """Upstream's ``config_default_values``: logits ``i + 0.5`` at step ``i``, target ``i``
    at step ``i``, unit weights."""
    logits = torch.stack([torch.full((BATCH, CLASSES), i + 0.5) for i in range(TIME)], 1)
    targets = torch.stack([torch.full((BATCH,), i, dtype=torch.int32) for i in range(TIME)], 1)
    weights = torch.ones(BATCH, TIME)
    return logits, targets, weights


def _weights_last_step_zero():
    weights = torch.ones(BATCH, TIME)
    weights[:, -1] = 0.0
    return weights


# (average_across_timesteps, average_across_batch) -> expected result
_AVERAGES = [
    ((True, True), np.float32(EXPECTED_LOSS)),
    ((False, True), np.full(TIME, EXPECTED_LOSS)),
    ((True, False), np.full(BATCH, EXPECTED_LOSS)),
    ((False, False), np.full((BATCH, TIME), EXPECTED_LOSS)),
]


def test_sequence_loss(data):
    """LossTest.testSequenceLoss"""
    logits, targets, weights = data
    for (across_time, across_batch), expected in _AVERAGES:
        got = seq2seq.sequence_loss(logits, targets, weights,
                                    average_across_timesteps=across_time,
                                    average_across_batch=across_batch)
        _close(expected, got)


def test_sequence_loss_class(data):
    """LossTest.testSequenceLossClass"""
    logits, targets, weights = data
    for (across_time, across_batch), expected in _AVERAGES:
        loss = seq2seq.SequenceLoss(average_across_timesteps=across_time,
                                    average_across_batch=across_batch,
                                    sum_over_timesteps=False, sum_over_batch=False)
        _close(expected, loss(targets, logits, weights))


# (sum_over_timesteps, sum_over_batch) -> expected result with unit weights
_SUMS = [
    ((True, True), np.float32(EXPECTED_LOSS)),
    ((False, True), np.full(TIME, EXPECTED_LOSS)),
    ((True, False), np.full(BATCH, EXPECTED_LOSS)),
    ((False, False), np.full((BATCH, TIME), EXPECTED_LOSS)),
]


def test_sum_reduction(data):
    """LossTest.testSumReduction"""
    logits, targets, weights = data
    for (over_time, over_batch), expected in _SUMS:
        loss = seq2seq.SequenceLoss(average_across_timesteps=False, average_across_batch=False,
                                    sum_over_timesteps=over_time, sum_over_batch=over_batch)
        _close(expected, loss(targets, logits, weights))


def test_weighted_sum_reduction(data):
    """LossTest.testWeightedSumReduction"""
    logits, targets, _ = data
    weights = _weights_last_step_zero()
    per_time = np.full(TIME, EXPECTED_LOSS)
    per_time[-1] = 0.0  # the zero-weight step is filtered out
    total = np.full((BATCH, TIME), EXPECTED_LOSS)
    total[:, -1] = 0.0
    expectations = [
        ((True, True), np.float32(EXPECTED_LOSS)),
        ((False, True), per_time),
        ((True, False), np.full(BATCH, EXPECTED_LOSS)),
        ((False, False), total),
    ]
    for (over_time, over_batch), expected in expectations:
        loss = seq2seq.SequenceLoss(average_across_timesteps=False, average_across_batch=False,
                                    sum_over_timesteps=over_time, sum_over_batch=over_batch)
        _close(expected, loss(targets, logits, weights))


def test_zero_weights(data):
    """LossTest.testZeroWeights"""
    logits, targets, _ = data
    weights = torch.zeros(BATCH, TIME)
    expectations = [
        ((True, True), np.float32(0.0)),
        ((False, True), np.zeros(TIME)),
        ((True, False), np.zeros(BATCH)),
        ((False, False), np.zeros((BATCH, TIME))),
    ]
    for (across_time, across_batch), expected in expectations:
        got = seq2seq.sequence_loss(logits, targets, weights,
                                    average_across_timesteps=across_time,
                                    average_across_batch=across_batch)
        assert not torch.isnan(got).any()
        _close(expected, got)
