"""Record tensorflow-addons 0.23 beam-search references into tests/fixtures/*.npz.

Needs TensorFlow only when regenerating (see make_rnn_golden.py for the environment):

    $TFENV/bin/python tests/golden/make_seq2seq_golden.py

Model: Keras GRUCell(reset_after=True) + Dense output layer + embedding table, random
weights; rnnkit loads them through load_tf_variables (names ``gru_cell/...``,
``dense/...``, ``embedding``).
"""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_addons as tfa  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
rng = np.random.default_rng(99)


def beam_case(name, beam_width, length_penalty, vocab=7, units=8, emb_dim=5, batch=3,
              max_iter=7, end_token=1):
    tf.keras.utils.set_random_seed(7)
    cell = tf.keras.layers.GRUCell(units, reset_after=True)
    dense = tf.keras.layers.Dense(vocab)
    embedding = rng.normal(size=(vocab, emb_dim)).astype(np.float32)
    init = rng.normal(size=(batch, units)).astype(np.float32)
    cell.build((None, emb_dim))
    dense.build((None, units))
    for w in cell.weights + dense.weights:
        w.assign(rng.normal(scale=0.8, size=w.shape))
    start = np.zeros(batch, np.int32) + 2
    dec = tfa.seq2seq.BeamSearchDecoder(cell, beam_width, output_layer=dense,
                                        length_penalty_weight=length_penalty,
                                        maximum_iterations=max_iter)
    tiled = tfa.seq2seq.tile_batch(tf.constant(init), beam_width)
    out, state, lengths = dec(tf.constant(embedding), start_tokens=start, end_token=end_token,
                              initial_state=tiled)
    record = {
        "var:gru_cell/kernel": cell.kernel.numpy(),
        "var:gru_cell/recurrent_kernel": cell.recurrent_kernel.numpy(),
        "var:gru_cell/bias": cell.bias.numpy(),
        "var:dense/kernel": dense.kernel.numpy(),
        "var:dense/bias": dense.bias.numpy(),
        "var:embedding": embedding,
        "init": init, "start": start,
        "meta": np.array([beam_width, end_token, max_iter], np.int64),
        "length_penalty": np.float32(length_penalty),
        "predicted_ids": out.predicted_ids.numpy(),
        "scores": out.beam_search_decoder_output.scores.numpy(),
        "parent_ids": out.beam_search_decoder_output.parent_ids.numpy(),
        "step_ids": out.beam_search_decoder_output.predicted_ids.numpy(),
        "lengths": state.lengths.numpy(),
        "log_probs": state.log_probs.numpy(),
        "seq_lengths": lengths.numpy(),
    }
    np.savez(OUT / f"beam_{name}.npz", **record)
    print("wrote", name, out.predicted_ids.shape)


def gather_tree_case():
    t, b, k = 6, 3, 4
    step_ids = rng.integers(0, 5, size=(t, b, k)).astype(np.int32)
    parent_ids = rng.integers(0, k, size=(t, b, k)).astype(np.int32)
    max_len = np.array([6, 3, 0], np.int32)
    got = tfa.seq2seq.gather_tree(step_ids, parent_ids, max_sequence_lengths=max_len,
                                  end_token=4)
    np.savez(OUT / "gather_tree.npz", step_ids=step_ids, parent_ids=parent_ids,
             max_len=max_len, out=got.numpy())
    print("wrote gather_tree")


def main():
    OUT.mkdir(exist_ok=True)
    beam_case("w3_lp0", 3, 0.0)
    beam_case("w5_lp1", 5, 1.0)
    beam_case("w1_lp0", 1, 0.0)
    gather_tree_case()


if __name__ == "__main__":
    main()
