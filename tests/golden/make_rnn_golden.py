"""Record TF 1.x (tf.compat.v1) reference outputs into tests/fixtures/*.npz.

Needs TensorFlow only when regenerating (``$TFENV``: a directory for its virtual
environment):

    python -m venv "$TFENV" && "$TFENV"/bin/pip install tensorflow-cpu==2.15.1 \
        tensorflow-addons==0.23.0
    $TFENV/bin/python tests/golden/make_rnn_golden.py

Each fixture holds ``var:<tf name>`` arrays (random weights), the inputs ``x``, optional
``lengths``, ``init:<i>`` initial-state leaves, and the outputs ``out`` / ``out_bw`` and
``state:<i>`` final-state leaves (flattened with ``tf.nest``).  rnnkit's tests load the
variables through ``rnnkit.compat.load_tf_variables`` and compare.
"""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

v1 = tf.compat.v1
v1.disable_eager_execution()
R = v1.nn.rnn_cell
OUT = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
rng = np.random.default_rng(1234)


def run_case(name, make_cell, x, lengths=None, init=False, bidirectional=False):
    v1.reset_default_graph()
    xs = v1.constant(x)
    cell = make_cell()
    record = {"x": x}
    if lengths is not None:
        record["lengths"] = np.asarray(lengths, np.int32)
    if bidirectional:
        (of, ob), (sf, sb) = v1.nn.bidirectional_dynamic_rnn(
            cell, make_cell(), xs, sequence_length=lengths, dtype=tf.float32)
        fetch = {"out": of, "out_bw": ob, "state": (sf, sb)}
    else:
        initial = None
        if init:
            zero = cell.zero_state(x.shape[0], tf.float32)
            leaves = [rng.normal(size=z.shape.as_list()).astype(np.float32)
                      for z in tf.nest.flatten(zero)]
            for i, leaf in enumerate(leaves):
                record[f"init:{i}"] = leaf
            initial = tf.nest.pack_sequence_as(zero, [v1.constant(v) for v in leaves])
        out, st = v1.nn.dynamic_rnn(cell, xs, sequence_length=lengths, initial_state=initial,
                                    dtype=tf.float32)
        fetch = {"out": out, "state": st}
    with v1.Session() as sess:
        sess.run(v1.global_variables_initializer())
        # random, not initializer-shaped, weights so that every slot is exercised
        for var in v1.global_variables():
            sess.run(var.assign(rng.normal(scale=0.5, size=var.shape.as_list())))
        res = sess.run(fetch)
        for var in v1.global_variables():
            record["var:" + var.name[:-2]] = sess.run(var)
    record["out"] = res["out"]
    if "out_bw" in res:
        record["out_bw"] = res["out_bw"]
    for i, leaf in enumerate(tf.nest.flatten(res["state"])):
        record[f"state:{i}"] = leaf
    np.savez(OUT / f"rnn_{name}.npz", **record)
    print("wrote", name, sorted(k for k in record if k.startswith("var:")))


def seq_loss_case():
    v1.reset_default_graph()
    logits = rng.normal(size=(3, 4, 5)).astype(np.float32)
    targets = rng.integers(0, 5, size=(3, 4)).astype(np.int32)
    weights = rng.uniform(0.5, 2.0, size=(3, 4)).astype(np.float32)
    weights[0, 3] = weights[2, 2:] = 0.0
    record = {"logits": logits, "targets": targets, "weights": weights}
    fetch = {}
    for at in (False, True):
        for ab in (False, True):
            for st in (False, True):
                for sb in (False, True):
                    if (at and st) or (ab and sb) or (ab and st) or (at and sb):
                        continue
                    key = f"loss_{int(at)}{int(ab)}{int(st)}{int(sb)}"
                    fetch[key] = tfa_sequence_loss(logits, targets, weights, at, ab, st, sb)
    with v1.Session() as sess:
        for k, v in sess.run(fetch).items():
            record[k] = v
    np.savez(OUT / "sequence_loss.npz", **record)
    print("wrote sequence_loss", sorted(fetch))


def tfa_sequence_loss(logits, targets, weights, at, ab, st, sb):
    import tensorflow_addons as tfa

    return tfa.seq2seq.sequence_loss(
        v1.constant(logits), v1.constant(targets), v1.constant(weights),
        average_across_timesteps=at, average_across_batch=ab,
        sum_over_timesteps=st, sum_over_batch=sb)


def main():
    OUT.mkdir(exist_ok=True)
    x = rng.normal(size=(4, 6, 3)).astype(np.float32)
    lengths = [6, 3, 0, 5]
    run_case("basic_rnn", lambda: R.BasicRNNCell(5), x, lengths)
    run_case("basic_lstm", lambda: R.BasicLSTMCell(5), x, lengths, init=True)
    run_case("basic_lstm_concat", lambda: R.BasicLSTMCell(4, forget_bias=0.5,
                                                          state_is_tuple=False), x, lengths)
    run_case("lstm_full", lambda: R.LSTMCell(5, use_peepholes=True, cell_clip=0.8, num_proj=3,
                                             proj_clip=0.6), x, lengths, init=True)
    run_case("lstm_proj", lambda: R.LSTMCell(5, num_proj=3), x, lengths)
    run_case("gru", lambda: R.GRUCell(5), x, lengths, init=True)
    run_case("gru_reset_after", lambda: tf.keras.layers.GRUCell(5, reset_after=True), x, lengths)
    run_case("multi", lambda: R.MultiRNNCell([R.BasicLSTMCell(5), R.GRUCell(4),
                                              R.BasicRNNCell(3)]), x, lengths, init=True)
    run_case("bidir_lstm", lambda: R.BasicLSTMCell(5), x, lengths, bidirectional=True)
    seq_loss_case()


if __name__ == "__main__":
    main()
