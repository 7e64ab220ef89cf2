"""Record tensorflow-addons 0.23 attention references into tests/fixtures/*.npz.

    $TFENV/bin/python tests/golden/make_attention_golden.py

Arrays are saved under the TF 1.x-style names that ``rnnkit.compat.load_tf_variables``
reads (``<mechanism>/memory_layer/kernel``, ``attention_wrapper/attention_layer/kernel``,
``attention_wrapper/basic_rnn_cell/kernel`` as the fused ``[input + state, units]`` kernel).
"""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_addons as tfa  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
rng = np.random.default_rng(2024)
S = tfa.seq2seq


def randomize(weights, scale=0.5):
    for w in weights:
        w.assign(rng.normal(scale=scale, size=w.shape).astype(np.float32))


def mech_vars(mech, scope):
    out = {f"var:{scope}/memory_layer/kernel": mech.memory_layer.kernel.numpy()}
    if getattr(mech, "query_layer", None) is not None:
        out[f"var:{scope}/query_layer/kernel"] = mech.query_layer.kernel.numpy()
    for name in ("attention_v", "attention_g", "attention_b", "attention_score_bias"):
        var = getattr(mech, name, None)
        if var is None and name == "attention_g":
            var = getattr(mech, "scale_weight", None)  # tfa's LuongAttention
        if var is not None:
            out[f"var:{scope}/{name}"] = var.numpy()
    return out


MECHANISMS = {
    "bahdanau": (lambda m, l: S.BahdanauAttention(5, m, l), "bahdanau_attention", 4),
    "bahdanau_norm": (lambda m, l: S.BahdanauAttention(5, m, l, normalize=True),
                      "bahdanau_attention", 4),
    "luong": (lambda m, l: S.LuongAttention(5, m, l), "luong_attention", 5),
    "luong_scale": (lambda m, l: S.LuongAttention(5, m, l, scale=True), "luong_attention", 5),
    "bahdanau_mono_parallel": (lambda m, l: S.BahdanauMonotonicAttention(
        5, m, l, normalize=True, score_bias_init=-1.0, mode="parallel"),
        "bahdanau_monotonic_attention", 4),
    "bahdanau_mono_recursive": (lambda m, l: S.BahdanauMonotonicAttention(
        5, m, l, score_bias_init=0.5, mode="recursive"), "bahdanau_monotonic_attention", 4),
    "bahdanau_mono_hard": (lambda m, l: S.BahdanauMonotonicAttention(
        5, m, l, mode="hard"), "bahdanau_monotonic_attention", 4),
    "luong_mono_parallel": (lambda m, l: S.LuongMonotonicAttention(
        5, m, l, scale=True, score_bias_init=0.3, mode="parallel"),
        "luong_monotonic_attention", 5),
}


def mechanism_case(name):
    make, scope, qdim = MECHANISMS[name]
    memory = rng.normal(size=(3, 7, 6)).astype(np.float32)
    lengths = np.array([7, 4, 2], np.int32)
    mech = make(tf.constant(memory), tf.constant(lengths))
    state = mech.initial_state(3, dtype=tf.float32) if hasattr(mech, "initial_state") else \
        mech.initial_alignments(3, dtype=tf.float32)
    queries = rng.normal(size=(3, 3, qdim)).astype(np.float32)
    mech([tf.constant(queries[0]), state])  # build
    randomize(mech.trainable_weights)
    mech.setup_memory(tf.constant(memory), memory_sequence_length=tf.constant(lengths))
    record = {"memory": memory, "lengths": lengths, "queries": queries}
    for t in range(queries.shape[0]):
        align, state = mech([tf.constant(queries[t]), state])
        record[f"align:{t}"] = align.numpy()
    record.update(mech_vars(mech, scope))
    np.savez(OUT / f"attn_{name}.npz", **record)
    print("wrote", name, sorted(k for k in record if k.startswith("var:")))


def wrapper_case(name, make_mechs, layer_sizes, output_attention, batch=3, steps=6):
    memory = rng.normal(size=(batch, 20, 30)).astype(np.float32)
    lengths = np.array([5, 10, 20], np.int32)
    mechs = make_mechs(tf.constant(memory), tf.constant(lengths))
    cell = tf.keras.layers.SimpleRNNCell(6)
    wrapper = S.AttentionWrapper(cell, mechs, attention_layer_size=layer_sizes,
                                 alignment_history=True, output_attention=output_attention)
    x = rng.normal(size=(batch, steps, 8)).astype(np.float32)
    state = wrapper.get_initial_state(batch_size=batch, dtype=tf.float32)
    wrapper(tf.constant(x[:, 0]), state)  # build
    randomize(wrapper.trainable_weights)
    for m in (mechs if isinstance(mechs, list) else [mechs]):
        m.setup_memory(tf.constant(memory), memory_sequence_length=tf.constant(lengths))
    state = wrapper.get_initial_state(batch_size=batch, dtype=tf.float32)
    outs = []
    for t in range(steps):
        out, state = wrapper(tf.constant(x[:, t]), state)
        outs.append(out.numpy())
    record = {"memory": memory, "lengths": lengths, "x": x, "out": np.stack(outs, 1),
              "cell_state": state.cell_state[0].numpy() if isinstance(state.cell_state, list)
              else state.cell_state.numpy(),
              "attention": state.attention.numpy()}
    hist = state.alignment_history
    aligns = state.alignments
    if isinstance(hist, tuple):
        for i, (h, a) in enumerate(zip(hist, aligns, strict=True)):
            record[f"history:{i}"] = h.stack().numpy()
            record[f"alignments:{i}"] = a.numpy()
    else:
        record["history:0"] = hist.stack().numpy()
        record["alignments:0"] = aligns.numpy()
    record["var:attention_wrapper/basic_rnn_cell/kernel"] = np.concatenate(
        [cell.kernel.numpy(), cell.recurrent_kernel.numpy()], 0)
    record["var:attention_wrapper/basic_rnn_cell/bias"] = cell.bias.numpy()
    mech_list = mechs if isinstance(mechs, list) else [mechs]
    seen = {}
    for m in mech_list:
        base = {"BahdanauAttention": "bahdanau_attention",
                "LuongAttention": "luong_attention"}[type(m).__name__]
        k = seen.get(base, 0)
        seen[base] = k + 1
        scope = f"attention_wrapper/{base}" + (f"_{k}" if k else "")
        record.update(mech_vars(m, scope))
    if layer_sizes is not None:
        for i, layer in enumerate(wrapper._attention_layers):
            suffix = f"_{i}" if i else ""
            record[f"var:attention_wrapper/attention_layer{suffix}/kernel"] = \
                layer.kernel.numpy()
    np.savez(OUT / f"attn_wrapper_{name}.npz", **record)
    print("wrote wrapper", name, sorted(k for k in record if k.startswith("var:")))


def beam_coverage_case(name, coverage, length_penalty, beam=3, vocab=6, batch=3):
    """Beam search over an AttentionWrapper with ragged memory and a coverage penalty."""
    memory = rng.normal(size=(batch, 7, 4)).astype(np.float32)
    lengths = np.array([7, 3, 1], np.int32)
    tiled_memory = S.tile_batch(tf.constant(memory), beam)
    tiled_lengths = S.tile_batch(tf.constant(lengths), beam)
    mech = S.BahdanauAttention(5, tiled_memory, tiled_lengths)
    cell = tf.keras.layers.SimpleRNNCell(6)
    wrapper = S.AttentionWrapper(cell, mech, attention_layer_size=4, alignment_history=True)
    dense = tf.keras.layers.Dense(vocab)
    embedding = rng.normal(size=(vocab, 3)).astype(np.float32)
    state = wrapper.get_initial_state(batch_size=batch * beam, dtype=tf.float32)
    out0, _ = wrapper(tf.constant(np.zeros((batch * beam, 3), np.float32)), state)  # build
    dense(out0)
    randomize(wrapper.trainable_weights + dense.trainable_weights, scale=0.8)
    mech.setup_memory(tiled_memory, memory_sequence_length=tiled_lengths)  # keys, new weights
    dec = S.BeamSearchDecoder(wrapper, beam, output_layer=dense,
                              length_penalty_weight=length_penalty,
                              coverage_penalty_weight=coverage, maximum_iterations=8)
    start = np.array([0, 1, 2], np.int32)
    state = wrapper.get_initial_state(batch_size=batch * beam, dtype=tf.float32)
    out, final, seq_lengths = dec(tf.constant(embedding), start_tokens=tf.constant(start),
                                  end_token=5, initial_state=state)
    record = {
        "memory": memory, "lengths": lengths, "embedding": embedding, "start": start,
        "meta": np.array([beam, 5, 8], np.int64),
        "coverage": np.float32(coverage), "length_penalty": np.float32(length_penalty),
        "predicted_ids": out.predicted_ids.numpy(),
        "scores": out.beam_search_decoder_output.scores.numpy(),
        "parent_ids": out.beam_search_decoder_output.parent_ids.numpy(),
        "log_probs": final.log_probs.numpy(), "seq_lengths": seq_lengths.numpy(),
        "var:attention_wrapper/basic_rnn_cell/kernel": np.concatenate(
            [cell.kernel.numpy(), cell.recurrent_kernel.numpy()], 0),
        "var:attention_wrapper/basic_rnn_cell/bias": cell.bias.numpy(),
        "var:attention_wrapper/attention_layer/kernel": wrapper._attention_layers[0].kernel.numpy(),
        "var:dense/kernel": dense.kernel.numpy(), "var:dense/bias": dense.bias.numpy(),
    }
    record.update(mech_vars(mech, "attention_wrapper/bahdanau_attention"))
    np.savez(OUT / f"beam_attention_{name}.npz", **record)
    print("wrote beam with attention", name, np.isfinite(record["scores"]).all())


def main():
    OUT.mkdir(exist_ok=True)
    for name in MECHANISMS:
        mechanism_case(name)
    wrapper_case("seed", lambda m, l: S.BahdanauAttention(11, m, l), 13, True)
    wrapper_case("luong_context", lambda m, l: S.LuongAttention(6, m, l), None, False)
    wrapper_case("multi", lambda m, l: [S.BahdanauAttention(7, m, l, normalize=True),
                                        S.LuongAttention(6, m, l, scale=True)], [5, 4], True)
    # last, so that the random draws of the fixtures above stay as they were
    beam_coverage_case("coverage", 0.4, 0.0)
    beam_coverage_case("coverage_lp", 1.0, 0.6)


if __name__ == "__main__":
    main()
