"""Record the weights and outputs behind TF r1.15's attention_wrapper tests.

    python tests/golden/make_upstream_contrib_attention_golden.py [--search]

(with the TensorFlow 2.15 + tensorflow-addons 0.23 environment's python)

Upstream (``tensorflow/contrib/seq2seq/python/kernel_tests/attention_wrapper_test.py`` and
``attention_wrapper_v2_test.py``, r1.15) hard-codes the means of decodes whose weights come
from TF's seeded initialisers.  TensorFlow's test case seeds numpy and the graph with
``DEFAULT_GRAPH_SEED`` (87654321) in ``setUp``; a stateful random op with op seed ``s`` then
draws from the Philox stream ``(87654321, s)``, which TF 2.15 draws the same way.  This script
reproduces each initial value in a TF 2.15 graph:

* v1: every variable made under ``variable_scope('root', random_normal_initializer(0.01,
  seed=3))`` (the LSTM kernel, query layers, ``attention_v``, attention layers) is the first
  draw of ``(87654321, 3)`` at its shape; LSTM bias, ``attention_b`` zeros, ``attention_g``
  TF's constants.  The memory layers are built in the mechanisms' constructors, outside
  ``root``: Keras' default glorot-uniform with no op seed, for which TF takes the graph's op
  count at that point as the op seed.  That count is not observable without TF 1.15, so
  ``--search`` tries op seeds 1..399: 47 is the only one for which every single-mechanism
  test's means hold within upstream's atol=1e-3 (the same sample ids included; the means
  then differ from upstream's by at most 4.5e-4: upstream's printed values predate r1.15's
  exact numerics, its 1e-3 tolerance absorbs that).  The second memory layer of the
  two-mechanism tests is not determined as well: many op seeds pass those two tests;
  ``MEMORY_OP_SEEDS`` takes the closest, 147.  The monotonic tests' sigmoid noise (``seed=3``) is
  the stream ``(87654321, 3)`` drawn once per decode step, recorded as ``noise:<t>``.
* v2: all kernels are ``"ones"`` except the attention layers, which upstream sets to
  ``glorot_uniform(seed=1337)``: TF 1.x's v1 initializer, the draw ``(87654321, 1337)``.

Each case is then decoded with tensorflow-addons 0.23 (the maintained AttentionWrapper, a
Keras LSTMCell given the TF 1.x kernel in Keras' gate order), and the outputs are stored
beside the weights in ``tests/fixtures/upstream_contrib_attention*.npz`` (weights as
``var:<rnnkit's TF 1.x name>``).  For v2 the decode is also run with r1.15's masking bug
(scores not masked past ``memory_sequence_length``, tensorflow-addons PR 133) as ``bug:*``,
to show which of upstream's v2 values are that bug's.
"""

import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_addons as tfa  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
SEED = 87654321  # tensorflow.python.framework.random_seed.DEFAULT_GRAPH_SEED
S = tfa.seq2seq
ENC_LENGTHS = np.array([3, 2, 3, 1, 1], np.int32)
DEC_LENGTHS = np.array([2, 0, 1, 2, 3], np.int32)
# op seeds of the memory layers' glorot-uniform draws (see the module docstring): the first
# mechanism's, then the second's in the two-mechanism tests
MEMORY_OP_SEEDS = (47, 147)


def graph_draw(make):
    """Run ``make()`` (building one random op) once in a fresh graph seeded as TF's tests."""
    with tf.Graph().as_default():
        tf.compat.v1.set_random_seed(SEED)
        op = make()
        with tf.compat.v1.Session() as sess:
            return sess.run(op)


def normal_001(shape):
    return graph_draw(lambda: tf.compat.v1.random_normal_initializer(
        stddev=0.01, seed=3)(shape, tf.float32))


def glorot_v1(shape, op_seed):
    return graph_draw(lambda: tf.compat.v1.glorot_uniform_initializer(seed=op_seed)(
        shape, tf.float32))


def noise_steps(shape, steps):
    """The sigmoid noise ``random_normal(shape, seed=3)`` at each of ``steps`` runs."""
    with tf.Graph().as_default():
        tf.compat.v1.set_random_seed(SEED)
        op = tf.random.normal(shape, seed=3)
        with tf.compat.v1.Session() as sess:
            return [sess.run(op) for _ in range(steps)]


def keras_lstm(tf1_kernel, input_depth, units, forget_bias):
    """TF 1.x LSTMCell ``[input + h, 4H]`` (gates i, j, f, o; ``forget_bias`` added to f)
    as Keras' (kernel, recurrent_kernel, bias) with gates i, f, c, o."""
    i, j, f, o = np.split(tf1_kernel, 4, axis=1)
    k = np.concatenate([i, f, j, o], 1)
    bias = np.zeros(4 * units, np.float32)
    bias[units:2 * units] = forget_bias
    return k[:input_depth], k[input_depth:], bias


# -- tensorflow-addons decode ----------------------------------------------------------------

def tfa_decode(specs, layer_sizes, is_multi, history, weights, dec_inputs, enc_outputs,
               keras_cell, score_bug=False, noise_seed=None):
    """Decode with ``specs`` [(class, units, kwargs, scope)]; ``weights`` maps rnnkit's
    TF 1.x names (without the ``attention_wrapper/`` scope) to arrays."""
    enc = tf.constant(enc_outputs)
    mechs = [cls(units, enc, memory_sequence_length=tf.constant(ENC_LENGTHS), **kw)
             for cls, units, kw, _ in specs]
    wrapper = S.AttentionWrapper(keras_cell, mechs if is_multi else mechs[0],
                                 attention_layer_size=layer_sizes, alignment_history=history)
    state = wrapper.get_initial_state(batch_size=5, dtype=tf.float32)
    wrapper(tf.constant(dec_inputs[:, 0]), state)  # build
    for (_, _, _, scope), m in zip(specs, mechs, strict=True):
        for name, var in (("memory_layer/kernel", m.memory_layer.kernel),
                          ("query_layer/kernel", getattr(m.query_layer, "kernel", None)),
                          ("attention_v", getattr(m, "attention_v", None)),
                          ("attention_g", getattr(m, "attention_g", None)
                           or getattr(m, "scale_weight", None)),
                          ("attention_b", getattr(m, "attention_b", None)),
                          ("attention_score_bias", getattr(m, "attention_score_bias", None))):
            if var is not None and f"{scope}/{name}" in weights:
                var.assign(weights[f"{scope}/{name}"])
        m.setup_memory(enc, memory_sequence_length=tf.constant(ENC_LENGTHS))  # new keys
        if score_bug:  # r1.15's V2 mechanisms: memory masked, scores not
            m.probability_fn = m.default_probability_fn
    for i, layer in enumerate(wrapper._attention_layers or ()):
        layer.kernel.assign(weights[f"attention_layer{'_' + str(i) if i else ''}/kernel"])
    if noise_seed is not None:
        tf.random.set_seed(noise_seed)  # the noise kernel restarts its stream
    decoder = S.BasicDecoder(wrapper, S.TrainingSampler())
    out, st, _ = decoder(tf.constant(dec_inputs),
                         initial_state=wrapper.get_initial_state(batch_size=5,
                                                                 dtype=tf.float32),
                         sequence_length=tf.constant(DEC_LENGTHS))
    rec = {"rnn_output": out.rnn_output.numpy(), "sample_id": out.sample_id.numpy(),
           "h": st.cell_state[0].numpy(), "c": st.cell_state[1].numpy(),
           "attention": st.attention.numpy(), "time": np.int32(out.rnn_output.shape[1])}
    aligns = st.alignments if is_multi else (st.alignments,)
    astates = st.attention_state if is_multi else (st.attention_state,)
    hists = (st.alignment_history if is_multi else (st.alignment_history,)) if history \
        else ()
    for k, a in enumerate(aligns):
        rec[f"alignments:{k}"] = a.numpy()
        rec[f"attention_state:{k}"] = astates[k].numpy()
    for k, h in enumerate(hists):
        rec[f"history:{k}"] = h.stack().numpy()
    return rec


# -- v1: attention_wrapper_test.py -----------------------------------------------------------

V1 = {  # name: ([(class, units, kwargs, scope)], attention_layer_size(s), is_multi, history)
    "bahdanau_not_normalized": (
        [(S.BahdanauAttention, 3, {}, "bahdanau_attention")], 6, False, True),
    "bahdanau_normalized": (
        [(S.BahdanauAttention, 3, {"normalize": True}, "bahdanau_attention")], 6, False,
        False),
    "luong_not_normalized": ([(S.LuongAttention, 9, {}, "luong_attention")], 6, False, False),
    "luong_scaled": ([(S.LuongAttention, 9, {"scale": True}, "luong_attention")], 6, False,
                     False),
    "not_use_attention_layer": (
        [(S.BahdanauAttention, 3, {}, "bahdanau_attention")], None, False, False),
    "bahdanau_monotonic_not_normalized": (
        [(S.BahdanauMonotonicAttention, 3, {"sigmoid_noise": 1.0, "sigmoid_noise_seed": 3},
          "bahdanau_monotonic_attention")], 6, False, True),
    "bahdanau_monotonic_normalized": (
        [(S.BahdanauMonotonicAttention, 3,
          {"normalize": True, "sigmoid_noise": 1.0, "sigmoid_noise_seed": 3},
          "bahdanau_monotonic_attention")], 6, False, True),
    "luong_monotonic_not_normalized": (
        [(S.LuongMonotonicAttention, 9, {"sigmoid_noise": 1.0, "sigmoid_noise_seed": 3},
          "luong_monotonic_attention")], 6, False, True),
    "luong_monotonic_scaled": (
        [(S.LuongMonotonicAttention, 9,
          {"scale": True, "sigmoid_noise": 1.0, "sigmoid_noise_seed": 3},
          "luong_monotonic_attention")], 6, False, True),
    "multi_attention": (
        [(S.BahdanauAttention, 9, {}, "bahdanau_attention"),
         (S.LuongAttention, 9, {}, "luong_attention")], [3, 4], True, True),
    "multi_attention_no_attention_layer": (
        [(S.BahdanauAttention, 9, {}, "bahdanau_attention"),
         (S.LuongAttention, 9, {}, "luong_attention")], None, True, True),
    "single_attention_as_list": (
        [(S.BahdanauAttention, 9, {}, "bahdanau_attention")], [3], True, True),
}


def v1_inputs():
    np.random.seed(SEED)  # TensorFlowTestCase.setUp
    dec = np.random.randn(5, 4, 7).astype(np.float32)
    enc = np.random.randn(5, 8, 10).astype(np.float32)
    return dec, enc


def v1_weights(name, memory_seeds):
    specs, sizes, is_multi, _ = V1[name]
    sizes_list = (sizes if is_multi else [sizes]) if sizes is not None else None
    att_depth = sum(sizes_list) if sizes_list else 10 * len(specs)
    w = {}
    kernel = normal_001([7 + att_depth + 9, 36])
    w["lstm_cell/kernel"] = kernel
    w["lstm_cell/bias"] = np.zeros(36, np.float32)
    for (_, units, kw, scope), seed in zip(specs, memory_seeds, strict=False):
        w[f"{scope}/memory_layer/kernel"] = glorot_v1([10, units], seed)
        if "bahdanau" in scope:
            w[f"{scope}/query_layer/kernel"] = normal_001([9, units])
            w[f"{scope}/attention_v"] = normal_001([units])
            if kw.get("normalize"):
                w[f"{scope}/attention_g"] = np.float32(np.sqrt(1.0 / units))
                w[f"{scope}/attention_b"] = np.zeros(units, np.float32)
        elif kw.get("scale"):
            w[f"{scope}/attention_g"] = np.float32(1.0)
        if "monotonic" in scope:
            w[f"{scope}/attention_score_bias"] = np.float32(0.0)
    for i, size in enumerate(sizes_list or ()):
        w[f"attention_layer{'_' + str(i) if i else ''}/kernel"] = normal_001([19, size])
    return w


def v1_case(name, memory_seeds):
    specs, sizes, is_multi, history = V1[name]
    dec, enc = v1_inputs()
    w = v1_weights(name, memory_seeds)
    att_depth = w["lstm_cell/kernel"].shape[0] - 16
    k, rk, b = keras_lstm(w["lstm_cell/kernel"], 7 + att_depth, 9, 1.0)
    cell = tf.keras.layers.LSTMCell(9)
    cell.build((None, 7 + att_depth))
    cell.kernel.assign(k)
    cell.recurrent_kernel.assign(rk)
    cell.bias.assign(b)
    monotonic = "monotonic" in name
    rec = tfa_decode(specs, sizes, is_multi, history, w, dec, enc, cell,
                     noise_seed=SEED if monotonic else None)
    rec.update({"dec_inputs": dec, "enc_outputs": enc})
    rec.update({f"var:attention_wrapper/{k}": v for k, v in w.items()})
    if monotonic:
        for t, n in enumerate(noise_steps([5, 8], 3)):
            rec[f"noise:{t}"] = n
    return rec


# -- v2: attention_wrapper_v2_test.py --------------------------------------------------------

V2 = {  # name: ([(class, units, kwargs, scope)], attention_layer_size, uses query layer)
    "bahdanau_not_normalized": (
        [(S.BahdanauAttention, 3, {}, "bahdanau_attention")], 6, True),
    "bahdanau_normalized": (
        [(S.BahdanauAttention, 3, {"normalize": True}, "bahdanau_attention")], 6, True),
    "luong_not_normalized": ([(S.LuongAttention, 9, {}, "luong_attention")], 6, False),
    "luong_scaled": ([(S.LuongAttention, 9, {"scale": True}, "luong_attention")], 6, False),
    "not_use_attention_layer": (
        [(S.BahdanauAttention, 3, {}, "bahdanau_attention")], None, True),
    "bahdanau_monotonic_not_normalized": (
        [(S.BahdanauMonotonicAttention, 3, {}, "bahdanau_monotonic_attention")], 6, True),
    "bahdanau_monotonic_normalized": (
        [(S.BahdanauMonotonicAttention, 3, {"normalize": True},
          "bahdanau_monotonic_attention")], 6, True),
    "luong_monotonic_not_normalized": (
        [(S.LuongMonotonicAttention, 9, {}, "luong_monotonic_attention")], 6, False),
    "luong_monotonic_scaled": (
        [(S.LuongMonotonicAttention, 9, {"scale": True}, "luong_monotonic_attention")], 6,
        False),
}


def v2_inputs():
    np.random.seed(SEED)  # TensorFlowTestCase.setUp, then AttentionWrapperV2Test.setUp
    np.random.randn(64, 10, 256)
    np.random.randint(10, size=(64,))
    np.random.randn(64, 12, 128)
    np.random.randint(12, size=(64,))
    dec = np.random.randn(5, 4, 7).astype(np.float32)
    enc = np.random.randn(5, 8, 10).astype(np.float32)
    return dec, enc


def v2_case(name):
    specs, size, query_layer = V2[name]
    dec, enc = v2_inputs()
    (_, units, kw, scope), = specs
    att_depth = size or 10
    w = {"lstm_cell/kernel": np.ones([7 + att_depth + 9, 36], np.float32),
         "lstm_cell/bias": np.zeros(36, np.float32),  # Keras' unit forget bias = forget_bias 1
         f"{scope}/memory_layer/kernel": np.ones([10, units], np.float32)}
    if query_layer:
        w[f"{scope}/query_layer/kernel"] = np.ones([9, units], np.float32)
    if "bahdanau" in scope:
        w[f"{scope}/attention_v"] = np.ones(units, np.float32)
        if kw.get("normalize"):
            w[f"{scope}/attention_g"] = np.float32(np.sqrt(1.0 / units))
            w[f"{scope}/attention_b"] = np.zeros(units, np.float32)
    elif kw.get("scale"):
        w[f"{scope}/attention_g"] = np.float32(1.0)
    if "monotonic" in scope:
        w[f"{scope}/attention_score_bias"] = np.float32(0.0)
    if size is not None:  # upstream: initializers.glorot_uniform(seed=1337), TF 1.x's
        w["attention_layer/kernel"] = glorot_v1([9 + 10, size], 1337)
    rec = {"dec_inputs": dec, "enc_outputs": enc}
    for prefix, bug in (("", False), ("bug:", True)):
        cell = tf.keras.layers.LSTMCell(9, recurrent_activation="sigmoid",
                                        kernel_initializer="ones",
                                        recurrent_initializer="ones")
        spec_kw = dict(kw, memory_layer=tf.keras.layers.Dense(
            units, kernel_initializer="ones", use_bias=False))
        if query_layer:
            spec_kw["query_layer"] = tf.keras.layers.Dense(
                units, kernel_initializer="ones", use_bias=False)
        if "bahdanau" in scope:
            spec_kw["kernel_initializer"] = "ones"
        out = tfa_decode([(specs[0][0], units, spec_kw, scope)], size, False, True, w, dec,
                         enc, cell, score_bug=bug)
        rec.update({prefix + k: v for k, v in out.items()})
    rec.update({f"var:attention_wrapper/{k}": v for k, v in w.items()})
    return rec


# upstream's means: (rnn_output, sample_id, c, h, attention) per case, for --search
V1_EXPECTED = {
    "bahdanau_not_normalized": (-0.0052250605, 1.4, -0.0040092287, -0.0020015112,
                                -0.0052052638),
    "bahdanau_normalized": (-0.00597103, 1.6, -0.0040052128, -0.0019996136, -0.00595117),
    "luong_not_normalized": (-0.0052615386, 1.3333333333, -0.004009536, -0.0020016613,
                             -0.0051812846),
    "not_use_attention_layer": (0.117389656, 4.6, -0.0063607907, -0.00323448, 0.117389656),
    "bahdanau_monotonic_not_normalized": (-0.002122893, 1.7333333333333334, -0.0040002423,
                                          -0.0019968653, -5.9313523e-05),
    "bahdanau_monotonic_normalized": (-0.0025896581, 1.6, -0.0040013152, -0.0019973689,
                                      -0.00069823361),
    "luong_monotonic_not_normalized": (-0.0021257224, 1.7333333333333334, -0.0040003359,
                                       -0.001996913, -5.2024145e-05),
    "single_attention_as_list": (-0.0098485695, 1.8, -0.0040023471, -0.0019979973,
                                 -0.0098808752),
    "multi_attention": (0.0011709079, 3.2, -0.0038725811, -0.0019329828, 0.001174294),
    "multi_attention_no_attention_layer": (0.11798714846372604, 7.933333333333334,
                                           -0.0036486709, -0.0018835809,
                                           0.11798714846372604),
}
SINGLE = [n for n in V1_EXPECTED if not n.startswith("multi")]


def summary(rec):
    return np.array([rec["rnn_output"].mean(), rec["sample_id"].mean(), rec["c"].mean(),
                     rec["h"].mean(), rec["attention"].mean()])


def error(name, seeds):
    return np.abs(summary(v1_case(name, seeds)) - V1_EXPECTED[name]).max()


def search(limit=400):
    """The memory layers' op seeds for which every upstream summary holds (within upstream's
    atol=1e-3, hence the same sample ids), closest first."""
    found = []
    for s in range(1, limit):
        errs = []
        for name in SINGLE:  # cheapest refusals first: the discrete sample-id means
            errs.append(error(name, [s]))
            if errs[-1] > 1e-3:
                break
        else:
            found.append((max(errs), s))
            print("single", s, max(errs), flush=True)
    first = min(found)[1]
    pairs = []
    for s in range(first + 1, first + limit):
        errs = []
        for name in ("multi_attention", "multi_attention_no_attention_layer"):
            errs.append(error(name, [first, s]))
            if errs[-1] > 1e-3:
                break
        else:
            pairs.append((max(errs), s))
            print("multi", first, s, max(errs), flush=True)
    print("single:", sorted(found)[:5], "multi:", sorted(pairs)[:5])


def main():
    if "--search" in sys.argv:
        search()
        return
    v1 = {}
    for name, (specs, _, _, _) in V1.items():
        seeds = MEMORY_OP_SEEDS[:len(specs)]
        for k, v in v1_case(name, seeds).items():
            v1[f"{name}/{k}"] = v
        print("v1", name, summary(v1_case(name, seeds)), V1_EXPECTED.get(name))
    np.savez(OUT / "upstream_contrib_attention.npz", **v1)
    v2 = {}
    for name in V2:
        for k, v in v2_case(name).items():
            v2[f"{name}/{k}"] = v
    np.savez(OUT / "upstream_contrib_attention_v2.npz", **v2)
    print("wrote", len(v1), "+", len(v2), "arrays")


if __name__ == "__main__":
    main()
