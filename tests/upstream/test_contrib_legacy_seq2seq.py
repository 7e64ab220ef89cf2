"""Port of TensorFlow r1.15
``tensorflow/contrib/legacy_seq2seq/python/kernel_tests/seq2seq_test.py`` (``Seq2SeqTest``;
read at commit e08079463bf4 of a fork carrying r1.15).

Each upstream test builds its graph in a fresh ``tf.Graph``; here each test runs in a
fresh :class:`legacy_seq2seq.VariableStore` (the autouse fixture).  Upstream's
``variable_scope("root", initializer=constant_initializer(0.5))`` is
:func:`scope_initializer` (every TF variable but the biases set to 0.5) applied after a
first call has created the variables; the model is then run again.  Differences are listed
in ``tests/upstream/notes/contrib_legacy_seq2seq.md``.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnkit import compat, rnn
from rnnkit import legacy_seq2seq as seq2seq_lib


@pytest.fixture(autouse=True)
def store():
    with seq2seq_lib.VariableStore() as s, seq2seq_lib.variable_scope("root"):
        yield s


def scope_initializer(store, value=0.5):
    """TF's ``variable_scope(initializer=constant_initializer(value))``: every variable the
    store holds except biases set to ``value``."""
    variables = compat.tf_variables_of({"": store})
    compat.load_tf_variables({"": store}, {
        n: v if n.rsplit("/", 1)[-1] in ("bias", "biases") else np.full_like(v, value)
        for n, v in variables.items()})


def const(value, shape, dtype=torch.float32):
    return torch.full(shape, value, dtype=dtype)


def ids(value, batch=2):
    return torch.full((batch,), value, dtype=torch.int64)


def run_initialized(store, build):
    """Build the model once (TF's graph construction), set the scope initializer, run it
    again and return that run's results."""
    with torch.no_grad():
        build()
        scope_initializer(store)
        return build()


def test_rnn_decoder(store):
    """Seq2SeqTest.testRNNDecoder."""
    inp = [const(0.5, (2, 2))] * 2
    _, enc_state = rnn.static_rnn(rnn.GRUCell(2), inp, dtype=torch.float32)
    dec_inp = [const(0.4, (2, 2))] * 3
    cell = rnn.OutputProjectionWrapper(rnn.GRUCell(2), 4)
    dec, mem = seq2seq_lib.rnn_decoder(dec_inp, enc_state, cell)
    assert len(dec) == 3
    assert dec[0].shape == (2, 4)
    assert mem.shape == (2, 2)


def test_basic_rnn_seq2seq(store):
    """Seq2SeqTest.testBasicRNNSeq2Seq."""
    inp = [const(0.5, (2, 2))] * 2
    dec_inp = [const(0.4, (2, 2))] * 3
    cell = rnn.OutputProjectionWrapper(rnn.GRUCell(2), 4)
    dec, mem = seq2seq_lib.basic_rnn_seq2seq(inp, dec_inp, cell)
    assert len(dec) == 3
    assert dec[0].shape == (2, 4)
    assert mem.shape == (2, 2)


def test_tied_rnn_seq2seq(store):
    """Seq2SeqTest.testTiedRNNSeq2Seq."""
    inp = [const(0.5, (2, 2))] * 2
    dec_inp = [const(0.4, (2, 2))] * 3
    cell = rnn.OutputProjectionWrapper(rnn.GRUCell(2), 4)
    dec, mem = seq2seq_lib.tied_rnn_seq2seq(inp, dec_inp, cell)
    assert len(dec) == 3
    assert dec[0].shape == (2, 4)
    assert mem.shape == (2, 2)
    # tied: one set of variables, under combined_tied_rnn_seq2seq/tied_rnn_seq2seq
    assert compat.tf_variable_names({"": store}) == [
        f"root/combined_tied_rnn_seq2seq/tied_rnn_seq2seq/output_projection_wrapper/{n}"
        for n in ("bias", "gru_cell/candidate/bias", "gru_cell/candidate/kernel",
                  "gru_cell/gates/bias", "gru_cell/gates/kernel", "kernel")]


def test_embedding_rnn_decoder(store):
    """Seq2SeqTest.testEmbeddingRNNDecoder."""
    inp = [const(0.5, (2, 2))] * 2
    cell = rnn.BasicLSTMCell(2)
    _, enc_state = rnn.static_rnn(cell, inp, dtype=torch.float32)
    dec_inp = [ids(i) for i in range(3)]
    dec, mem = seq2seq_lib.embedding_rnn_decoder(dec_inp, enc_state, rnn.BasicLSTMCell(2),
                                                 num_symbols=4, embedding_size=2)
    assert len(dec) == 3
    assert dec[0].shape == (2, 2)
    assert mem.c.shape == (2, 2)
    assert mem.h.shape == (2, 2)


def _feed_previous_ignores_later_inputs(store, model, **kw):
    """Upstream's check: a previous-feeding model ignores the inputs after the first (a
    scalar bool tensor or True; scopes other, other_2, other_3)."""
    enc_inp = [ids(1) for _ in range(2)]
    dec_inp = [ids(i) for i in range(3)]
    dec_inp2 = [ids(0) for _ in range(3)]

    def build():
        with seq2seq_lib.variable_scope("other"):
            d3, _ = model(enc_inp, dec_inp2, feed_previous=torch.tensor(True), **kw)
        with seq2seq_lib.variable_scope("other_2"):
            d1, _ = model(enc_inp, dec_inp, feed_previous=True, **kw)
        with seq2seq_lib.variable_scope("other_3"):
            d2, _ = model(enc_inp, dec_inp2, feed_previous=True, **kw)
        return d1, d2, d3

    d1, d2, d3 = run_initialized(store, build)
    for a, b, c in zip(d1, d2, d3, strict=True):
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(a, c)


def test_embedding_rnn_seq2seq(store):
    """Seq2SeqTest.testEmbeddingRNNSeq2Seq."""
    enc_inp = [ids(1) for _ in range(2)]
    dec_inp = [ids(i) for i in range(3)]
    dec, mem = seq2seq_lib.embedding_rnn_seq2seq(
        enc_inp, dec_inp, rnn.BasicLSTMCell(2), num_encoder_symbols=2,
        num_decoder_symbols=5, embedding_size=2)
    assert len(dec) == 3
    assert dec[0].shape == (2, 5)
    assert mem.c.shape == (2, 2)
    assert mem.h.shape == (2, 2)
    # state_is_tuple=False
    with seq2seq_lib.variable_scope("no_tuple"):
        dec, mem = seq2seq_lib.embedding_rnn_seq2seq(
            enc_inp, dec_inp, rnn.BasicLSTMCell(2, state_is_tuple=False),
            num_encoder_symbols=2, num_decoder_symbols=5, embedding_size=2)
    assert len(dec) == 3
    assert dec[0].shape == (2, 5)
    assert mem.shape == (2, 4)
    # externally provided output projection
    w, b = torch.randn(2, 5), torch.randn(5)
    with seq2seq_lib.variable_scope("proj_seq2seq"):
        dec, _ = seq2seq_lib.embedding_rnn_seq2seq(
            enc_inp, dec_inp, rnn.BasicLSTMCell(2), num_encoder_symbols=2,
            num_decoder_symbols=5, embedding_size=2, output_projection=(w, b))
    assert len(dec) == 3
    assert dec[0].shape == (2, 2)
    _feed_previous_ignores_later_inputs(
        store, lambda e, d, **kw: seq2seq_lib.embedding_rnn_seq2seq(
            e, d, rnn.BasicLSTMCell(2), num_encoder_symbols=2, num_decoder_symbols=5,
            embedding_size=2, **kw))


def test_embedding_tied_rnn_seq2seq(store):
    """Seq2SeqTest.testEmbeddingTiedRNNSeq2Seq."""
    enc_inp = [ids(1) for _ in range(2)]
    dec_inp = [ids(i) for i in range(3)]

    def cell():
        return rnn.BasicLSTMCell(2, state_is_tuple=True)

    dec, mem = seq2seq_lib.embedding_tied_rnn_seq2seq(enc_inp, dec_inp, cell(), num_symbols=5,
                                                      embedding_size=2)
    assert len(dec) == 3
    assert dec[0].shape == (2, 5)
    assert mem.c.shape == (2, 2)
    assert mem.h.shape == (2, 2)
    with seq2seq_lib.variable_scope("decoder_symbols_seq2seq"):
        dec, mem = seq2seq_lib.embedding_tied_rnn_seq2seq(
            enc_inp, dec_inp, cell(), num_symbols=5, num_decoder_symbols=3, embedding_size=2)
    assert len(dec) == 3
    assert dec[0].shape == (2, 3)
    w, b = torch.randn(2, 5), torch.randn(5)
    with seq2seq_lib.variable_scope("proj_seq2seq"):
        dec, _ = seq2seq_lib.embedding_tied_rnn_seq2seq(
            enc_inp, dec_inp, cell(), num_symbols=5, embedding_size=2,
            output_projection=(w, b))
    assert len(dec) == 3
    assert dec[0].shape == (2, 2)
    _feed_previous_ignores_later_inputs(
        store, lambda e, d, **kw: seq2seq_lib.embedding_tied_rnn_seq2seq(
            e, d, cell(), num_symbols=5, embedding_size=2, **kw))


def _attention_case(cell_fn, num_heads=1, dynamic=False):
    cell = cell_fn()
    if dynamic:
        enc_outputs, enc_state = rnn.dynamic_rnn(cell, const(0.5, (2, 2, 2)),
                                                 dtype=torch.float32)
        attn_states = enc_outputs
    else:
        enc_outputs, enc_state = rnn.static_rnn(cell, [const(0.5, (2, 2))] * 2,
                                                dtype=torch.float32)
        attn_states = torch.cat([e.reshape(-1, 1, cell.output_size) for e in enc_outputs], 1)
    dec_inp = [const(0.4, (2, 2))] * 3
    # a new cell instance for the decoder: it uses another variable scope
    return seq2seq_lib.attention_decoder(dec_inp, enc_state, attn_states, cell_fn(),
                                         output_size=4, num_heads=num_heads)


def test_attention_decoder1():
    """Seq2SeqTest.testAttentionDecoder1."""
    dec, mem = _attention_case(lambda: rnn.GRUCell(2))
    assert len(dec) == 3
    assert dec[0].shape == (2, 4)
    assert mem.shape == (2, 2)


def test_attention_decoder2():
    """Seq2SeqTest.testAttentionDecoder2 (two heads)."""
    dec, mem = _attention_case(lambda: rnn.GRUCell(2), num_heads=2)
    assert len(dec) == 3
    assert dec[0].shape == (2, 4)
    assert mem.shape == (2, 2)


def test_dynamic_attention_decoder1():
    """Seq2SeqTest.testDynamicAttentionDecoder1 (attention over dynamic_rnn outputs)."""
    dec, mem = _attention_case(lambda: rnn.GRUCell(2), dynamic=True)
    assert len(dec) == 3
    assert dec[0].shape == (2, 4)
    assert mem.shape == (2, 2)


def test_dynamic_attention_decoder2():
    """Seq2SeqTest.testDynamicAttentionDecoder2."""
    dec, mem = _attention_case(lambda: rnn.GRUCell(2), num_heads=2, dynamic=True)
    assert len(dec) == 3
    assert dec[0].shape == (2, 4)
    assert mem.shape == (2, 2)


def _check_tuple_state(mem):
    assert len(mem) == 2
    for layer in mem:
        assert layer.c.shape == (2, 2)
        assert layer.h.shape == (2, 2)


def test_attention_decoder_state_is_tuple():
    """Seq2SeqTest.testAttentionDecoderStateIsTuple."""
    dec, mem = _attention_case(lambda: rnn.MultiRNNCell(
        [rnn.BasicLSTMCell(2, state_is_tuple=True) for _ in range(2)], state_is_tuple=True))
    assert len(dec) == 3
    assert dec[0].shape == (2, 4)
    _check_tuple_state(mem)


def test_dynamic_attention_decoder_state_is_tuple():
    """Seq2SeqTest.testDynamicAttentionDecoderStateIsTuple (upstream runs static_rnn here
    too)."""
    dec, mem = _attention_case(lambda: rnn.MultiRNNCell(
        [rnn.BasicLSTMCell(2) for _ in range(2)]))
    assert len(dec) == 3
    assert dec[0].shape == (2, 4)
    _check_tuple_state(mem)


def test_embedding_attention_decoder():
    """Seq2SeqTest.testEmbeddingAttentionDecoder."""
    cell = rnn.GRUCell(2)
    enc_outputs, enc_state = rnn.static_rnn(cell, [const(0.5, (2, 2))] * 2,
                                            dtype=torch.float32)
    attn_states = torch.cat([e.reshape(-1, 1, cell.output_size) for e in enc_outputs], 1)
    dec_inp = [ids(i) for i in range(3)]
    dec, mem = seq2seq_lib.embedding_attention_decoder(
        dec_inp, enc_state, attn_states, rnn.GRUCell(2), num_symbols=4, embedding_size=2,
        output_size=3)
    assert len(dec) == 3
    assert dec[0].shape == (2, 3)
    assert mem.shape == (2, 2)


def test_embedding_attention_seq2seq(store):
    """Seq2SeqTest.testEmbeddingAttentionSeq2Seq (the feed_previous part is disabled
    upstream; it runs here)."""
    enc_inp = [ids(1) for _ in range(2)]
    dec_inp = [ids(i) for i in range(3)]
    dec, mem = seq2seq_lib.embedding_attention_seq2seq(
        enc_inp, dec_inp, rnn.BasicLSTMCell(2), num_encoder_symbols=2, num_decoder_symbols=5,
        embedding_size=2)
    assert len(dec) == 3
    assert dec[0].shape == (2, 5)
    assert mem.c.shape == (2, 2)
    assert mem.h.shape == (2, 2)
    with seq2seq_lib.variable_scope("no_tuple"):
        dec, mem = seq2seq_lib.embedding_attention_seq2seq(
            enc_inp, dec_inp, rnn.BasicLSTMCell(2, state_is_tuple=False),
            num_encoder_symbols=2, num_decoder_symbols=5, embedding_size=2)
    assert len(dec) == 3
    assert dec[0].shape == (2, 5)
    assert mem.shape == (2, 4)
    w, b = torch.randn(2, 5), torch.randn(5)
    with seq2seq_lib.variable_scope("proj_seq2seq"):
        dec, _ = seq2seq_lib.embedding_attention_seq2seq(
            enc_inp, dec_inp, rnn.BasicLSTMCell(2, state_is_tuple=False),
            num_encoder_symbols=2, num_decoder_symbols=5, embedding_size=2,
            output_projection=(w, b))
    assert len(dec) == 3
    assert dec[0].shape == (2, 2)
    _feed_previous_ignores_later_inputs(
        store, lambda e, d, **kw: seq2seq_lib.embedding_attention_seq2seq(
            e, d, rnn.BasicLSTMCell(2), num_encoder_symbols=2, num_decoder_symbols=5,
            embedding_size=2, **kw))


def test_one2many_rnn_seq2seq(store):
    """Seq2SeqTest.testOne2ManyRNNSeq2Seq."""
    enc_inp = [ids(1) for _ in range(2)]
    dec_inp_dict = {"0": [ids(i) for i in range(3)], "1": [ids(i) for i in range(4)]}
    dec_symbols_dict = {"0": 5, "1": 6}

    def enc_cell_fn():
        return rnn.BasicLSTMCell(2, state_is_tuple=True)

    def dec_cells_fn():
        return {k: rnn.BasicLSTMCell(2, state_is_tuple=True) for k in dec_symbols_dict}

    outputs_dict, state_dict = seq2seq_lib.one2many_rnn_seq2seq(
        enc_inp, dec_inp_dict, enc_cell_fn(), dec_cells_fn(), 2, dec_symbols_dict,
        embedding_size=2)
    assert len(outputs_dict["0"]) == 3
    assert outputs_dict["0"][0].shape == (2, 5)
    assert len(outputs_dict["1"]) == 4
    assert outputs_dict["1"][0].shape == (2, 6)
    for name in ("0", "1"):
        assert state_dict[name].c.shape == (2, 2)
        assert state_dict[name].h.shape == (2, 2)

    dec_inp_dict2 = {"0": [ids(0) for _ in range(3)], "1": [ids(0) for _ in range(4)]}

    def build():
        with seq2seq_lib.variable_scope("other"):
            out3, _ = seq2seq_lib.one2many_rnn_seq2seq(
                enc_inp, dec_inp_dict2, enc_cell_fn(), dec_cells_fn(), 2, dec_symbols_dict,
                embedding_size=2, feed_previous=torch.tensor(True))
        with seq2seq_lib.variable_scope("other_2"):
            out1, _ = seq2seq_lib.one2many_rnn_seq2seq(
                enc_inp, dec_inp_dict, enc_cell_fn(), dec_cells_fn(), 2, dec_symbols_dict,
                embedding_size=2, feed_previous=True)
        with seq2seq_lib.variable_scope("other_3"):
            out2, _ = seq2seq_lib.one2many_rnn_seq2seq(
                enc_inp, dec_inp_dict2, enc_cell_fn(), dec_cells_fn(), 2, dec_symbols_dict,
                embedding_size=2, feed_previous=True)
        return out1["0"], out2["0"], out3["0"]

    res1, res2, res3 = run_initialized(store, build)
    for a, b, c in zip(res1, res2, res3, strict=True):
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(a, c)


def test_sequence_loss():
    """Seq2SeqTest.testSequenceLoss."""
    logits = [const(i + 0.5, (2, 5)) for i in range(3)]
    targets = [ids(i) for i in range(3)]
    weights = [const(1.0, (2,)) for _ in range(3)]
    res = seq2seq_lib.sequence_loss(logits, targets, weights, average_across_timesteps=True,
                                    average_across_batch=True)
    np.testing.assert_allclose(res.item(), 1.60944, rtol=1e-5)
    res = seq2seq_lib.sequence_loss(logits, targets, weights, average_across_timesteps=False,
                                    average_across_batch=True)
    np.testing.assert_allclose(res.item(), 4.828314, rtol=1e-5)
    res = seq2seq_lib.sequence_loss(logits, targets, weights, average_across_timesteps=False,
                                    average_across_batch=False)
    np.testing.assert_allclose(res.item(), 9.656628, rtol=1e-5)


def test_sequence_loss_by_example():
    """Seq2SeqTest.testSequenceLossByExample."""
    logits = [const(i + 0.5, (2, 5)) for i in range(3)]
    targets = [ids(i) for i in range(3)]
    weights = [const(1.0, (2,)) for _ in range(3)]
    res = seq2seq_lib.sequence_loss_by_example(logits, targets, weights,
                                               average_across_timesteps=True)
    np.testing.assert_allclose(res.numpy(), [1.609438, 1.609438], rtol=1e-5)
    res = seq2seq_lib.sequence_loss_by_example(logits, targets, weights,
                                               average_across_timesteps=False)
    np.testing.assert_allclose(res.numpy(), [4.828314, 4.828314], rtol=1e-5)


def _gru_model_with_buckets(enc_inp, dec_inp, weights, buckets, classes,
                            per_example_loss=False, output_projection=None,
                            softmax_loss_function=None):
    def gru_seq2seq(enc, dec):
        cell = rnn.MultiRNNCell([rnn.GRUCell(24) for _ in range(2)], state_is_tuple=True)
        return seq2seq_lib.embedding_attention_seq2seq(
            enc, dec, cell, num_encoder_symbols=classes, num_decoder_symbols=classes,
            embedding_size=24, output_projection=output_projection)

    targets = [dec_inp[i + 1] for i in range(len(dec_inp) - 1)] + [ids(0, len(dec_inp[0]))]
    return seq2seq_lib.model_with_buckets(enc_inp, dec_inp, targets, weights, buckets,
                                          gru_seq2seq, per_example_loss=per_example_loss,
                                          softmax_loss_function=softmax_loss_function)


def test_model_with_buckets_scope_and_loss():
    """Seq2SeqTest.testModelWithBucketsScopeAndLoss (commented out upstream, waiting for
    cell reuse within a scope; it runs here): scalar losses, or ``[batch]`` ones with
    ``per_example_loss``."""
    classes, buckets = 10, [(4, 4), (8, 8)]
    inp = [torch.randint(classes, (3,)) for _ in range(8)]
    out = [torch.randint(classes, (3,)) for _ in range(8)]
    weights = [torch.ones(3) for _ in range(8)]
    with seq2seq_lib.variable_scope("root"):
        _, losses1 = _gru_model_with_buckets(inp, out, weights, buckets, classes)
    with seq2seq_lib.variable_scope("new"):
        _, losses2 = _gru_model_with_buckets(inp, out, weights, buckets, classes,
                                             per_example_loss=True)
    assert losses1[0].shape == ()
    assert losses2[0].shape == (3,)


def test_model_with_buckets(store):
    """Seq2SeqTest.testModelWithBuckets: learn to copy 10 symbols in buckets of length 4
    and 8; the perplexity of each bucket goes down.  Upstream's loss is a sampled softmax
    over the projection (8 of 10 classes); rnnkit has no sampled softmax, so the loss
    function here is the full softmax over the same projection."""
    classes, buckets, batch_size = 10, [(4, 4), (8, 8)], 8
    perplexities = [[], []]
    random.seed(111)
    np.random.seed(111)
    torch.manual_seed(111)
    w = torch.nn.Parameter(torch.empty(24, classes).uniform_(-0.4, 0.4))
    b = torch.nn.Parameter(torch.zeros(classes))

    def full_loss(labels, logits):
        return F.cross_entropy(logits @ w + b, labels.reshape(-1), reduction="none")

    def model(inp, out):
        weights = [torch.ones(len(inp[0])) for _ in range(8)]
        return _gru_model_with_buckets(inp, out, weights, buckets, classes,
                                       output_projection=(w, b),
                                       softmax_loss_function=full_loss)

    def batch(length):
        i = [torch.from_numpy(np.array([np.random.randint(9) + 1 for _ in range(batch_size)]))
             for _ in range(length)]
        o = [ids(0, batch_size)] + i  # 0 is the "GO" symbol
        pad = [ids(0, batch_size)] * (8 - length)
        return i + pad, (o + pad)[:8]

    model(*batch(8))  # build the graph: every variable exists before the optimizer
    params = [*store.parameters(), w, b]
    optimizer = torch.optim.Adam(params, lr=0.03, eps=1e-5)
    for _ in range(6):
        bucket = random.choice(np.arange(len(buckets)))
        inp, out = batch(buckets[bucket][0])
        _, losses = model(inp, out)
        optimizer.zero_grad()
        losses[bucket].backward()
        torch.nn.utils.clip_grad_norm_(params, 30.0)
        optimizer.step()
        perplexities[bucket].append(math.exp(losses[bucket].item()))
    for bucket in range(len(buckets)):
        if len(perplexities[bucket]) > 1:
            assert perplexities[bucket][-1] < 1.2 * perplexities[bucket][0]


@pytest.mark.parametrize("model", [
    "EmbeddingRNNSeq2SeqF", "EmbeddingRNNSeq2SeqNoTupleF", "EmbeddingTiedRNNSeq2Seq",
    "EmbeddingTiedRNNSeq2SeqNoTuple", "EmbeddingAttentionSeq2Seq",
    "EmbeddingAttentionSeq2SeqNoTuple"])
def test_model_with_boolean_feed_previous(model):
    """Seq2SeqTest.testModelWithBooleanFeedPrevious: training with ``feed_previous=True``
    (fed its own greedy symbols) equals training with ``feed_previous=False`` fed those
    symbols, for each embedding model."""
    num_encoder_symbols, num_decoder_symbols, batch_size = 3, 5, 2
    num_enc_timesteps, num_dec_timesteps = 2, 3
    torch.manual_seed(111)
    tuple_state = "NoTuple" not in model

    def seq2seq(enc_inp, dec_inp, feed_previous):
        cell = rnn.BasicLSTMCell(2, state_is_tuple=tuple_state)
        if model.startswith("EmbeddingRNN"):
            return seq2seq_lib.embedding_rnn_seq2seq(
                enc_inp, dec_inp, cell, num_encoder_symbols, num_decoder_symbols,
                embedding_size=2, feed_previous=feed_previous)
        if model.startswith("EmbeddingTied"):
            return seq2seq_lib.embedding_tied_rnn_seq2seq(
                enc_inp, dec_inp, cell, num_decoder_symbols, embedding_size=2,
                feed_previous=feed_previous)
        return seq2seq_lib.embedding_attention_seq2seq(
            enc_inp, dec_inp, cell, num_encoder_symbols, num_decoder_symbols,
            embedding_size=2, feed_previous=feed_previous)

    enc_inp = [ids(i + 1, batch_size) for i in range(num_enc_timesteps)]
    dec_inp_fp_true = [ids(i, batch_size) for i in range(num_dec_timesteps)]
    targets = [ids(i + 1, batch_size) for i in range(num_dec_timesteps)]
    weights = [torch.ones(batch_size) for _ in range(num_dec_timesteps)]
    with seq2seq_lib.VariableStore() as store:
        def forward(dec_inp, feed_previous):
            with seq2seq_lib.variable_scope(f"fp_{feed_previous}"):
                return seq2seq(enc_inp, dec_inp, feed_previous)[0]

        with torch.no_grad():
            dec_fp_true = forward(dec_inp_fp_true, True)
            forward(dec_inp_fp_true, False)  # creates the fp_False variables
        names = compat.tf_variables_of({"": store})
        true_vars = {n.split("/", 1)[1]: v for n, v in names.items() if n.startswith("fp_True")}
        false_names = sorted(n.split("/", 1)[1] for n in names if n.startswith("fp_False"))
        assert sorted(true_vars) == false_names
        compat.load_tf_variables({"": store}, {**names, **{f"fp_False/{n}": v
                                                           for n, v in true_vars.items()}})
        symbols = torch.stack(dec_fp_true).argmax(2)
        dec_inp_fp_false = [dec_inp_fp_true[0], *symbols[:-1]]

        def params(prefix):
            return [p for k, m in store.scopes.items() if k.startswith(prefix)
                    for p in m.parameters()]

        for feed, dec_inp in ((True, dec_inp_fp_true), (False, dec_inp_fp_false)):
            group = list({id(p): p for p in params(f"fp_{feed}")}.values())
            optimizer = torch.optim.Adam(group, lr=0.03, eps=1e-5)
            loss = seq2seq_lib.sequence_loss(forward(dec_inp, feed), targets, weights)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        after = compat.tf_variables_of({"": store})
        for n in false_names:
            np.testing.assert_allclose(after[f"fp_True/{n}"], after[f"fp_False/{n}"],
                                       rtol=1e-5, atol=1e-6)
