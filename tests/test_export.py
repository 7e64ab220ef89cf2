"""rnnkit.export: small random seq2seq models exported to ONNX and run in onnxruntime give
the ids (and beam scores) of rnnkit's eager dynamic_decode; what cannot be exported is
refused by name."""

import numpy as np
import pytest
import torch
from torch import nn

from rnnkit import rnn, seq2seq

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from rnnkit import export  # noqa: E402

SOS, EOS = 1, 2


class Model(nn.Module):
    """An encoder (kind: gru, lstm-stack, bi-gru, bi-lstm) and an attention decoder."""

    def __init__(self, kind, attention="luong", vocab=(11, 13), emb=6, hidden=8, seed=0,
                 dropout=False, history=None):
        super().__init__()
        torch.manual_seed(seed)
        self.kind = kind
        self.src = nn.Embedding(vocab[0], emb)
        self.tgt = nn.Embedding(vocab[1], emb)
        bi = kind.startswith("bi")
        units = hidden // 2 if bi else hidden

        def cell():
            if "lstm" in kind:
                return rnn.MultiRNNCell([rnn.LSTMCell(units), rnn.LSTMCell(units)]) \
                    if "stack" in kind else rnn.BasicLSTMCell(units)
            return rnn.MultiRNNCell([rnn.GRUCell(units), rnn.GRUCell(units)]) \
                if "stack" in kind else rnn.GRUCell(units)

        self.fw = cell()
        self.bw = cell() if bi else None
        mech = (seq2seq.LuongAttention(hidden, scale=True, memory_depth=hidden)
                if attention == "luong"
                else seq2seq.BahdanauAttention(hidden, normalize=True, memory_depth=hidden))
        self.mech = mech
        gru = rnn.GRUCell(hidden)
        if dropout:  # inactive in eval(), as eager decoding
            gru = rnn.DropoutWrapper(gru, output_keep_prob=0.7)
        self.cell = seq2seq.AttentionWrapper(
            gru, mech, attention_layer_size=hidden,
            alignment_history=dropout if history is None else history)
        self.bridge_layer = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, vocab[1])
        rnn.build(self, torch.zeros(1, 2, dtype=torch.long), torch.tensor([2]))
        self.eval()

    def forward(self, src, lengths):  # only to size the lazy parameters
        state = self.encode(src, lengths)
        return self.cell(self.tgt(src[:, 0]), state)

    def bridge(self, outputs, final, lengths):
        if self.bw is not None:
            memory = torch.cat(outputs, -1)
            final = [_h(final[0]), _h(final[1])]
            init = torch.cat(final, -1)
        else:
            memory, init = outputs, _h(final)
        init = torch.tanh(self.bridge_layer(init))
        self.mech.setup_memory(memory, lengths)
        return self.cell.zero_state(init.shape[0]).clone(cell_state=init)

    def encode(self, src, lengths):
        x = self.src(src)
        if self.bw is not None:
            outputs, final = rnn.bidirectional_dynamic_rnn(self.fw, self.bw, x,
                                                           sequence_length=lengths)
        else:
            outputs, final = rnn.dynamic_rnn(self.fw, x, sequence_length=lengths)
        return self.bridge(outputs, final, lengths)

    def decoder(self, state, batch, beam=None, **options):
        start = torch.full((batch,), SOS)
        if beam is None:
            helper = seq2seq.GreedyEmbeddingHelper(self.tgt, start, EOS)
            return seq2seq.BasicDecoder(self.cell, helper, state, self.out)
        return seq2seq.BeamSearchDecoder(self.cell, self.tgt, start, EOS, state, beam,
                                         output_layer=self.out, **options)

    def encoder_spec(self):
        return export.Encoder(self.fw, self.bw, embedding=self.src, bridge=self.bridge,
                              modules=(self,))


def _h(state):
    """The last layer's h of a GRU / LSTM (stack) state."""
    if isinstance(state, tuple) and not isinstance(state, rnn.LSTMStateTuple) \
            and not torch.is_tensor(state):
        state = state[-1]
    return state.h if isinstance(state, rnn.LSTMStateTuple) else state


def _batch(seed, batch=4, time=6, vocab=11):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(3, vocab, (batch, time), generator=g)
    lengths = torch.randint(1, time + 1, (batch,), generator=g)
    lengths[0] = time
    return src, lengths


def _exported(model, beam=None, max_len=15, alignments=False, **options):
    with torch.no_grad():
        decoder = model.decoder(model.encode(*_batch(0, 2, 3)), 2, beam, **options)
    proto = export.export_seq2seq(model.encoder_spec(), decoder, maximum_iterations=max_len,
                                  alignments=alignments)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), opts)


def _run(session, src, lengths, max_len, **constraints):
    names = [o.name for o in session.get_outputs()]
    feed = {"source": src.numpy(), "source_length": lengths.numpy(),
            "maximum_iterations": np.array(max_len, np.int64)}
    feed.update({k: np.array(v, np.int64) for k, v in constraints.items()})
    out = session.run(None, feed)
    return dict(zip(names, out, strict=True))


def _eager(model, src, lengths, max_len, beam=None, **options):
    with torch.no_grad():
        decoder = model.decoder(model.encode(src, lengths), src.shape[0], beam, **options)
        return seq2seq.dynamic_decode(decoder, maximum_iterations=max_len)


@pytest.mark.parametrize("kind,attention,seed", [
    ("gru", "luong", 0), ("lstm-stack", "bahdanau", 1), ("bi-gru", "luong", 2),
    ("bi-lstm-stack", "bahdanau", 3)])
def test_greedy_ids_are_eager_ids(kind, attention, seed):
    model = Model(kind, attention, seed=seed, dropout=seed == 2)
    session = _exported(model)
    for s, (batch, time, max_len) in enumerate([(4, 6, 15), (1, 3, 15), (5, 9, 4)]):
        src, lengths = _batch(10 * seed + s, batch, time)
        outputs, _, eager_lengths = _eager(model, src, lengths, max_len)
        got = _run(session, src, lengths, max_len)
        np.testing.assert_array_equal(got["sample_id"], outputs.sample_id.numpy())
        np.testing.assert_array_equal(got["sequence_length"], eager_lengths.numpy())


def test_greedy_stops_early_when_every_entry_has_finished():
    model = Model("gru", seed=5)
    with torch.no_grad():  # make the end token the most likely after a few steps
        model.out.bias[EOS] += 3.0
    session = _exported(model, max_len=30)
    src, lengths = _batch(7)
    outputs, _, eager_lengths = _eager(model, src, lengths, 30)
    got = _run(session, src, lengths, 30)
    assert got["sample_id"].shape[1] < 30
    np.testing.assert_array_equal(got["sample_id"], outputs.sample_id.numpy())
    np.testing.assert_array_equal(got["sequence_length"], eager_lengths.numpy())


@pytest.mark.parametrize("kind,attention,seed,beam,lp,cp", [
    ("bi-gru", "luong", 0, 3, 0.6, 0.0), ("gru", "bahdanau", 1, 4, 0.0, 0.4),
    ("bi-lstm-stack", "luong", 2, 2, 1.0, 0.2), ("lstm-stack", "luong", 3, 1, 0.6, 0.0)])
def test_beam_search_ids_and_scores_are_eager(kind, attention, seed, beam, lp, cp):
    model = Model(kind, attention, seed=seed, dropout=seed == 0)
    options = dict(length_penalty_weight=lp, coverage_penalty_weight=cp)
    session = _exported(model, beam, **options)
    for s, (batch, time, max_len) in enumerate([(4, 6, 15), (2, 8, 5)]):
        src, lengths = _batch(10 * seed + s, batch, time)
        outputs, state, eager_lengths = _eager(model, src, lengths, max_len, beam, **options)
        got = _run(session, src, lengths, max_len)
        np.testing.assert_array_equal(got["predicted_ids"], outputs.predicted_ids.numpy())
        raw = outputs.beam_search_decoder_output
        np.testing.assert_array_equal(got["parent_ids"], raw.parent_ids.numpy())
        np.testing.assert_allclose(got["scores"], raw.scores.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(got["sequence_length"], eager_lengths.numpy())
        np.testing.assert_allclose(got["log_probs"], state.log_probs.numpy(), rtol=1e-4,
                                   atol=1e-5)


def _same_beams(got, outputs, state, eager_lengths):
    np.testing.assert_array_equal(got["predicted_ids"], outputs.predicted_ids.numpy())
    raw = outputs.beam_search_decoder_output
    np.testing.assert_array_equal(got["parent_ids"], raw.parent_ids.numpy())
    np.testing.assert_allclose(got["scores"], raw.scores.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(got["sequence_length"], eager_lengths.numpy())
    np.testing.assert_allclose(got["log_probs"], state.log_probs.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind,attention,seed,beam,eos_bias,changes", [
    ("bi-gru", "luong", 4, 3, 0.0, {(3, 2), (0, 1)}),
    ("lstm-stack", "bahdanau", 5, 1, 1.5, {(3, 2), (6, 0)}),
    ("gru", "luong", 6, 4, 1.0, {(3, 2), (6, 0), (0, 1), (2, 3)})])
def test_beam_constraints_are_inputs_computed_in_the_graph(kind, attention, seed, beam,
                                                           eos_bias, changes):
    """min_length and no_repeat_ngram_size (beam width 1 included: the app's greedy) are
    model inputs: one export decodes as eager rnnkit at every value fed, 0 turning one off,
    the decoder's values when none is fed; ``changes``: the values that change the
    unconstrained decode on these inputs (an untrained model repeats tokens; with the end
    token made likely it stops at once)."""
    model = Model(kind, attention, seed=seed)
    with torch.no_grad():
        model.out.bias[EOS] += eos_bias
    options = dict(length_penalty_weight=0.6)
    session = _exported(model, beam, min_length=3, no_repeat_ngram_size=2, **options)
    changed = set()
    for s, (batch, time, max_len) in enumerate([(4, 6, 15), (3, 8, 9)]):
        src, lengths = _batch(10 * seed + s, batch, time)
        base, _, _ = _eager(model, src, lengths, max_len, beam, **options)
        for min_length, ngram in [(3, 2), (0, 0), (6, 0), (0, 1), (2, 3)]:
            fed = dict(min_length=min_length, no_repeat_ngram_size=ngram)
            outputs, state, eager_lengths = _eager(model, src, lengths, max_len, beam,
                                                   **options, **fed)
            _same_beams(_run(session, src, lengths, max_len, **fed), outputs, state,
                        eager_lengths)
            if not torch.equal(outputs.predicted_ids, base.predicted_ids):
                changed.add((min_length, ngram))
        # nothing fed: the exported decoder's values (3, 2)
        outputs, state, eager_lengths = _eager(model, src, lengths, max_len, beam, **options,
                                               min_length=3, no_repeat_ngram_size=2)
        _same_beams(_run(session, src, lengths, max_len), outputs, state, eager_lengths)
    assert changes <= changed


def test_constraints_fed_must_be_scalars_the_graph_reads():
    model = Model("gru", seed=8)
    session = _exported(model, 2, max_len=6)
    src, lengths = _batch(8)
    names = {i.name for i in session.get_inputs()} | {
        i.name for i in session.get_overridable_initializers()}
    assert {"min_length", "no_repeat_ngram_size"} <= names
    for value in (4, 0):
        outputs, state, eager_lengths = _eager(model, src, lengths, 6, 2, min_length=value)
        _same_beams(_run(session, src, lengths, 6, min_length=value), outputs, state,
                    eager_lengths)


@pytest.mark.parametrize("beam,reorder", [(None, True), (1, True), (3, True), (3, False)])
def test_alignments_output_is_the_eager_alignment_history(beam, reorder):
    """alignments=True: the attention probabilities of every step, batch-major, as eager
    dynamic_decode leaves them in the final state's alignment history (beam search: reordered
    along the beams like the ids, reorder_tensor_arrays=True)."""
    model = Model("bi-gru", seed=7, history=True)
    options = {} if beam is None else dict(length_penalty_weight=0.6, min_length=2,
                                           reorder_tensor_arrays=reorder)
    session = _exported(model, beam, alignments=True, **options)
    reordered = False
    for s, (batch, time, max_len) in enumerate([(4, 6, 12), (3, 9, 7)]):
        src, lengths = _batch(70 + s, batch, time)
        outputs, state, _ = _eager(model, src, lengths, max_len, beam, **options)
        got = _run(session, src, lengths, max_len)
        if beam is None:
            np.testing.assert_array_equal(got["sample_id"], outputs.sample_id.numpy())
            want = state.alignment_history.stack().transpose(0, 1)
        else:
            np.testing.assert_array_equal(got["predicted_ids"], outputs.predicted_ids.numpy())
            hist = state.cell_state.alignment_history.stack()
            want = hist.reshape(hist.shape[0], batch, beam, -1).transpose(0, 1)
            raw = _eager(model, src, lengths, max_len, beam,
                         **dict(options, reorder_tensor_arrays=False))[1]
            reordered |= not torch.equal(raw.cell_state.alignment_history.stack(), hist)
        assert got["alignments"].shape == tuple(want.shape)
        np.testing.assert_allclose(got["alignments"], want.numpy(), rtol=1e-4, atol=1e-5)
    if beam == 3 and reorder:  # the reordering was exercised
        assert reordered


def test_the_export_leaves_the_model_as_it_was():
    model = Model("bi-gru")
    model.train()
    src, lengths = _batch(3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _exported(model, 3)
    assert model.training and model.fw.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    model.eval()
    _eager(model, src, lengths, 10, 3)  # eager decoding still works afterwards


def test_metadata_and_a_written_file(tmp_path):
    model = Model("gru")
    with torch.no_grad():
        decoder = model.decoder(model.encode(*_batch(0, 2, 3)), 2, 3)
    path = tmp_path / "m.onnx"
    export.export_seq2seq(model.encoder_spec(), decoder, path, maximum_iterations=9)
    props = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert props == {"maximum_iterations": "9", "end_token": str(EOS), "beam_width": "3",
                     "min_length": "0", "no_repeat_ngram_size": "0", "alignments": "0"}


# -- refusals -------------------------------------------------------------------------------
def _spec_and_state(model):
    with torch.no_grad():
        return model.encoder_spec(), model.encode(*_batch(0, 2, 3))


def test_sampling_is_refused_naming_the_helper():
    model = Model("gru")
    spec, state = _spec_and_state(model)
    helper = seq2seq.SampleEmbeddingHelper(model.tgt, torch.full((2,), SOS), EOS, seed=3)
    decoder = seq2seq.BasicDecoder(model.cell, helper, state, model.out)
    with pytest.raises(export.ExportError, match="SampleEmbeddingHelper: it samples"):
        export.export_seq2seq(spec, decoder)


def test_what_is_not_exported_is_refused_by_name():
    model = Model("gru")
    spec, state = _spec_and_state(model)
    decoder = model.decoder(state, 2, 3, output_all_scores=True)
    with pytest.raises(export.ExportError, match="output_all_scores"):
        export.export_seq2seq(spec, decoder)
    # alignments need the attention history the eager decode keeps
    for beam in (None, 3):
        with pytest.raises(export.ExportError, match="alignment_history=True"):
            export.export_seq2seq(spec, model.decoder(state, 2, beam), alignments=True)


class BatchBakingGRU(rnn.GRUCell):
    """A user's cell whose step builds a tensor from a Python int read off the batch: the
    trace would keep the tracing batch size."""

    def __call__(self, inputs, state, scope=None):
        out, new = super().__call__(inputs, state)
        bias = torch.zeros(int(inputs.shape[0]), self.output_size)
        return out + bias, new + bias


class HostBranchGRU(rnn.GRUCell):
    """A user's cell that branches on a value read on the host."""

    def __call__(self, inputs, state, scope=None):
        out, new = super().__call__(inputs, state)
        if float(inputs.sum()) > 0:
            new = new * 0.5
        return new, new


@pytest.mark.parametrize("cell_type", [BatchBakingGRU, HostBranchGRU])
def test_a_user_cell_that_does_not_trace_is_refused_naming_it(cell_type):
    model = Model("gru")
    model.fw = cell_type(8)
    rnn.build(model.fw, torch.zeros(1, 6), model.fw.zero_state(1))
    model.fw.load_state_dict(rnn.GRUCell(8, input_size=6).state_dict())
    spec, state = _spec_and_state(model)
    with pytest.raises(export.ExportError,
                       match=f"encoder's forward cell {cell_type.__name__}.*does not trace"):
        export.export_seq2seq(spec, model.decoder(state, 2), maximum_iterations=5)


def test_a_bridge_using_an_unlisted_module_is_refused():
    model = Model("gru")
    spec, state = _spec_and_state(model)
    spec.modules = ()
    with pytest.raises(export.ExportError, match="Encoder\\(modules="):
        export.export_seq2seq(spec, model.decoder(state, 2), maximum_iterations=5)
