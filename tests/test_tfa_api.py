"""``rnnkit.tfa.seq2seq``: tensorflow-addons' sampler/decoder-layer API gives exactly what
the TF 1.x API (``rnnkit.seq2seq``, checked against TF and tfa values elsewhere) gives."""

import functools

import numpy as np
import pytest
import torch
from torch import nn

from rnnkit import nest, rnn, seq2seq, tfa

B, T, V, D, H, END = 3, 6, 9, 5, 7, 2


def assert_same(got, want):
    for a, b in zip(nest.flatten(got), nest.flatten(want), strict=True):
        if not isinstance(a, torch.Tensor):
            a, b = a.stack(), b.stack()
        assert a.shape == b.shape and a.dtype == b.dtype
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.fixture
def model():
    torch.manual_seed(0)
    cell = rnn.LSTMCell(H, input_size=D)
    return dict(cell=cell, out=nn.Linear(H, V), emb=torch.randn(V, D),
                state=cell.zero_state(B, torch.float32), inputs=torch.randn(B, T, D),
                lengths=torch.tensor([6, 3, 1]), start=torch.tensor([0, 4, 1]))


def tf1(m, helper, **kw):
    decoder = seq2seq.BasicDecoder(m["cell"], helper, m["state"], m["out"])
    return seq2seq.dynamic_decode(decoder, **kw)


def test_training_sampler_with_lengths_a_mask_or_nothing(model):
    m = model
    want = tf1(m, seq2seq.TrainingHelper(m["inputs"], m["lengths"]))
    decoder = tfa.seq2seq.BasicDecoder(m["cell"], tfa.seq2seq.TrainingSampler(),
                                       output_layer=m["out"])
    assert_same(decoder(m["inputs"], initial_state=m["state"], sequence_length=m["lengths"]),
                want)
    mask = torch.arange(T)[None, :] < m["lengths"][:, None]
    assert_same(decoder(m["inputs"], initial_state=m["state"], mask=mask), want)
    full = tf1(m, seq2seq.TrainingHelper(m["inputs"], torch.full((B,), T)))
    assert_same(decoder(m["inputs"], initial_state=m["state"]), full)
    # time-major, and the decoder's own settings (here output_time_major)
    tm = tfa.seq2seq.BasicDecoder(m["cell"], tfa.seq2seq.TrainingSampler(time_major=True),
                                  output_layer=m["out"], output_time_major=True)
    out, _, _ = tm(m["inputs"].transpose(0, 1), initial_state=m["state"],
                   sequence_length=m["lengths"])
    assert_same(out.rnn_output.transpose(0, 1), want[0].rnn_output)
    with pytest.raises(ValueError, match="mask must be right-padded"):
        decoder(m["inputs"], initial_state=m["state"], mask=mask.flip(1))
    with pytest.raises(ValueError, match="give sequence_length or mask, not both"):
        decoder(m["inputs"], initial_state=m["state"], mask=mask, sequence_length=m["lengths"])
    with pytest.raises(ValueError, match="BasicDecoder needs initial_state="):
        decoder(m["inputs"])


def test_embedding_samplers_decode_as_the_tf1_helpers(model):
    m = model
    greedy = tfa.seq2seq.BasicDecoder(m["cell"], tfa.seq2seq.GreedyEmbeddingSampler(),
                                      output_layer=m["out"], maximum_iterations=8)
    want = tf1(m, seq2seq.GreedyEmbeddingHelper(m["emb"], m["start"], END),
               maximum_iterations=8)
    assert_same(greedy(m["emb"], initial_state=m["state"], start_tokens=m["start"],
                       end_token=END), want)
    by_fn = tfa.seq2seq.BasicDecoder(
        m["cell"], tfa.seq2seq.GreedyEmbeddingSampler(embedding_fn=lambda ids: m["emb"][ids]),
        output_layer=m["out"], maximum_iterations=8)
    # a function is applied to each step's ids; the table's rows are projected once, so
    # the floats may differ in the last bit
    got = by_fn(None, initial_state=m["state"], start_tokens=m["start"], end_token=END)
    assert torch.equal(got[0].sample_id, want[0].sample_id)
    torch.testing.assert_close(got[0].rnn_output, want[0].rnn_output)
    sample = tfa.seq2seq.BasicDecoder(
        m["cell"], tfa.seq2seq.SampleEmbeddingSampler(softmax_temperature=0.7, seed=5),
        output_layer=m["out"], maximum_iterations=8)
    want = tf1(m, seq2seq.SampleEmbeddingHelper(m["emb"], m["start"], END,
                                                softmax_temperature=0.7, seed=5),
               maximum_iterations=8)
    assert_same(sample(m["emb"], initial_state=m["state"], start_tokens=m["start"],
                       end_token=END), want)
    with pytest.raises(ValueError, match="GreedyEmbeddingSampler.initialize needs "
                                         "start_tokens"):
        greedy(m["emb"], initial_state=m["state"], end_token=END)


def test_scheduled_samplers_draw_as_the_tf1_helpers(model):
    m = model
    sampler = tfa.seq2seq.ScheduledEmbeddingTrainingSampler(0.5, seed=3, scheduling_seed=4)
    decoder = tfa.seq2seq.BasicDecoder(m["cell"], sampler, output_layer=m["out"])
    want = tf1(m, seq2seq.ScheduledEmbeddingTrainingHelper(
        m["inputs"], m["lengths"], m["emb"], 0.5, seed=3, scheduling_seed=4))
    assert_same(decoder(m["inputs"], initial_state=m["state"], sequence_length=m["lengths"],
                        embedding=m["emb"]), want)
    with pytest.raises(ValueError, match="needs embedding= at initialize"):
        decoder(m["inputs"], initial_state=m["state"])
    cell = rnn.GRUCell(D, input_size=2 * D)
    aux = torch.randn(B, T, D)
    sampler = tfa.seq2seq.ScheduledOutputTrainingSampler(0.5, seed=7)
    decoder = tfa.seq2seq.BasicDecoder(cell, sampler)
    got = decoder(m["inputs"], initial_state=cell.zero_state(B, torch.float32),
                  sequence_length=m["lengths"], auxiliary_inputs=aux)
    want = seq2seq.dynamic_decode(seq2seq.BasicDecoder(
        cell, seq2seq.ScheduledOutputTrainingHelper(m["inputs"], m["lengths"], 0.5, seed=7,
                                                    auxiliary_inputs=aux),
        cell.zero_state(B, torch.float32)))
    assert_same(got, want)


def test_inference_and_custom_samplers():
    cell = rnn.GRUCell(D, input_size=D)
    state = cell.zero_state(B, torch.float32)
    start = torch.randn(B, D)

    def end_fn(x):
        return x.sum(-1) > 1.0

    sampler = tfa.seq2seq.InferenceSampler(torch.tanh, [D], torch.float32, end_fn)
    got = tfa.seq2seq.BasicDecoder(cell, sampler, maximum_iterations=5)(
        start, initial_state=state)
    want = seq2seq.dynamic_decode(seq2seq.BasicDecoder(
        cell, seq2seq.InferenceHelper(torch.tanh, [D], torch.float32, start, end_fn), state),
        maximum_iterations=5)
    assert_same(got, want)

    def initialize_fn(inputs, scale=1.0):
        return torch.zeros(B, dtype=torch.bool), inputs * scale

    def sample_fn(time, outputs, state):
        return outputs.argmax(-1)

    def next_inputs_fn(time, outputs, state, sample_ids):
        return sample_ids == 0, torch.tanh(outputs), state

    custom = tfa.seq2seq.CustomSampler(initialize_fn, sample_fn, next_inputs_fn)
    got = tfa.seq2seq.BasicDecoder(cell, custom, maximum_iterations=4)(
        start, initial_state=state, scale=2.0)
    want = seq2seq.dynamic_decode(seq2seq.BasicDecoder(cell, seq2seq.CustomHelper(
        lambda: initialize_fn(start, 2.0), sample_fn, next_inputs_fn), state),
        maximum_iterations=4)
    assert_same(got, want)


def test_a_sampler_steps_by_hand_as_tfa_documents(model):
    # tfa's Sampler docstring loop: initialize, then cell / sample / next_inputs
    m = model
    sampler = tfa.seq2seq.TrainingSampler()
    with pytest.raises(ValueError, match="TrainingSampler is used before initialize"):
        sampler.batch_size  # noqa: B018
    finished, x = sampler.initialize(m["inputs"], sequence_length=m["lengths"])
    assert sampler.batch_size == B and not finished.any()
    state, outs = m["state"], []
    for t in range(T):
        out, state = m["cell"](x, state)
        logits = m["out"](out)
        ids = sampler.sample(t, logits, state)
        outs.append(logits)
        finished, x, state = sampler.next_inputs(t, logits, state, ids)
        if finished.all():
            break
    want = tf1(m, seq2seq.TrainingHelper(m["inputs"], m["lengths"]))[0].rnn_output
    torch.testing.assert_close(torch.stack(outs, 1), want)


def test_beam_search_decoder_with_tfa_attention(model):
    m = model
    mem, mem_len = torch.randn(B, 4, H), torch.tensor([4, 2, 3])
    torch.manual_seed(1)
    mech = tfa.seq2seq.BahdanauAttention(units=H, memory_sequence_length=None)
    mech.setup_memory(seq2seq.tile_batch(mem, 3), seq2seq.tile_batch(mem_len, 3))
    cell = tfa.seq2seq.AttentionWrapper(rnn.LSTMCell(H), mech,
                                        attention_layer_size=H)
    init = cell.get_initial_state(batch_size=B * 3, dtype=torch.float32)
    decoder = tfa.seq2seq.BeamSearchDecoder(cell, 3, output_layer=m["out"],
                                            length_penalty_weight=0.5, maximum_iterations=7)
    got = decoder(m["emb"], start_tokens=m["start"], end_token=END, initial_state=init)
    want = seq2seq.dynamic_decode(seq2seq.BeamSearchDecoder(
        cell, m["emb"], m["start"], END, init, 3, output_layer=m["out"],
        length_penalty_weight=0.5), maximum_iterations=7)
    assert_same(got, want)
    # tfa's dynamic_decode with the init arguments a decoder call passes
    again = tfa.seq2seq.dynamic_decode(
        decoder, maximum_iterations=7, decoder_init_input=m["emb"],
        decoder_init_kwargs=dict(start_tokens=m["start"], end_token=END, initial_state=init))
    assert_same(again, want)
    scores = tfa.seq2seq.BeamSearchDecoder(cell, 3, output_layer=m["out"],
                                           output_all_scores=True, maximum_iterations=7)(
        m["emb"], start_tokens=m["start"], end_token=END, initial_state=init)
    assert scores[0].beam_search_decoder_output.scores.shape[-2:] == (3, V)
    assert_same(scores, seq2seq.dynamic_decode(seq2seq.BeamSearchDecoder(
        cell, m["emb"], m["start"], END, init, 3, output_layer=m["out"],
        output_all_scores=True), maximum_iterations=7))
    with pytest.raises(ValueError, match="BeamSearchDecoder needs end_token="):
        decoder(m["emb"], start_tokens=m["start"], initial_state=init)
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['beam'\]"):
        tfa.seq2seq.dynamic_decode(decoder, beam=3)


def test_training_flag_sets_the_mode_for_the_call(model):
    m = model
    cell = rnn.DropoutWrapper(m["cell"], output_keep_prob=0.5)
    decoder = tfa.seq2seq.BasicDecoder(cell, tfa.seq2seq.TrainingSampler(),
                                       output_layer=m["out"])
    cell.train()
    evaluated = decoder(m["inputs"], initial_state=m["state"], training=False)
    assert cell.training  # restored after the call
    cell.eval()
    assert_same(evaluated, decoder(m["inputs"], initial_state=m["state"]))
    torch.manual_seed(0)
    trained = decoder(m["inputs"], initial_state=m["state"], training=True)
    assert not cell.training
    assert torch.isfinite(trained[0].rnn_output).all()  # (NaN would differ from anything)
    assert not torch.equal(trained[0].rnn_output, evaluated[0].rnn_output)
    with pytest.raises(TypeError, match="training must be a bool"):
        decoder(m["inputs"], initial_state=m["state"], training="no")


def test_attention_mechanisms_take_tfa_arguments():
    mem = torch.randn(2, 5, 4)
    q = torch.randn(2, 3)
    for cls in (tfa.seq2seq.BahdanauAttention, tfa.seq2seq.LuongAttention):
        # the same seed and the same order of draws (the query layer is sized by the first
        # query) give the same weights
        torch.manual_seed(0)
        soft = cls(units=3, memory=mem)
        state = soft.initial_state(2)
        aligned, _ = soft(q, state)
        torch.manual_seed(0)
        hard = cls(3, mem, probability_fn="hardmax")
        torch.testing.assert_close(aligned.sum(-1), torch.ones(2))
        torch.testing.assert_close(hard([q, state])[0], seq2seq.hardmax(soft.score(q, state)))
        with pytest.raises(ValueError, match='probability_fn must be "softmax", "hardmax"'):
            cls(3, mem, probability_fn="sparsemax")
    # tfa takes any Keras initializer for attention_v (rnnkit: rnnkit.initializers' kinds);
    # this test used to expect glorot_uniform only, which tfa 0.23 does not require
    ones = tfa.seq2seq.BahdanauAttention(3, mem, kernel_initializer="ones")
    assert torch.equal(ones.attention_v.detach(), torch.ones(3))
    fixed = tfa.seq2seq.BahdanauMonotonicAttention(
        3, mem, kernel_initializer=functools.partial(nn.init.constant_, val=0.25))
    assert torch.equal(fixed.attention_v.detach(), torch.full((3,), 0.25))
    torch.manual_seed(0)
    he = tfa.seq2seq.BahdanauAttention(3, mem, kernel_initializer="he_normal")
    assert torch.isfinite(he.attention_v).all() and he.attention_v.abs().sum() > 0
    with pytest.raises(ValueError, match="kernel_initializer: unknown initializer 'nope'"):
        tfa.seq2seq.BahdanauAttention(3, mem, kernel_initializer="nope")
    mono = tfa.seq2seq.BahdanauMonotonicAttention(3, mem, mode="hard")
    assert isinstance(mono, seq2seq.BahdanauMonotonicAttention)
    assert isinstance(tfa.seq2seq.LuongMonotonicAttention(3, mem), seq2seq.AttentionMechanism)


def test_sequence_loss_layer_and_gather_tree_from_array():
    logits, ids = torch.randn(2, 4, 5), torch.randint(5, (2, 4))
    weights = torch.tensor([[1.0, 1, 0, 0], [1, 1, 1, 1]])
    loss = tfa.seq2seq.SequenceLoss()
    # tfa's defaults: the weighted sum over the number of non-zero weights
    want = seq2seq.sequence_loss(logits, ids, weights, average_across_timesteps=False,
                                 average_across_batch=False, sum_over_timesteps=True,
                                 sum_over_batch=True)
    torch.testing.assert_close(loss(ids, logits, weights), want)
    torch.testing.assert_close(loss(ids, logits), seq2seq.sequence_loss(
        logits, ids, torch.ones(2, 4)))
    # steps x beams: value 10 * step + slot; final hypothesis 1 descends from slot 0 at
    # step 1 and slot 1 at step 0; hypothesis 0 has length 1 (its own slots after that)
    values = (10 * torch.arange(3)[:, None, None] + torch.arange(2)).float()  # [3, 1, 2]
    parents = torch.tensor([[[0, 0]], [[1, 0]], [[1, 0]]])
    got = tfa.seq2seq.gather_tree_from_array(values, parents, torch.tensor([[1, 3]]))
    assert got[:, 0].tolist() == [[0, 1], [10, 10], [20, 21]]
    merged = tfa.seq2seq.gather_tree_from_array(values.reshape(3, 2, 1), parents,
                                                torch.tensor([[1, 3]]))
    assert torch.equal(merged.reshape(3, 1, 2), got)
    with pytest.raises(ValueError, match=r"sequence_length must have shape \(1, 2\)"):
        tfa.seq2seq.gather_tree_from_array(values, parents, torch.tensor([3]))


def test_lengths_without_memory_are_not_dropped_silently():
    # tfa's NMT tutorial passes memory_sequence_length with memory=None and binds the
    # memory later; tfa ignores those lengths, and so does rnnkit, saying so
    with pytest.warns(UserWarning, match="memory_sequence_length without memory is ignored"):
        mech = tfa.seq2seq.LuongAttention(4, None, 3 * [5])
    mech.setup_memory(torch.randn(3, 5, 4), [5, 2, 1])
    q = torch.randn(3, 4)
    aligned, _ = mech(q, mech.initial_state(3))
    assert aligned[1, 2:].abs().sum() == 0 and aligned[2, 1:].abs().sum() == 0
    assert tfa.seq2seq.sampler.TrainingSampler is tfa.seq2seq.TrainingSampler


class EveryOtherStepSampler(tfa.seq2seq.Sampler):
    """A sampler written as tfa documents it: teacher forcing at even steps, the argmax's
    embedding at odd ones."""

    def __init__(self, embedding):
        self.embedding = embedding

    def initialize(self, inputs, sequence_length=None):
        self.inputs, self.lengths = inputs, torch.as_tensor(sequence_length)
        self._batch = inputs.shape[0]
        return self.lengths == 0, inputs[:, 0]

    def sample(self, time, outputs, state):
        return outputs.argmax(-1)

    def next_inputs(self, time, outputs, state, sample_ids):
        t = time + 1
        finished = t >= self.lengths
        if t >= self.inputs.shape[1]:
            return finished, torch.zeros_like(self.inputs[:, 0]), state
        fed = self.inputs[:, t] if t % 2 == 0 else self.embedding[sample_ids]
        return finished, fed, state

    @property
    def batch_size(self):
        return self._batch

    @property
    def sample_ids_shape(self):
        return torch.Size([])

    @property
    def sample_ids_dtype(self):
        return torch.int64


def test_a_sampler_of_ones_own_runs_in_the_decoders(model):
    m = model
    own = EveryOtherStepSampler(m["emb"])
    got = tfa.seq2seq.BasicDecoder(m["cell"], own, output_layer=m["out"])(
        m["inputs"], initial_state=m["state"], sequence_length=m["lengths"])
    twin = EveryOtherStepSampler(m["emb"])
    want = tf1(m, seq2seq.CustomHelper(
        lambda: twin.initialize(m["inputs"], m["lengths"]), twin.sample, twin.next_inputs))
    assert_same(got, want)

    class Incomplete(tfa.seq2seq.Sampler):
        def initialize(self, inputs):
            return torch.zeros(B, dtype=torch.bool), inputs

    with pytest.raises(NotImplementedError, match="Incomplete must define sample, "
                                                  "next_inputs, batch_size"):
        tfa.seq2seq.BasicDecoder(m["cell"], Incomplete())(m["inputs"][:, 0],
                                                          initial_state=m["state"])


class TinyGreedyDecoder(tfa.seq2seq.BaseDecoder):
    """A decoder written as tfa documents it: initialize / step / sizes, nothing more."""

    def __init__(self, cell, embedding, projection, **kwargs):
        super().__init__(**kwargs)
        self.cell, self.embedding, self.projection = cell, embedding, projection

    @property
    def batch_size(self):
        return self._batch

    @property
    def output_size(self):
        return seq2seq.BasicDecoderOutput(torch.Size([V]), torch.Size([]))

    @property
    def output_dtype(self):
        return seq2seq.BasicDecoderOutput(torch.float32, torch.int64)

    def initialize(self, start_tokens, initial_state=None, end_token=None):
        self._batch, self.end_token = len(start_tokens), end_token
        finished = torch.zeros(self._batch, dtype=torch.bool)
        return finished, self.embedding[start_tokens], initial_state

    def step(self, time, inputs, state, training=None):
        out, state = self.cell(inputs, state)
        logits = self.projection(out)
        ids = logits.argmax(-1)
        return (seq2seq.BasicDecoderOutput(logits, ids), state, self.embedding[ids],
                ids == self.end_token)


def test_a_decoder_of_ones_own_runs_through_dynamic_decode(model):
    m = model
    mine = TinyGreedyDecoder(m["cell"], m["emb"], m["out"], maximum_iterations=8)
    got = mine(m["start"], initial_state=m["state"], end_token=END)
    want = tf1(m, seq2seq.GreedyEmbeddingHelper(m["emb"], m["start"], END),
               maximum_iterations=8)
    assert torch.equal(got[0].sample_id, want[0].sample_id)
    assert torch.equal(got[2], want[2])
    torch.testing.assert_close(got[0].rnn_output, want[0].rnn_output)

    class Incomplete(tfa.seq2seq.BaseDecoder):
        def initialize(self, inputs, initial_state=None):
            return torch.zeros(B, dtype=torch.bool), inputs, initial_state

    with pytest.raises(NotImplementedError, match="Incomplete must define step, batch_size, "
                                                  "output_size, output_dtype"):
        Incomplete()(m["inputs"][:, 0], initial_state=m["state"])


def test_mechanisms_bind_memory_through_the_keras_call():
    # tfa: mechanism([memory, memory_sequence_length], setup_memory=True) or
    # mechanism(memory, mask=..., setup_memory=True) binds the memory
    memory, lengths = torch.randn(3, 5, 4), torch.tensor([5, 2, 1])
    torch.manual_seed(0)
    called = tfa.seq2seq.LuongAttention(4)
    values = called([memory, lengths], setup_memory=True)
    torch.manual_seed(0)
    direct = tfa.seq2seq.LuongAttention(4, memory, lengths)
    torch.testing.assert_close(values, direct.values)
    q = torch.randn(3, 4)
    state = direct.initial_state(3)
    torch.testing.assert_close(called([q, state])[0], direct(q, state)[0])
    mask = torch.arange(5)[None, :] < lengths[:, None]
    masked = tfa.seq2seq.BahdanauAttention(4)
    masked(memory, mask=mask, setup_memory=True)
    aligned, _ = masked(q, masked.initial_state(3))
    assert aligned[1, 2:].abs().sum() == 0 and aligned[2, 1:].abs().sum() == 0
    with pytest.raises(ValueError, match="setup_memory takes \\[memory\\] or \\[memory, "
                                         "memory_sequence_length\\], received 3 tensors"):
        called([memory, lengths, lengths], setup_memory=True)


def test_mechanisms_pass_their_memory_and_query_layers():
    memory = torch.randn(2, 5, 4)
    keys_layer = nn.Linear(4, 3, bias=False)
    query_layer = nn.Linear(6, 3, bias=False)
    mech = tfa.seq2seq.BahdanauAttention(3, memory, memory_layer=keys_layer,
                                         query_layer=query_layer)
    assert mech.memory_layer is keys_layer and mech.query_layer is query_layer
    torch.testing.assert_close(mech.keys, keys_layer(memory))
    luong = tfa.seq2seq.LuongMonotonicAttention(3, memory, memory_layer=keys_layer)
    torch.testing.assert_close(luong.keys, keys_layer(memory))


def test_mechanisms_mask_scores_with_the_dtype_minimum():
    # tfa's _maybe_mask_score(score_mask_value=score.dtype.min): a finite value, not -inf
    memory, lengths = torch.randn(2, 5, 4), torch.tensor([5, 2])
    for dtype in (torch.float32, torch.float64):
        mech = tfa.seq2seq.LuongAttention(4, memory.to(dtype), lengths, dtype=dtype,
                                          probability_fn=lambda score: score)
        scores, _ = mech(torch.randn(2, 4, dtype=dtype), mech.initial_state(2, dtype))
        assert (scores[1, 2:] == torch.finfo(dtype).min).all()
        assert torch.isfinite(scores).all()
    soft = tfa.seq2seq.BahdanauAttention(4, memory, lengths)
    aligned, _ = soft(torch.randn(2, 4), soft.initial_state(2))
    assert aligned[1, 2:].abs().sum() == 0
    torch.testing.assert_close(aligned.sum(-1), torch.ones(2))
    with pytest.raises(TypeError, match="score_mask_value: tensorflow-addons' mechanisms"):
        tfa.seq2seq.BahdanauAttention(4, memory, score_mask_value=-1e9)


def _same_attention_wrappers():
    torch.manual_seed(3)
    mech = tfa.seq2seq.BahdanauAttention(H, torch.randn(B, 4, H), torch.tensor([4, 2, 3]))
    cell = rnn.LSTMCell(H, input_size=D + H)
    mine = tfa.seq2seq.AttentionWrapper(cell, mech, attention_layer_size=H,
                                        alignment_history=True)
    theirs = seq2seq.AttentionWrapper(cell, mech, attention_layer=mine.attention_layers[0],
                                      alignment_history=True)
    return mine, theirs


def test_tfa_attention_wrapper_state_has_tfa_fields(model):
    m = model
    mine, theirs = _same_attention_wrappers()
    state = mine.get_initial_state(batch_size=B, dtype=torch.float32)
    assert isinstance(state, tfa.seq2seq.AttentionWrapperState)
    assert state._fields == ("cell_state", "attention", "alignments", "alignment_history",
                             "attention_state")
    assert theirs.get_initial_state(batch_size=B, dtype=torch.float32)._fields == (
        "cell_state", "attention", "time", "alignments", "alignment_history",
        "attention_state")  # TF 1.x's six
    assert tfa.seq2seq.AttentionWrapperState is not seq2seq.AttentionWrapperState
    out, next_state = mine(m["inputs"][:, 0], state)
    want, want_state = theirs(m["inputs"][:, 0],
                              theirs.get_initial_state(batch_size=B, dtype=torch.float32))
    torch.testing.assert_close(out, want, rtol=0, atol=0)
    torch.testing.assert_close(next_state.alignments, want_state.alignments, rtol=0, atol=0)
    with pytest.raises(ValueError, match="expected to be the same as the one to clone"):
        state.clone(attention=torch.zeros(B, H + 1))
    assert state.clone(cell_state=m["state"]).cell_state.c is m["state"].c
    six = theirs.get_initial_state(batch_size=B, dtype=torch.float32)
    with pytest.raises(ValueError, match=r"state must be an rnnkit\.tfa\.seq2seq\."
                                         r"AttentionWrapperState, received rnnkit\.seq2seq"):
        mine(m["inputs"][:, 0], six)
    with pytest.raises(TypeError, match=r"state must be an rnnkit\.tfa\.seq2seq\."
                                        r"AttentionWrapperState"):
        mine.step(m["inputs"][:, 0], six)


def test_beam_search_with_coverage_finds_the_tfa_wrappers_attention(model):
    m = model
    mine, theirs = _same_attention_wrappers()
    got = tfa.seq2seq.BeamSearchDecoder(mine, 3, output_layer=m["out"],
                                        coverage_penalty_weight=0.4, maximum_iterations=5)(
        m["emb"], m["start"], END, mine.get_initial_state(batch_size=B, dtype=torch.float32))
    want = seq2seq.dynamic_decode(seq2seq.BeamSearchDecoder(
        theirs, m["emb"], m["start"], END,
        theirs.get_initial_state(batch_size=B, dtype=torch.float32), 3,
        output_layer=m["out"], coverage_penalty_weight=0.4), maximum_iterations=5)
    assert torch.equal(got[0].predicted_ids, want[0].predicted_ids)
    torch.testing.assert_close(got[0].beam_search_decoder_output.scores,
                               want[0].beam_search_decoder_output.scores, rtol=0, atol=0)
    history = got[1].cell_state.alignment_history.stack()
    torch.testing.assert_close(history, want[1].cell_state.alignment_history.stack(),
                               rtol=0, atol=0)
    assert history.shape[:2] == (got[0].predicted_ids.shape[1], B * 3)


def test_keras_dtype_on_wrappers_and_decoders(model):
    m = model
    mech = tfa.seq2seq.LuongAttention(H, torch.randn(B, 4, H, dtype=torch.float64),
                                      dtype=torch.float64)
    cell = tfa.seq2seq.AttentionWrapper(rnn.LSTMCell(H, dtype=torch.float64), mech,
                                        attention_layer_size=5, dtype=torch.float64)
    assert cell.attention_layers[0].weight.dtype == torch.float64
    decoder = tfa.seq2seq.BasicDecoder(cell, tfa.seq2seq.TrainingSampler(),
                                       dtype=torch.float64)
    state = cell.get_initial_state(batch_size=B, dtype=torch.float64)
    out, _, _ = decoder(m["inputs"], initial_state=state)  # float32 inputs, cast as Keras
    assert out.rnn_output.dtype == torch.float64
    want, _, _ = tfa.seq2seq.BasicDecoder(cell, tfa.seq2seq.TrainingSampler())(
        m["inputs"].double(), initial_state=state)
    torch.testing.assert_close(out.rnn_output, want.rnn_output, rtol=0, atol=0)
    # the wrapper casts its own inputs too
    step, _ = cell(m["inputs"][:, 0], state)
    assert step.dtype == torch.float64
    # Keras's dtype names and numpy dtypes mean what they mean in Keras
    named, _, _ = tfa.seq2seq.BasicDecoder(cell, tfa.seq2seq.TrainingSampler(),
                                           dtype="float64")(m["inputs"], initial_state=state)
    torch.testing.assert_close(named.rnn_output, out.rnn_output, rtol=0, atol=0)
    with pytest.raises(TypeError, match="dtype must be a dtype .*received 'floaty'"):
        tfa.seq2seq.BasicDecoder(cell, tfa.seq2seq.TrainingSampler(), dtype="floaty")
    with pytest.raises(TypeError, match="dtype must be a dtype"):
        tfa.seq2seq.AttentionWrapper(rnn.LSTMCell(H), mech, dtype=float)


def test_decoders_stay_bound_after_a_call(model):
    m = model
    decoder = tfa.seq2seq.BasicDecoder(m["cell"], tfa.seq2seq.TrainingSampler(),
                                       output_layer=m["out"])
    decoder(m["inputs"], initial_state=m["state"])
    assert decoder.batch_size == B
    assert decoder.output_size == seq2seq.BasicDecoderOutput(V, torch.Size([]))
    beam = tfa.seq2seq.BeamSearchDecoder(m["cell"], 2, output_layer=m["out"],
                                         maximum_iterations=3)
    beam(m["emb"], m["start"], END, m["state"])  # positionally, as tfa's call
    assert tuple(beam.output_size.scores) == (2,)


def test_beam_search_embedding_overrides_embedding_fn(model):
    m = model
    by_fn = tfa.seq2seq.BeamSearchDecoder(m["cell"], 2, embedding_fn=lambda ids: 0 * m["emb"][ids],
                                          output_layer=m["out"], maximum_iterations=4)
    table = tfa.seq2seq.BeamSearchDecoder(m["cell"], 2, output_layer=m["out"],
                                          maximum_iterations=4)
    got = by_fn(m["emb"], m["start"], END, m["state"])  # tfa: the embedding given wins
    want = table(m["emb"], m["start"], END, m["state"])
    assert torch.equal(got[0].predicted_ids, want[0].predicted_ids)
    with pytest.raises(ValueError, match="BeamSearchDecoder needs an embedding"):
        table(None, m["start"], END, m["state"])


def test_sample_functions_of_the_sampler_module():
    s = tfa.seq2seq.sampler
    logits = torch.tensor([[0.0, 50.0, 0.0], [50.0, 0.0, 0.0]])
    ids = s.categorical_sample(logits=logits)
    assert ids.dtype == torch.int64 and ids.tolist() == [1, 0]
    draws = s.categorical_sample(logits, sample_shape=(4,), seed=7)
    assert draws.shape == (4, 2) and (draws == torch.tensor([1, 0])).all()
    flags = s.bernoulli_sample(logits=torch.tensor([[-50.0, 50.0]]), dtype=torch.bool)
    assert flags.dtype == torch.bool and flags.tolist() == [[False, True]]
    p = torch.full((2000,), 0.25)
    mean = s.bernoulli_sample(probs=p, sample_shape=[3], seed=1).float().mean()
    assert abs(float(mean) - 0.25) < 0.03
    torch.manual_seed(0)
    a = s.categorical_sample(torch.zeros(100, 5))
    torch.manual_seed(0)
    assert torch.equal(a, s.categorical_sample(torch.zeros(100, 5)))  # PyTorch's generator
    with pytest.raises(ValueError, match="probs or logits"):
        s.bernoulli_sample()


def test_sequence_loss_is_the_one_class_and_takes_soft_targets():
    assert tfa.seq2seq.SequenceLoss is seq2seq.SequenceLoss
    logits, ids = torch.randn(2, 4, 5), torch.randint(5, (2, 4))
    weights = torch.tensor([[1.0, 1, 0, 0], [1, 1, 1, 1]])
    loss = tfa.seq2seq.SequenceLoss()
    one_hot = nn.functional.one_hot(ids, 5).float()
    torch.testing.assert_close(loss(one_hot, logits, weights), loss(ids, logits, weights))
    soft = torch.softmax(torch.randn(2, 4, 5), -1)
    want = -(soft * torch.log_softmax(logits, -1)).sum(-1)
    torch.testing.assert_close(loss(soft, logits, weights),
                               (want * weights).sum() / (weights != 0).sum())
    np.testing.assert_allclose(float(loss(soft.numpy(), logits, weights)),
                               float(loss(soft, logits, weights)), rtol=1e-6)


def test_a_decoder_of_ones_own_may_define_finalize(model):
    m = model

    class Reversing(TinyGreedyDecoder):
        def finalize(self, outputs, final_state, sequence_lengths):
            return outputs._replace(sample_id=outputs.sample_id.flip(0)), final_state

    class Refusing(TinyGreedyDecoder):
        def finalize(self, outputs, final_state, sequence_lengths):
            raise NotImplementedError  # tfa's dynamic_decode: as if it had none

    plain = TinyGreedyDecoder(m["cell"], m["emb"], m["out"], maximum_iterations=4)(
        m["start"], initial_state=m["state"], end_token=END)
    flipped = Reversing(m["cell"], m["emb"], m["out"], maximum_iterations=4)(
        m["start"], initial_state=m["state"], end_token=END)
    assert torch.equal(flipped[0].sample_id, plain[0].sample_id.flip(1))  # time-major flip
    refused = Refusing(m["cell"], m["emb"], m["out"], maximum_iterations=4)(
        m["start"], initial_state=m["state"], end_token=END)
    assert torch.equal(refused[0].sample_id, plain[0].sample_id)
