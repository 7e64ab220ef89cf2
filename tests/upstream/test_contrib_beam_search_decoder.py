"""Port of TensorFlow r1.15
``tensorflow/contrib/seq2seq/python/kernel_tests/beam_search_decoder_test.py``.

The classes mirror upstream's.  Translations:

* ``beam_search_ops.gather_tree`` / ``beam_search_decoder.gather_tree_from_array`` are
  :func:`rnnkit.seq2seq.gather_tree` / :func:`rnnkit.seq2seq.gather_tree_from_array`;
* ``_check_batch_beam`` (TF's check that an array reordered along the beams is
  ``[batch * beam, ...]`` or ``[batch, beam, ...]``) is the shape check of
  ``gather_tree_from_array``, which does that reordering here (``ValueError`` for TF's
  ``InvalidArgumentError``);
* ``_mask_probs`` is rnnkit's private function of the same name and meaning;
* ``_beam_search_step(time, logits, next_cell_state, beam_state, ...)`` (a TF private
  function) is :meth:`rnnkit.seq2seq.BeamSearchDecoder.step` on a cell that emits the given
  logits and keeps its state: the same search step from the same beam state;
* ``BeamSearchDecoderV2`` is :class:`rnnkit.tfa.seq2seq.BeamSearchDecoder`, the Keras-style
  layer (tensorflow-addons' successor of contrib's V2 class).

Ids and lengths are int64 (README, differences).
"""

import numpy as np
import pytest
import torch

from rnnkit import layers, rnn, seq2seq, tfa
from rnnkit.seq2seq.beam_search import _mask_probs


def _t(x):
    return torch.as_tensor(np.asarray(x))


class TestGatherTree:
    """Upstream ``TestGatherTree``."""

    def test_gather_tree(self):
        """TestGatherTree.test_gather_tree"""
        # (max_time = 3, batch_size = 2, beam_width = 3), made batch-major and transposed
        predicted_ids = np.array(
            [[[1, 2, 3], [4, 5, 6], [7, 8, 9]], [[2, 3, 4], [5, 6, 7], [8, 9, 10]]],
            dtype=np.int32).transpose([1, 0, 2])
        parent_ids = np.array(
            [[[0, 0, 0], [0, 1, 1], [2, 1, 2]], [[0, 0, 0], [1, 2, 0], [2, 1, 1]]],
            dtype=np.int32).transpose([1, 0, 2])
        max_sequence_lengths = [3, 3]
        expected = np.array([[[2, 2, 2], [6, 5, 6], [7, 8, 9]],
                             [[2, 4, 4], [7, 6, 6], [8, 9, 10]]]).transpose([1, 0, 2])
        res = seq2seq.gather_tree(predicted_ids, parent_ids,
                                  max_sequence_lengths=max_sequence_lengths, end_token=11)
        np.testing.assert_array_equal(res.numpy(), expected)

    @staticmethod
    def _check_gather_tree_from_array(depth_ndims=0, merged_batch_beam=False):
        array = np.array(
            [[[1, 2, 3], [4, 5, 6], [7, 8, 9], [0, 0, 0]],
             [[2, 3, 4], [5, 6, 7], [8, 9, 10], [11, 12, 0]]]).transpose([1, 0, 2])
        parent_ids = np.array(
            [[[0, 0, 0], [0, 1, 1], [2, 1, 2], [-1, -1, -1]],
             [[0, 0, 0], [1, 1, 0], [2, 0, 1], [0, 1, 0]]]).transpose([1, 0, 2])
        expected_array = np.array(
            [[[2, 2, 2], [6, 5, 6], [7, 8, 9], [0, 0, 0]],
             [[2, 3, 2], [7, 5, 7], [8, 9, 8], [11, 12, 0]]]).transpose([1, 0, 2])
        sequence_length = [[3, 3, 3], [4, 4, 3]]

        array = torch.tensor(array, dtype=torch.float32)
        parent_ids = torch.tensor(parent_ids, dtype=torch.int32)
        expected_array = torch.tensor(expected_array, dtype=torch.float32)
        max_time, batch_size, beam_width = array.shape

        def _tile_in_depth(tensor):
            # higher ranks by stacking tensor and tensor + 1
            for _ in range(depth_ndims):
                tensor = torch.stack([tensor, tensor + 1], -1)
            return tensor

        if merged_batch_beam:
            array = array.reshape(max_time, batch_size * beam_width)
            expected_array = expected_array.reshape(max_time, batch_size * beam_width)
        if depth_ndims > 0:
            array = _tile_in_depth(array)
            expected_array = _tile_in_depth(expected_array)

        sorted_array = seq2seq.gather_tree_from_array(array, parent_ids, sequence_length)
        np.testing.assert_array_equal(sorted_array.numpy(), expected_array.numpy())

    def test_gather_tree_from_array_scalar(self):
        """TestGatherTree.test_gather_tree_from_array_scalar"""
        self._check_gather_tree_from_array()

    def test_gather_tree_from_array_1d(self):
        """TestGatherTree.test_gather_tree_from_array_1d"""
        self._check_gather_tree_from_array(depth_ndims=1)

    def test_gather_tree_from_array_1d_with_merged_batch_beam(self):
        """TestGatherTree.test_gather_tree_from_array_1d_with_merged_batch_beam"""
        self._check_gather_tree_from_array(depth_ndims=1, merged_batch_beam=True)

    def test_gather_tree_from_array_2d(self):
        """TestGatherTree.test_gather_tree_from_array_2d"""
        self._check_gather_tree_from_array(depth_ndims=2)

    def test_gather_tree_from_array_complex_trajectory(self):
        """TestGatherTree.test_gather_tree_from_array_complex_trajectory"""
        # max time 7, batch 1, beam 5
        array = np.expand_dims(np.array(
            [[[25, 12, 114, 89, 97]],
             [[9, 91, 64, 11, 162]],
             [[34, 34, 34, 34, 34]],
             [[2, 4, 2, 2, 4]],
             [[2, 3, 6, 2, 2]],
             [[2, 2, 2, 3, 2]],
             [[2, 2, 2, 2, 2]]]), -1)
        parent_ids = np.array(
            [[[0, 0, 0, 0, 0]],
             [[0, 0, 0, 0, 0]],
             [[0, 1, 2, 3, 4]],
             [[0, 0, 1, 2, 1]],
             [[0, 1, 1, 2, 3]],
             [[0, 1, 3, 1, 2]],
             [[0, 1, 2, 3, 4]]])
        expected_array = np.expand_dims(np.array(
            [[[25, 25, 25, 25, 25]],
             [[9, 9, 91, 9, 9]],
             [[34, 34, 34, 34, 34]],
             [[2, 4, 2, 4, 4]],
             [[2, 3, 6, 3, 6]],
             [[2, 2, 2, 3, 2]],
             [[2, 2, 2, 2, 2]]]), -1)
        sequence_length = [[4, 6, 4, 7, 6]]
        sorted_array = seq2seq.gather_tree_from_array(
            torch.tensor(array, dtype=torch.float32), torch.tensor(parent_ids, dtype=torch.int32),
            sequence_length)
        np.testing.assert_array_equal(sorted_array.numpy(), expected_array.astype(np.float32))


class TestArrayShapeChecks:
    """Upstream ``TestArrayShapeChecks``."""

    @staticmethod
    def _check_array_shape(shape, batch_size, beam_width, is_valid):
        t = torch.from_numpy(np.random.randn(*shape).astype(np.float32))
        parent_ids = torch.zeros(shape[0], batch_size, beam_width, dtype=torch.int64)
        lengths = torch.full((batch_size, beam_width), shape[0])
        if is_valid:
            seq2seq.gather_tree_from_array(t, parent_ids, lengths)
        else:
            with pytest.raises(ValueError, match="t must have shape"):
                seq2seq.gather_tree_from_array(t, parent_ids, lengths)

    def test_array_shape_dynamic_checks(self):
        """TestArrayShapeChecks.test_array_shape_dynamic_checks"""
        # upstream's (static shape, batch, beam, valid); the dynamic shapes are the same
        self._check_array_shape((8, 4, 5, 10), 4, 5, is_valid=True)
        self._check_array_shape((8, 20, 10), 4, 5, is_valid=True)
        self._check_array_shape((8, 21, 10), 4, 5, is_valid=False)
        self._check_array_shape((8, 4, 6, 10), 4, 5, is_valid=False)
        self._check_array_shape((8, 4), 4, 5, is_valid=False)


class TestEosMasking:
    """Upstream ``TestEosMasking``."""

    def test_eos_masking(self):
        """TestEosMasking.test_eos_masking"""
        probs = torch.tensor([
            [[-.2, -.2, -.2, -.2, -.2], [-.3, -.3, -.3, 3, 0], [5, 6, 0, 0, 0]],
            [[-.2, -.2, -.2, -.2, 0], [-.3, -.3, -.1, 3, 0], [5, 6, 3, 0, 0]],
        ])
        eos_token = 0
        previously_finished = torch.tensor([[0, 1, 0], [0, 1, 1]], dtype=torch.bool)
        masked = _mask_probs(probs, eos_token, previously_finished).numpy()
        probs = probs.numpy()

        np.testing.assert_array_equal(masked[0][0], probs[0][0])
        np.testing.assert_array_equal(masked[0][2], probs[0][2])
        np.testing.assert_array_equal(masked[1][0], probs[1][0])
        assert masked[0][1][0] == 0
        assert masked[1][1][0] == 0
        assert masked[1][2][0] == 0
        for i in range(1, 5):
            for b, k in ((0, 1), (1, 1), (1, 2)):
                np.testing.assert_allclose(masked[b][k][i], np.finfo("float32").min)


class _FixedLogits(rnn.RNNCell):
    """Emits the given ``[batch * beam, vocab]`` logits and keeps its state: the decoder's
    step then is TF's ``_beam_search_step`` on those logits."""

    def __init__(self, logits: torch.Tensor):
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


def _beam_search_step(logits, beam_state, beam_width, end_token, length_penalty_weight):
    """One search step of a :class:`BeamSearchDecoder` from ``beam_state``."""
    batch_size, _, vocab_size = logits.shape
    cell = _FixedLogits(logits.reshape(batch_size * beam_width, vocab_size))
    decoder = seq2seq.BeamSearchDecoder(
        cell, embedding=torch.zeros(vocab_size, 1),
        start_tokens=torch.zeros(batch_size, dtype=torch.long), end_token=end_token,
        initial_state=torch.zeros(batch_size * beam_width, 1), beam_width=beam_width,
        length_penalty_weight=length_penalty_weight, coverage_penalty_weight=0.0)
    inputs = torch.zeros(batch_size, beam_width, 1)
    outputs, next_state, _, _ = decoder.step(2, inputs, beam_state)
    return outputs, next_state


def _logits(batch_size, beam_width, vocab_size, entries):
    logits = np.full([batch_size, beam_width, vocab_size], 0.0001)
    for index, value in entries.items():
        logits[index] = value
    return torch.tensor(logits, dtype=torch.float32)


_STEP_LOGITS = {(0, 0, 2): 1.9, (0, 0, 3): 2.1, (0, 1, 3): 3.1, (0, 1, 4): 0.9,
                (1, 0, 1): 0.5, (1, 1, 2): 2.7, (1, 2, 2): 10.0, (1, 2, 3): 0.2}


class TestBeamStep:
    """Upstream ``TestBeamStep``: batch 2, beam 3, vocabulary 5, end token 0, length
    penalty 0.6, no coverage penalty."""

    batch_size, beam_width, vocab_size, end_token = 2, 3, 5, 0
    length_penalty_weight = 0.6

    def _state(self, lengths, finished):
        b, k = self.batch_size, self.beam_width
        return seq2seq.BeamSearchDecoderState(
            cell_state=torch.zeros(b, k, 1),
            log_probs=torch.log_softmax(torch.ones(b, k), -1),
            finished=finished, lengths=lengths, accumulated_attention_probs=())

    def test_step(self):
        """TestBeamStep.test_step"""
        b, k = self.batch_size, self.beam_width
        beam_state = self._state(torch.full((b, k), 2, dtype=torch.int64),
                                 torch.zeros(b, k, dtype=torch.bool))
        logits = _logits(b, k, self.vocab_size, _STEP_LOGITS)
        log_probs = torch.log_softmax(logits, -1).numpy()
        outputs, next_state = _beam_search_step(logits, beam_state, k, self.end_token,
                                                self.length_penalty_weight)

        np.testing.assert_array_equal(outputs.predicted_ids.numpy(), [[3, 3, 2], [2, 2, 1]])
        np.testing.assert_array_equal(outputs.parent_ids.numpy(), [[1, 0, 0], [2, 1, 0]])
        np.testing.assert_array_equal(next_state.lengths.numpy(), [[3, 3, 3], [3, 3, 3]])
        np.testing.assert_array_equal(next_state.finished.numpy(),
                                      [[False, False, False], [False, False, False]])
        state_log_probs = beam_state.log_probs.numpy()
        expected = [state_log_probs[0][[1, 0, 0]], state_log_probs[1][[2, 1, 0]]]
        expected[0][0] += log_probs[0, 1, 3]
        expected[0][1] += log_probs[0, 0, 3]
        expected[0][2] += log_probs[0, 0, 2]
        expected[1][0] += log_probs[1, 2, 2]
        expected[1][1] += log_probs[1, 1, 2]
        expected[1][2] += log_probs[1, 0, 1]
        np.testing.assert_array_equal(next_state.log_probs.numpy(), np.array(expected))

    def test_step_with_eos(self):
        """TestBeamStep.test_step_with_eos"""
        b, k = self.batch_size, self.beam_width
        beam_state = self._state(
            torch.tensor([[2, 1, 2], [2, 2, 1]], dtype=torch.int64),
            torch.tensor([[False, True, False], [False, False, True]]))
        entries = dict(_STEP_LOGITS)
        entries[(1, 1, 2)] = 5.7  # upstream: "why does this not work when it's 2.7?"
        entries[(1, 2, 2)] = 1.0
        logits = _logits(b, k, self.vocab_size, entries)
        log_probs = torch.log_softmax(logits, -1).numpy()
        outputs, next_state = _beam_search_step(logits, beam_state, k, self.end_token,
                                                self.length_penalty_weight)

        np.testing.assert_array_equal(outputs.parent_ids.numpy(), [[1, 0, 0], [1, 2, 0]])
        np.testing.assert_array_equal(outputs.predicted_ids.numpy(), [[0, 3, 2], [2, 0, 1]])
        np.testing.assert_array_equal(next_state.lengths.numpy(), [[1, 3, 3], [3, 1, 3]])
        np.testing.assert_array_equal(next_state.finished.numpy(),
                                      [[True, False, False], [False, True, False]])
        state_log_probs = beam_state.log_probs.numpy()
        expected = [state_log_probs[0][[1, 0, 0]], state_log_probs[1][[1, 2, 0]]]
        expected[0][1] += log_probs[0, 0, 3]
        expected[0][2] += log_probs[0, 0, 2]
        expected[1][0] += log_probs[1, 1, 2]
        expected[1][2] += log_probs[1, 0, 1]
        np.testing.assert_array_equal(next_state.log_probs.numpy(), np.array(expected))


class TestLargeBeamStep:
    """Upstream ``TestLargeBeamStep``: a beam (8) wider than the vocabulary (5)."""

    batch_size, beam_width, vocab_size, end_token = 2, 8, 5, 0
    length_penalty_weight = 0.6

    def test_step(self):
        """TestLargeBeamStep.test_step"""
        b, k = self.batch_size, self.beam_width
        # as BeamSearchDecoder.initialize makes it: beam 0 alive (log-prob 0), the others
        # finished with log-prob -inf and length 0
        first = torch.zeros(b, k, dtype=torch.bool)
        first[:, 0] = True
        log_probs = torch.where(first, torch.zeros(b, k), torch.full((b, k), -np.inf))
        lengths = torch.zeros(b, k, dtype=torch.int64)
        lengths[:, 0] = 2
        beam_state = seq2seq.BeamSearchDecoderState(
            cell_state=torch.zeros(b, k, 1), log_probs=log_probs, finished=~first,
            lengths=lengths, accumulated_attention_probs=())
        logits = _logits(b, k, self.vocab_size, _STEP_LOGITS)
        outputs, next_state = _beam_search_step(logits, beam_state, k, self.end_token,
                                                self.length_penalty_weight)

        assert outputs.predicted_ids[0, 0] == 3
        assert outputs.predicted_ids[0, 1] == 2
        assert outputs.predicted_ids[1, 0] == 1
        neg_inf = -np.inf
        np.testing.assert_array_equal(next_state.log_probs[:, -3:].numpy(),
                                      [[neg_inf] * 3, [neg_inf] * 3])
        assert (next_state.log_probs[:, :-3] > neg_inf).all()
        assert (next_state.lengths[:, :-3] > 0).all()
        np.testing.assert_array_equal(next_state.lengths[:, -3:].numpy(), [[0] * 3, [0] * 3])


# -- decoding -----------------------------------------------------------------------------

ENCODER_SEQUENCE_LENGTH = np.array([3, 2, 3, 1, 1])
DECODER_SEQUENCE_LENGTH = np.array([2, 0, 1, 2, 3])
BATCH, DECODER_MAX_TIME, INPUT_DEPTH, CELL_DEPTH, ATTENTION_DEPTH = 5, 4, 7, 9, 6
VOCAB, EMBEDDING_DIM, BEAM = 20, 50, 3
END_TOKEN, START_TOKEN = VOCAB - 1, 0
MAX_OUT = int(max(DECODER_SEQUENCE_LENGTH))


def _beam_cell(has_attention, with_alignment_history):
    """Upstream's cell and initial cell state: an LSTMCell, or an AttentionWrapper over it
    attending tiled memory with the tiled LSTM zero state as its cell state.  Returns
    ``(cell, cell_state, coverage_penalty_weight)``."""
    cell = rnn.LSTMCell(CELL_DEPTH)
    initial_state = cell.zero_state(BATCH, torch.float32)
    coverage_penalty_weight = 0.0
    if has_attention:
        coverage_penalty_weight = 0.2
        inputs = torch.from_numpy(
            np.random.randn(BATCH, DECODER_MAX_TIME, INPUT_DEPTH).astype(np.float32))
        tiled_inputs = seq2seq.tile_batch(inputs, multiplier=BEAM)
        tiled_sequence_length = seq2seq.tile_batch(ENCODER_SEQUENCE_LENGTH, multiplier=BEAM)
        attention_mechanism = seq2seq.BahdanauAttention(
            num_units=ATTENTION_DEPTH, memory=tiled_inputs,
            memory_sequence_length=tiled_sequence_length)
        initial_state = seq2seq.tile_batch(initial_state, multiplier=BEAM)
        cell = seq2seq.AttentionWrapper(
            cell=cell, attention_mechanism=attention_mechanism,
            attention_layer_size=ATTENTION_DEPTH, alignment_history=with_alignment_history)
    cell_state = cell.zero_state(dtype=torch.float32, batch_size=BATCH * BEAM)
    if has_attention:
        cell_state = cell_state.clone(cell_state=initial_state)
    return cell, cell_state, coverage_penalty_weight


def _check_decode_shapes(final_outputs, final_state, final_sequence_lengths, time_major,
                         expected_time=None):
    def _tm(shape):
        return (shape[1], shape[0]) + shape[2:] if time_major else shape

    assert isinstance(final_outputs, seq2seq.FinalBeamSearchDecoderOutput)
    assert isinstance(final_state, seq2seq.BeamSearchDecoderState)
    max_sequence_length = int(final_sequence_lengths.max())
    if expected_time is not None:  # upstream's eager-mode static shape
        assert max_sequence_length == expected_time
    raw = final_outputs.beam_search_decoder_output
    # a smoke test, as upstream (the weights are random)
    assert tuple(raw.scores.shape) == _tm((BATCH, max_sequence_length, BEAM))
    assert tuple(raw.predicted_ids.shape) == _tm((BATCH, max_sequence_length, BEAM))
    assert tuple(final_outputs.predicted_ids.shape) == _tm((BATCH, max_sequence_length, BEAM))
    assert torch.isfinite(raw.scores).all()


class TestBeamSearchDecoder:
    """Upstream ``BeamSearchDecoderTest`` (TF 1.x ``BeamSearchDecoder`` + ``dynamic_decode``)."""

    @staticmethod
    def _check_dynamic_decode_rnn(time_major, has_attention, with_alignment_history=False):
        output_layer = layers.Dense(VOCAB, use_bias=True, activation=None)
        embedding = np.random.randn(VOCAB, EMBEDDING_DIM).astype(np.float32)
        cell, cell_state, coverage_penalty_weight = _beam_cell(has_attention,
                                                               with_alignment_history)
        bsd = seq2seq.BeamSearchDecoder(
            cell=cell, embedding=embedding,
            start_tokens=torch.full((BATCH,), START_TOKEN, dtype=torch.int32),
            end_token=END_TOKEN, initial_state=cell_state, beam_width=BEAM,
            output_layer=output_layer, length_penalty_weight=0.0,
            coverage_penalty_weight=coverage_penalty_weight)
        final_outputs, final_state, final_sequence_lengths = seq2seq.dynamic_decode(
            bsd, output_time_major=time_major, maximum_iterations=MAX_OUT)
        _check_decode_shapes(final_outputs, final_state, final_sequence_lengths, time_major)

    def test_dynamic_decode_rnn_batch_major_no_attention(self):
        """BeamSearchDecoderTest.testDynamicDecodeRNNBatchMajorNoAttention"""
        self._check_dynamic_decode_rnn(time_major=False, has_attention=False)

    def test_dynamic_decode_rnn_batch_major_yes_attention(self):
        """BeamSearchDecoderTest.testDynamicDecodeRNNBatchMajorYesAttention"""
        self._check_dynamic_decode_rnn(time_major=False, has_attention=True)

    def test_dynamic_decode_rnn_batch_major_yes_attention_with_alignment_history(self):
        """BeamSearchDecoderTest.testDynamicDecodeRNNBatchMajorYesAttentionWithAlignmentHistory"""
        self._check_dynamic_decode_rnn(time_major=False, has_attention=True,
                                       with_alignment_history=True)


class TestBeamSearchDecoderV2:
    """Upstream ``BeamSearchDecoderV2Test`` (the Keras-style layer called with the batch's
    tensors): :class:`rnnkit.tfa.seq2seq.BeamSearchDecoder`."""

    @staticmethod
    def _check_dynamic_decode_rnn(time_major, has_attention, with_alignment_history=False):
        output_layer = layers.Dense(VOCAB, use_bias=True, activation=None)
        embedding = np.random.randn(VOCAB, EMBEDDING_DIM).astype(np.float32)
        cell, cell_state, coverage_penalty_weight = _beam_cell(has_attention,
                                                               with_alignment_history)
        bsd = tfa.seq2seq.BeamSearchDecoder(
            cell=cell, beam_width=BEAM, output_layer=output_layer, length_penalty_weight=0.0,
            coverage_penalty_weight=coverage_penalty_weight, output_time_major=time_major,
            maximum_iterations=MAX_OUT)
        final_outputs, final_state, final_sequence_lengths = bsd(
            embedding, start_tokens=torch.full((BATCH,), START_TOKEN, dtype=torch.int32),
            end_token=END_TOKEN, initial_state=cell_state)
        # upstream (eager): the outputs span maximum_iterations = 3 steps
        _check_decode_shapes(final_outputs, final_state, final_sequence_lengths, time_major,
                             expected_time=MAX_OUT)

    def test_dynamic_decode_rnn_batch_major_no_attention(self):
        """BeamSearchDecoderV2Test.testDynamicDecodeRNNBatchMajorNoAttention"""
        self._check_dynamic_decode_rnn(time_major=False, has_attention=False)

    def test_dynamic_decode_rnn_batch_major_yes_attention(self):
        """BeamSearchDecoderV2Test.testDynamicDecodeRNNBatchMajorYesAttention"""
        self._check_dynamic_decode_rnn(time_major=False, has_attention=True)

    def test_dynamic_decode_rnn_batch_major_yes_attention_with_alignment_history(self):
        """BeamSearchDecoderV2Test.testDynamicDecodeRNNBatchMajorYesAttentionWithAlignmentHistory"""
        self._check_dynamic_decode_rnn(time_major=False, has_attention=True,
                                       with_alignment_history=True)
