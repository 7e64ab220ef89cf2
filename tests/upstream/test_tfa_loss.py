"""Port of tensorflow-addons 0.23 ``tensorflow_addons/seq2seq/tests/loss_test.py``
against ``rnnkit.tfa.seq2seq`` (``sequence_loss`` and the ``SequenceLoss`` loss object)."""

import numpy as np
import pytest
import torch

from rnnkit import tfa

EXPECTED_LOSS = 1.60944  # sparse softmax cross-entropy of uniform logits over 5 classes


def get_test_data():
    batch_size, sequence_length, number_of_classes = 2, 3, 5
    logits = torch.stack([torch.full((batch_size, number_of_classes), i + 0.5)
                          for i in range(sequence_length)], 1)
    targets = torch.stack([torch.full((batch_size,), i, dtype=torch.int32)
                           for i in range(sequence_length)], 1)
    weights = torch.ones(batch_size, sequence_length)
    return batch_size, sequence_length, number_of_classes, logits, targets, weights


@pytest.mark.parametrize("average_across_timesteps", [True, False])
@pytest.mark.parametrize("average_across_batch", [True, False])
@pytest.mark.parametrize("zero_weights", [True, False])
def test_sequence_loss(average_across_timesteps, average_across_batch, zero_weights):
    """loss_test.test_sequence_loss"""
    batch_size, sequence_length, _, logits, targets, weights = get_test_data()
    if zero_weights:
        weights = torch.zeros(batch_size, sequence_length)
    computed = tfa.seq2seq.sequence_loss(
        logits, targets, weights, average_across_timesteps=average_across_timesteps,
        average_across_batch=average_across_batch).numpy()
    value = 0.0 if zero_weights else EXPECTED_LOSS
    if average_across_timesteps and average_across_batch:
        expected = value
    elif average_across_batch:
        expected = np.full(sequence_length, value)
    elif average_across_timesteps:
        expected = np.full(batch_size, value)
    else:
        expected = np.full((batch_size, sequence_length), value)
    np.testing.assert_allclose(computed, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("average_across_timesteps", [True, False])
@pytest.mark.parametrize("average_across_batch", [True, False])
def test_sequence_loss_class(average_across_timesteps, average_across_batch):
    """loss_test.test_sequence_loss_class"""
    batch_size, sequence_length, _, logits, targets, weights = get_test_data()
    seq_loss = tfa.seq2seq.SequenceLoss(average_across_timesteps=average_across_timesteps,
                                        average_across_batch=average_across_batch,
                                        sum_over_timesteps=False, sum_over_batch=False)
    res = seq_loss(targets, logits, weights).numpy()
    if average_across_timesteps and average_across_batch:
        expected = EXPECTED_LOSS
    elif average_across_batch:
        expected = np.full(sequence_length, EXPECTED_LOSS)
    elif average_across_timesteps:
        expected = np.full(batch_size, EXPECTED_LOSS)
    else:
        expected = np.full((batch_size, sequence_length), EXPECTED_LOSS)
    np.testing.assert_allclose(res, expected, atol=1e-6, rtol=1e-6)


def _reductions(targets, logits, weights):
    out = []
    for over_time, over_batch in ((True, True), (False, True), (True, False),
                                  (False, False)):
        seq_loss = tfa.seq2seq.SequenceLoss(average_across_timesteps=False,
                                            average_across_batch=False,
                                            sum_over_timesteps=over_time,
                                            sum_over_batch=over_batch)
        out.append(seq_loss(targets, logits, weights).numpy())
    return out


def test_sum_reduction():
    """loss_test.test_sum_reduction"""
    batch_size, sequence_length, _, logits, targets, weights = get_test_data()
    total, per_sequence, per_batch, each = _reductions(targets, logits, weights)
    np.testing.assert_allclose(EXPECTED_LOSS, total, atol=1e-6, rtol=1e-6)
    np.testing.assert_allclose(np.full(sequence_length, EXPECTED_LOSS), per_sequence,
                               atol=1e-6, rtol=1e-6)
    np.testing.assert_allclose(np.full(batch_size, EXPECTED_LOSS), per_batch, atol=1e-6,
                               rtol=1e-6)
    np.testing.assert_allclose(np.full((batch_size, sequence_length), EXPECTED_LOSS), each,
                               atol=1e-6, rtol=1e-6)


def test_weighted_sum_reduction():
    """loss_test.test_weighted_sum_reduction"""
    batch_size, sequence_length, _, logits, targets, weights = get_test_data()
    weights[:, -1] = 0.0  # the last step of every sequence weighs nothing
    total, per_sequence, per_batch, each = _reductions(targets, logits, weights)
    np.testing.assert_allclose(EXPECTED_LOSS, total, rtol=1e-6, atol=1e-6)
    compare_per_sequence = np.full(sequence_length, EXPECTED_LOSS)
    compare_per_sequence[-1] = 0.0
    np.testing.assert_allclose(compare_per_sequence, per_sequence, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.full(batch_size, EXPECTED_LOSS), per_batch, rtol=1e-6,
                               atol=1e-6)
    compare_total = np.full((batch_size, sequence_length), EXPECTED_LOSS)
    compare_total[:, -1] = 0
    np.testing.assert_allclose(compare_total, each, rtol=1e-6, atol=1e-6)


def test_ambiguous_order():
    """loss_test.test_ambiguous_order"""
    _, _, _, logits, targets, weights = get_test_data()
    seq_loss = tfa.seq2seq.SequenceLoss(average_across_timesteps=False,
                                        average_across_batch=True, sum_over_timesteps=True,
                                        sum_over_batch=False)
    with pytest.raises(ValueError, match="because of ambiguous order"):
        seq_loss(targets, logits, weights)


def test_keras_compatibility():
    """loss_test.test_keras_compatibility: the loss object with the defaults Keras uses,
    one-hot targets ``[batch, time, classes]`` and temporal sample weights (rnnkit has no
    Keras ``fit``; the loss a fit step reports for a model without parameters is the loss
    object's value on its fixed logits)."""
    batch_size, sequence_length, number_of_classes, logits, targets, weights = \
        get_test_data()
    one_hot = torch.nn.functional.one_hot(targets.long(), number_of_classes).float()
    x = torch.ones(batch_size, sequence_length)  # the fake input: only its batch counts
    model_logits = logits[0][None].expand(x.shape[0], -1, -1)
    loss = tfa.seq2seq.SequenceLoss()(one_hot, model_logits, weights)
    np.testing.assert_allclose(loss.item(), EXPECTED_LOSS, rtol=1e-6, atol=1e-6)
