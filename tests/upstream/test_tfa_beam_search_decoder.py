"""Port of tensorflow-addons 0.23
``tensorflow_addons/seq2seq/tests/beam_search_decoder_test.py`` against
``rnnkit.tfa.seq2seq``.

tfa's private ``_beam_search_step(time, logits, next_cell_state, beam_state, ...)`` is one
step of the decoder: here a cell that emits the test's logits is stepped once by a
``BeamSearchDecoder`` from the test's ``BeamSearchDecoderState``.  Ids are int64 (README's
differences); Keras cells are rnnkit's (``GRUCell(reset_after=True)`` is Keras's GRU).
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnkit import rnn, tfa
from rnnkit.layers import Dense
from rnnkit.seq2seq.beam_search import _mask_probs

s2s = tfa.seq2seq


def test_gather_tree():
    """beam_search_decoder_test.test_gather_tree"""
    predicted_ids = np.array(
        [[[1, 2, 3], [4, 5, 6], [7, 8, 9]], [[2, 3, 4], [5, 6, 7], [8, 9, 10]]],
        dtype=np.int32).transpose([1, 0, 2])
    parent_ids = np.array(
        [[[0, 0, 0], [0, 1, 1], [2, 1, 2]], [[0, 0, 0], [1, 2, 0], [2, 1, 1]]],
        dtype=np.int32).transpose([1, 0, 2])
    expected_result = np.array(
        [[[2, 2, 2], [6, 5, 6], [7, 8, 9]], [[2, 4, 4], [7, 6, 6], [8, 9, 10]]]
    ).transpose([1, 0, 2])
    res = s2s.gather_tree(predicted_ids, parent_ids, max_sequence_lengths=[3, 3],
                          end_token=11)
    np.testing.assert_equal(expected_result, res.numpy())


def _test_gather_tree_from_array(depth_ndims=0, merged_batch_beam=False):
    array = np.array([
        [[1, 2, 3], [4, 5, 6], [7, 8, 9], [0, 0, 0]],
        [[2, 3, 4], [5, 6, 7], [8, 9, 10], [11, 12, 0]],
    ]).transpose([1, 0, 2])
    parent_ids = np.array([
        [[0, 0, 0], [0, 1, 1], [2, 1, 2], [-1, -1, -1]],
        [[0, 0, 0], [1, 1, 0], [2, 0, 1], [0, 1, 0]],
    ]).transpose([1, 0, 2])
    expected_array = np.array([
        [[2, 2, 2], [6, 5, 6], [7, 8, 9], [0, 0, 0]],
        [[2, 3, 2], [7, 5, 7], [8, 9, 8], [11, 12, 0]],
    ]).transpose([1, 0, 2])
    sequence_length = [[3, 3, 3], [4, 4, 3]]
    array = torch.tensor(array, dtype=torch.float32)
    parent_ids = torch.tensor(parent_ids, dtype=torch.int32)
    expected_array = torch.tensor(expected_array, dtype=torch.float32)
    max_time, batch_size, beam_width = array.shape
    if merged_batch_beam:
        array = array.reshape(max_time, batch_size * beam_width)
        expected_array = expected_array.reshape(max_time, batch_size * beam_width)
    for _ in range(depth_ndims):  # higher ranks: stack the tensor and the tensor + 1
        array = torch.stack([array, array + 1], -1)
        expected_array = torch.stack([expected_array, expected_array + 1], -1)
    sorted_array = s2s.gather_tree_from_array(array, parent_ids, sequence_length)
    np.testing.assert_equal(expected_array.numpy(), sorted_array.numpy())


def test_gather_tree_from_array_scalar():
    """beam_search_decoder_test.test_gather_tree_from_array_scalar"""
    _test_gather_tree_from_array()


def test_gather_tree_from_array_1d():
    """beam_search_decoder_test.test_gather_tree_from_array_1d"""
    _test_gather_tree_from_array(depth_ndims=1)


def test_gather_tree_from_array_1d_with_merged_batch_beam():
    """beam_search_decoder_test.test_gather_tree_from_array_1d_with_merged_batch_beam"""
    _test_gather_tree_from_array(depth_ndims=1, merged_batch_beam=True)


def test_gather_tree_from_array_2d():
    """beam_search_decoder_test.test_gather_tree_from_array_2d"""
    _test_gather_tree_from_array(depth_ndims=2)


def test_gather_tree_from_array_complex_trajectory():
    """beam_search_decoder_test.test_gather_tree_from_array_complex_trajectory"""
    array = np.expand_dims(np.array([
        [[25, 12, 114, 89, 97]],
        [[9, 91, 64, 11, 162]],
        [[34, 34, 34, 34, 34]],
        [[2, 4, 2, 2, 4]],
        [[2, 3, 6, 2, 2]],
        [[2, 2, 2, 3, 2]],
        [[2, 2, 2, 2, 2]],
    ]), -1)
    parent_ids = np.array([
        [[0, 0, 0, 0, 0]],
        [[0, 0, 0, 0, 0]],
        [[0, 1, 2, 3, 4]],
        [[0, 0, 1, 2, 1]],
        [[0, 1, 1, 2, 3]],
        [[0, 1, 3, 1, 2]],
        [[0, 1, 2, 3, 4]],
    ])
    expected_array = np.expand_dims(np.array([
        [[25, 25, 25, 25, 25]],
        [[9, 9, 91, 9, 9]],
        [[34, 34, 34, 34, 34]],
        [[2, 4, 2, 4, 4]],
        [[2, 3, 6, 3, 6]],
        [[2, 2, 2, 3, 2]],
        [[2, 2, 2, 2, 2]],
    ]), -1)
    sequence_length = [[4, 6, 4, 7, 6]]
    sorted_array = s2s.gather_tree_from_array(torch.tensor(array, dtype=torch.float32),
                                              torch.tensor(parent_ids, dtype=torch.int32),
                                              sequence_length)
    np.testing.assert_equal(expected_array.astype(np.float32), sorted_array.numpy())


def test_eos_masking():
    """beam_search_decoder_test.test_eos_masking"""
    probs = torch.tensor([
        [[-0.2, -0.2, -0.2, -0.2, -0.2], [-0.3, -0.3, -0.3, 3, 0], [5, 6, 0, 0, 0]],
        [[-0.2, -0.2, -0.2, -0.2, 0], [-0.3, -0.3, -0.1, 3, 0], [5, 6, 3, 0, 0]],
    ])
    eos_token = 0
    previously_finished = torch.tensor([[0, 1, 0], [0, 1, 1]], dtype=torch.bool)
    masked = _mask_probs(probs, eos_token, previously_finished).numpy()
    np.testing.assert_equal(probs[0][0].numpy(), masked[0][0])
    np.testing.assert_equal(probs[0][2].numpy(), masked[0][2])
    np.testing.assert_equal(probs[1][0].numpy(), masked[1][0])
    np.testing.assert_equal(masked[0][1][0], 0)
    np.testing.assert_equal(masked[1][1][0], 0)
    np.testing.assert_equal(masked[1][2][0], 0)
    for i in range(1, 5):
        np.testing.assert_allclose(masked[0][1][i], np.finfo("float32").min)
        np.testing.assert_allclose(masked[1][1][i], np.finfo("float32").min)
        np.testing.assert_allclose(masked[1][2][i], np.finfo("float32").min)


def test_missing_embedding_fn():
    """beam_search_decoder_test.test_missing_embedding_fn: called positionally as in tfa,
    without an embedding and without ``embedding_fn``."""
    batch_size, beam_width = 6, 4
    cell = rnn.LSTMCell(5)
    decoder = s2s.BeamSearchDecoder(cell, beam_width=beam_width)
    initial_state = cell.get_initial_state(batch_size=batch_size * beam_width,
                                           dtype=torch.float32)
    start_tokens = torch.ones(batch_size, dtype=torch.int32)
    end_token = torch.tensor(2, dtype=torch.int32)
    with pytest.raises(ValueError, match="embedding"):
        decoder(None, start_tokens, end_token, initial_state)


class _FixedLogits(rnn.RNNCell):
    """Emits the same ``[batch * beam, vocab]`` logits at every step; its state (one number
    per row, tfa's ``dummy_cell_state``) passes through."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    @property
    def state_size(self):
        return 1

    @property
    def output_size(self):
        return self.logits.shape[-1]

    def call(self, inputs, state):
        return self.logits, state


def _beam_search_step(logits, beam_state, end_token, length_penalty_weight):
    """tfa's ``_beam_search_step(time=2, logits, ...)``: one step of rnnkit's decoder."""
    batch_size, beam_width, vocab_size = logits.shape
    cell = _FixedLogits(logits.reshape(batch_size * beam_width, vocab_size))
    decoder = s2s.BeamSearchDecoder(cell, beam_width, length_penalty_weight=length_penalty_weight,
                                    coverage_penalty_weight=0.0, output_all_scores=False)
    decoder.initialize(torch.eye(vocab_size), torch.zeros(batch_size, dtype=torch.long),
                       end_token, torch.zeros(batch_size * beam_width, 1))
    inputs = torch.zeros(batch_size, beam_width, vocab_size)
    outputs, next_state, _, _ = decoder.step(2, inputs, beam_state)
    return outputs, next_state


def _state(log_probs, lengths, finished, batch_size, beam_width):
    return s2s.BeamSearchDecoderState(
        cell_state=torch.zeros(batch_size, beam_width, 1), log_probs=log_probs,
        lengths=lengths, finished=finished, accumulated_attention_probs=())


def _logits(batch_size, beam_width, vocab_size, entries):
    logits_ = np.full([batch_size, beam_width, vocab_size], 0.0001)
    for index, value in entries.items():
        logits_[index] = value
    return torch.tensor(logits_, dtype=torch.float32)


def test_beam_step():
    """beam_search_decoder_test.test_beam_step"""
    batch_size, beam_width, vocab_size, end_token = 2, 3, 5, 0
    beam_state = _state(F.log_softmax(torch.ones(batch_size, beam_width), -1),
                        torch.full((batch_size, beam_width), 2, dtype=torch.int64),
                        torch.zeros(batch_size, beam_width, dtype=torch.bool),
                        batch_size, beam_width)
    logits = _logits(batch_size, beam_width, vocab_size, {
        (0, 0, 2): 1.9, (0, 0, 3): 2.1, (0, 1, 3): 3.1, (0, 1, 4): 0.9, (1, 0, 1): 0.5,
        (1, 1, 2): 2.7, (1, 2, 2): 10.0, (1, 2, 3): 0.2})
    log_probs = F.log_softmax(logits, -1)
    outputs, next_state = _beam_search_step(logits, beam_state, end_token, 0.6)
    np.testing.assert_equal(outputs.predicted_ids.numpy(), [[3, 3, 2], [2, 2, 1]])
    np.testing.assert_equal(outputs.parent_ids.numpy(), [[1, 0, 0], [2, 1, 0]])
    np.testing.assert_equal(next_state.lengths.numpy(), [[3, 3, 3], [3, 3, 3]])
    np.testing.assert_equal(next_state.finished.numpy(),
                            [[False, False, False], [False, False, False]])
    expected_log_probs = beam_state.log_probs.clone()
    expected_log_probs[0][0] += log_probs[0, 1, 3]
    expected_log_probs[0][1] += log_probs[0, 0, 3]
    expected_log_probs[0][2] += log_probs[0, 0, 2]
    expected_log_probs[1][0] += log_probs[1, 2, 2]
    expected_log_probs[1][1] += log_probs[1, 1, 2]
    expected_log_probs[1][2] += log_probs[1, 0, 1]
    np.testing.assert_equal(next_state.log_probs.numpy(), expected_log_probs.numpy())


def test_step_with_eos():
    """beam_search_decoder_test.test_step_with_eos"""
    batch_size, beam_width, vocab_size, end_token = 2, 3, 5, 0
    beam_state = _state(F.log_softmax(torch.ones(batch_size, beam_width), -1),
                        torch.tensor([[2, 1, 2], [2, 2, 1]], dtype=torch.int64),
                        torch.tensor([[False, True, False], [False, False, True]]),
                        batch_size, beam_width)
    logits = _logits(batch_size, beam_width, vocab_size, {
        (0, 0, 2): 1.9, (0, 0, 3): 2.1, (0, 1, 3): 3.1, (0, 1, 4): 0.9, (1, 0, 1): 0.5,
        (1, 1, 2): 5.7, (1, 2, 2): 1.0, (1, 2, 3): 0.2})
    log_probs = F.log_softmax(logits, -1)
    outputs, next_state = _beam_search_step(logits, beam_state, end_token, 0.6)
    np.testing.assert_equal(outputs.parent_ids.numpy(), [[1, 0, 0], [1, 2, 0]])
    np.testing.assert_equal(outputs.predicted_ids.numpy(), [[0, 3, 2], [2, 0, 1]])
    np.testing.assert_equal(next_state.lengths.numpy(), [[1, 3, 3], [3, 1, 3]])
    np.testing.assert_equal(next_state.finished.numpy(),
                            [[True, False, False], [False, True, False]])
    expected_log_probs = beam_state.log_probs.clone()
    expected_log_probs[0][1] += log_probs[0, 0, 3]
    expected_log_probs[0][2] += log_probs[0, 0, 2]
    expected_log_probs[1][0] += log_probs[1, 1, 2]
    expected_log_probs[1][2] += log_probs[1, 0, 1]
    np.testing.assert_equal(next_state.log_probs.numpy(), expected_log_probs.numpy())


def test_large_beam_step():
    """beam_search_decoder_test.test_large_beam_step"""
    batch_size, beam_width, vocab_size, end_token = 2, 8, 5, 0
    first = F.one_hot(torch.zeros(batch_size, dtype=torch.long), beam_width).bool()
    # as the decoder's initialize: hypothesis 0 alive at log-probability 0, the rest -inf
    log_probs = torch.where(first, torch.zeros(batch_size, beam_width),
                            torch.full((batch_size, beam_width), -np.inf))
    lengths = torch.zeros(batch_size, beam_width, dtype=torch.int64)
    lengths[:, 0] = 2
    beam_state = _state(log_probs, lengths, ~first, batch_size, beam_width)
    logits = _logits(batch_size, beam_width, vocab_size, {
        (0, 0, 2): 1.9, (0, 0, 3): 2.1, (0, 1, 3): 3.1, (0, 1, 4): 0.9, (1, 0, 1): 0.5,
        (1, 1, 2): 2.7, (1, 2, 2): 10.0, (1, 2, 3): 0.2})
    outputs, next_state = _beam_search_step(logits, beam_state, end_token, 0.6)
    assert outputs.predicted_ids[0, 0] == 3
    assert outputs.predicted_ids[0, 1] == 2
    assert outputs.predicted_ids[1, 0] == 1
    neg_inf = -np.inf
    np.testing.assert_equal(next_state.log_probs[:, -3:].numpy(),
                            [[neg_inf, neg_inf, neg_inf], [neg_inf, neg_inf, neg_inf]])
    np.testing.assert_equal((next_state.log_probs[:, :-3] > neg_inf).numpy(), True)
    np.testing.assert_equal((next_state.lengths[:, :-3] > 0).numpy(), True)
    np.testing.assert_equal(next_state.lengths[:, -3:].numpy(), [[0, 0, 0], [0, 0, 0]])


@pytest.mark.parametrize("output_all_scores", [True, False])
@pytest.mark.parametrize("with_alignment_history", [True, False])
@pytest.mark.parametrize("has_attention", [True, False])
@pytest.mark.parametrize("time_major", [True, False])
@pytest.mark.parametrize("cell_class", ["LSTMCell", "GRUCell"])
def test_beam_search_decoder(cell_class, time_major, has_attention, with_alignment_history,
                             output_all_scores):
    """beam_search_decoder_test.test_beam_search_decoder (upstream checks shapes and types
    only: its weights are random)"""
    encoder_sequence_length = np.array([3, 2, 3, 1, 1])
    batch_size, decoder_max_time, input_depth, cell_depth = 5, 4, 7, 9
    attention_depth, vocab_size = 6, 20
    end_token, start_token = vocab_size - 1, 0
    embedding_dim, maximum_iterations, beam_width = 50, 3, 3
    output_layer = Dense(vocab_size, use_bias=True, activation=None)
    embedding = torch.randn(vocab_size, embedding_dim)
    cell = rnn.LSTMCell(cell_depth) if cell_class == "LSTMCell" \
        else rnn.GRUCell(cell_depth, reset_after=True)
    if has_attention:
        attention_mechanism = s2s.BahdanauAttention(units=attention_depth)
        cell = s2s.AttentionWrapper(cell=cell, attention_mechanism=attention_mechanism,
                                    attention_layer_size=attention_depth,
                                    alignment_history=with_alignment_history)
        coverage_penalty_weight = 0.2
    else:
        coverage_penalty_weight = 0.0
    bsd = s2s.BeamSearchDecoder(cell=cell, beam_width=beam_width, output_layer=output_layer,
                                length_penalty_weight=0.0,
                                coverage_penalty_weight=coverage_penalty_weight,
                                output_time_major=time_major,
                                maximum_iterations=maximum_iterations,
                                output_all_scores=output_all_scores)

    def _beam_decode_from(memory, memory_sequence_length):
        batch_size_tensor = memory.shape[0]
        if has_attention:
            attention_mechanism.setup_memory(
                s2s.tile_batch(memory, multiplier=beam_width),
                memory_sequence_length=s2s.tile_batch(memory_sequence_length,
                                                      multiplier=beam_width))
        cell_state = cell.get_initial_state(batch_size=batch_size_tensor * beam_width,
                                            dtype=torch.float32)
        return bsd(embedding, start_tokens=torch.full((batch_size_tensor,), start_token),
                   end_token=end_token, initial_state=cell_state)

    memory = torch.randn(batch_size, decoder_max_time, input_depth)
    memory_sequence_length = torch.tensor(encoder_sequence_length, dtype=torch.int32)
    final_outputs, final_state, final_sequence_lengths = _beam_decode_from(
        memory, memory_sequence_length)

    def _t(shape):
        return (shape[1], shape[0]) + shape[2:] if time_major else shape

    assert isinstance(final_outputs, s2s.FinalBeamSearchDecoderOutput)
    assert isinstance(final_state, s2s.BeamSearchDecoderState)
    beam_search_decoder_output = final_outputs.beam_search_decoder_output
    max_sequence_length = int(final_sequence_lengths.max())
    assert _t((batch_size, max_sequence_length, beam_width)) == tuple(
        final_outputs.predicted_ids.shape)
    if output_all_scores:
        assert _t((batch_size, max_sequence_length, beam_width, vocab_size)) == tuple(
            beam_search_decoder_output.scores.shape)
        assert (beam_width, vocab_size) == tuple(bsd.output_size.scores)
    else:
        assert _t((batch_size, max_sequence_length, beam_width)) == tuple(
            beam_search_decoder_output.scores.shape)
        assert (beam_width,) == tuple(bsd.output_size.scores)
