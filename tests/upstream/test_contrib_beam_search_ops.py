"""Port of TensorFlow r1.15
``tensorflow/contrib/seq2seq/python/kernel_tests/beam_search_ops_test.py``.

``beam_search_ops.gather_tree`` is :func:`rnnkit.seq2seq.gather_tree`
(``[max_time, batch, beam]`` ids; rnnkit returns int64, a documented difference).  TF's CPU
kernel refuses a bad parent id with an ``InvalidArgumentError``; rnnkit raises a
``ValueError`` naming where the id is.  ``testBadParentValuesOnGPU`` (TF's GPU kernel does
not check and writes ``-1``) is not ported: see ``notes/contrib_seq2seq.md``.
"""

import itertools

import numpy as np
import pytest
import torch

from rnnkit import seq2seq


def _transpose_batch_time(x):
    """``[batch, time, beam]`` -> ``[time, batch, beam]`` int32, as upstream."""
    return np.transpose(np.asarray(x), [1, 0, 2]).astype(np.int32)


def test_gather_tree_one():
    """GatherTreeTest.testGatherTreeOne"""
    # (max_time = 4, batch_size = 1, beams = 3)
    end_token = 10
    step_ids = _transpose_batch_time([[[1, 2, 3], [4, 5, 6], [7, 8, 9], [-1, -1, -1]]])
    parent_ids = _transpose_batch_time([[[0, 0, 0], [0, 1, 1], [2, 1, 2], [-1, -1, -1]]])
    max_sequence_lengths = [3]
    expected = _transpose_batch_time([[[2, 2, 2], [6, 5, 6], [7, 8, 9], [10, 10, 10]]])
    beams = seq2seq.gather_tree(step_ids=step_ids, parent_ids=parent_ids,
                                max_sequence_lengths=max_sequence_lengths,
                                end_token=end_token)
    assert beams.dtype == torch.int64  # TF: int32 (rnnkit's ids are int64)
    np.testing.assert_array_equal(beams.numpy(), expected)


def test_bad_parent_values_on_cpu():
    """GatherTreeTest.testBadParentValuesOnCPU"""
    # (batch_size = 1, max_time = 4, beams = 3); bad parent in beam 1 at time 1
    end_token = 10
    step_ids = _transpose_batch_time([[[1, 2, 3], [4, 5, 6], [7, 8, 9], [-1, -1, -1]]])
    parent_ids = _transpose_batch_time([[[0, 0, 0], [0, -1, 1], [2, 1, 2], [-1, -1, -1]]])
    max_sequence_lengths = [3]
    # TF: "parent id -1 at (batch, time, beam) == (0, 0, 1)" (the step it would lead to);
    # rnnkit names the entry of parent_ids [time, batch, beam] holding it
    with pytest.raises(ValueError, match=r"parent_ids\[1, 0, 1\] is -1"):
        seq2seq.gather_tree(step_ids=step_ids, parent_ids=parent_ids,
                            max_sequence_lengths=max_sequence_lengths, end_token=end_token)


def test_gather_tree_batch():
    """GatherTreeTest.testGatherTreeBatch"""
    batch_size = 10
    beam_width = 15
    max_time = 8
    max_sequence_lengths = [0, 1, 2, 4, 7, 8, 9, 10, 11, 0]
    end_token = 5

    np.random.seed(0)  # upstream draws from the unseeded global stream
    step_ids = np.random.randint(0, high=end_token + 1, size=(max_time, batch_size, beam_width))
    parent_ids = np.random.randint(0, high=beam_width - 1,
                                   size=(max_time, batch_size, beam_width))
    beams = seq2seq.gather_tree(step_ids=step_ids.astype(np.int32),
                                parent_ids=parent_ids.astype(np.int32),
                                max_sequence_lengths=max_sequence_lengths, end_token=end_token)
    assert tuple(beams.shape) == (max_time, batch_size, beam_width)
    beams_value = beams.numpy()
    for b in range(batch_size):
        # past max_sequence_lengths[b], all end tokens
        b_value = beams_value[max_sequence_lengths[b]:, b, :]
        np.testing.assert_array_equal(b_value, end_token * np.ones_like(b_value))
    for batch, beam in itertools.product(range(batch_size), range(beam_width)):
        v = np.squeeze(beams_value[:, batch, beam])
        if end_token in v:
            assert len(np.where(v == -1)[0]) == 0
            found = np.where(v == end_token)[0][0]  # first end token
            # before it valid ids, after it end tokens only
            if found > 0:
                assert (v[:found - 1] >= 0).all()
            np.testing.assert_array_equal(v[found + 1:], end_token * np.ones_like(v[found + 1:]))
