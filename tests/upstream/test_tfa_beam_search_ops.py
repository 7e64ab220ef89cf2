"""Port of tensorflow-addons 0.23 ``tensorflow_addons/seq2seq/tests/beam_search_ops_test.py``
against ``rnnkit.tfa.seq2seq.gather_tree``.

Upstream runs each test with tfa's custom kernel and its Python fallback
(``run_custom_and_py_ops``); rnnkit has one implementation.  rnnkit's ids are int64 (README's
differences); values are compared, not dtypes.
"""

import itertools

import numpy as np
import pytest
import torch

from rnnkit import tfa


def _transpose_batch_time(x):
    return np.transpose(x, [1, 0, 2]).astype(np.int32)


STEP_IDS = _transpose_batch_time([[[1, 2, 3], [4, 5, 6], [7, 8, 9], [-1, -1, -1]]])
BAD_PARENT_IDS = _transpose_batch_time([[[0, 0, 0], [0, -1, 1], [2, 1, 2], [-1, -1, -1]]])


def test_gather_tree_one():
    """beam_search_ops_test.test_gather_tree_one"""
    end_token = 10
    parent_ids = _transpose_batch_time([[[0, 0, 0], [0, 1, 1], [2, 1, 2], [-1, -1, -1]]])
    expected_result = _transpose_batch_time([[[2, 2, 2], [6, 5, 6], [7, 8, 9],
                                              [10, 10, 10]]])
    beams = tfa.seq2seq.gather_tree(step_ids=STEP_IDS, parent_ids=parent_ids,
                                    max_sequence_lengths=[3], end_token=end_token)
    np.testing.assert_equal(expected_result, beams.numpy())


def test_bad_parent_values_on_cpu():
    """beam_search_ops_test.test_bad_parent_values_on_cpu: a bad parent in beam 1 at time 1
    (tfa's InvalidArgumentError is rnnkit's ValueError)."""
    with pytest.raises(ValueError, match="parent id"):
        tfa.seq2seq.gather_tree(step_ids=STEP_IDS, parent_ids=BAD_PARENT_IDS,
                                max_sequence_lengths=[3], end_token=10)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_bad_parent_values_on_gpu():
    """beam_search_ops_test.test_bad_parent_values_on_gpu"""
    step_ids = torch.as_tensor(STEP_IDS, device="cuda")
    parent_ids = torch.as_tensor(BAD_PARENT_IDS, device="cuda")
    with pytest.raises(ValueError, match="parent id"):
        tfa.seq2seq.gather_tree(step_ids=step_ids, parent_ids=parent_ids,
                                max_sequence_lengths=torch.tensor([3], device="cuda"),
                                end_token=10)


def test_gather_tree_batch():
    """beam_search_ops_test.test_gather_tree_batch"""
    batch_size, beam_width, max_time = 10, 15, 8
    max_sequence_lengths = [0, 1, 2, 4, 7, 8, 9, 10, 11, 0]
    end_token = 5
    step_ids = np.random.randint(0, high=end_token + 1, size=(max_time, batch_size, beam_width))
    parent_ids = np.random.randint(0, high=beam_width - 1,
                                   size=(max_time, batch_size, beam_width))
    beams = tfa.seq2seq.gather_tree(step_ids=step_ids.astype(np.int32),
                                    parent_ids=parent_ids.astype(np.int32),
                                    max_sequence_lengths=max_sequence_lengths,
                                    end_token=end_token).numpy()
    assert (max_time, batch_size, beam_width) == beams.shape
    for b in range(batch_size):
        # past max_sequence_lengths[b], all end tokens
        b_value = beams[max_sequence_lengths[b]:, b, :]
        np.testing.assert_allclose(b_value, end_token * np.ones_like(b_value))
    for batch, beam in itertools.product(range(batch_size), range(beam_width)):
        v = np.squeeze(beams[:, batch, beam])
        if end_token in v:
            assert 0 == len(np.where(v == -1)[0])
            found = np.where(v == end_token)[0][0]  # the first end token
            if found > 0:
                np.testing.assert_equal(v[: found - 1] >= 0,
                                        np.ones_like(v[: found - 1], dtype=bool))
            np.testing.assert_allclose(v[found + 1:], end_token * np.ones_like(v[found + 1:]))
