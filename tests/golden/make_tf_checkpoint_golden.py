"""Write small TF 2.15 checkpoints and their models' outputs into tests/fixtures/tf_ckpt/.

    $TFENV/bin/python tests/golden/make_tf_checkpoint_golden.py [CASE ...]

(the TF environment as tests/golden/make_rnn_golden.py describes it; no CASE: all of them.
The first four cases draw from one seeded generator, so naming any of them writes all four
again, identically).  Cases:

* ``seed003/`` and ``seed003_sharded/``: seed 003's char-RNN as TF 1.x wrote it, a 3-layer
  ``BasicLSTMCell`` ``MultiRNNCell`` through ``dynamic_rnn`` and a contrib-style linear layer
  (``fully_connected/weights``, ``.../biases``), three Adam steps, saved by
  ``tf.compat.v1.train.Saver`` unsharded and ``sharded=True`` (prefix ``char-rnn_3``);
* ``keras/``: a ``tf.train.Checkpoint`` of a Keras model (Embedding, ``RNN(LSTMCell)``,
  ``RNN(GRUCell(reset_after=False))``, ``RNN(SimpleRNNCell)``, Dense) after one Adam step;
* ``tfa_attention/``: a ``tf.train.Checkpoint`` of a tfa ``AttentionWrapper`` (Keras
  ``LSTMCell``, ``BahdanauAttention`` over ragged memory, an attention layer) and a Dense
  output layer, stepped over fixed inputs;
* ``sharded_vars/``: partitioned (sliced) variables, as TF 1.x programs create them: a
  ``tf.compat.v1`` ``LSTMCell(num_proj=..., num_unit_shards=2, num_proj_shards=2)`` through
  ``dynamic_rnn`` and a softmax layer made with ``get_variable(...,
  partitioner=fixed_size_partitioner(2))``, saved by ``tf.compat.v1.train.Saver`` (prefix
  ``ckpt``).  Its ``outputs.npz`` also holds TF's ``tf.train.list_variables`` (``listed``,
  ``"name:d0,d1"`` strings) and each variable as ``tf.train.load_variable`` reassembles it
  (``var:<name>``).

``outputs.npz`` beside each holds the inputs and TF's outputs for them.  Saver checkpoints are
saved with a path relative to ``tests/fixtures/tf_ckpt``, so their ``checkpoint`` state files
hold relative names (``char-rnn_3``), as TF writes them for a relative directory.
"""

import contextlib
import os
import pathlib
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "tf_ckpt"
rng = np.random.default_rng(3)
VOCAB, UNITS, LAYERS, BATCH, TIME = 11, 12, 3, 2, 5


@contextlib.contextmanager
def _in_out():
    """The working directory is OUT inside the block: a Saver given a relative path writes
    the relative name into its 'checkpoint' state file (TF writes an absolute one for an
    absolute path)."""
    before = os.getcwd()
    os.chdir(OUT)
    try:
        yield
    finally:
        os.chdir(before)


def _check_state_file(folder: pathlib.Path, prefix: str) -> None:
    text = (folder / "checkpoint").read_text()
    assert text == (f'model_checkpoint_path: "{prefix}"\n'
                    f'all_model_checkpoint_paths: "{prefix}"\n'), text


def seed003(name: str, sharded: bool) -> None:
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(1)
        x = v1.placeholder(tf.int32, [BATCH, TIME])
        y = v1.placeholder(tf.int32, [BATCH, TIME])
        cell = v1.nn.rnn_cell.MultiRNNCell(
            [v1.nn.rnn_cell.BasicLSTMCell(UNITS) for _ in range(LAYERS)])
        outputs, _ = v1.nn.dynamic_rnn(cell, tf.one_hot(x, VOCAB), dtype=tf.float32)
        with v1.variable_scope("fully_connected"):  # tf.contrib.layers.linear's variables
            w = v1.get_variable("weights", [UNITS, VOCAB])
            b = v1.get_variable("biases", [VOCAB], initializer=v1.random_normal_initializer())
        logits = tf.reshape(tf.matmul(tf.reshape(outputs, [-1, UNITS]), w) + b,
                            [BATCH, TIME, VOCAB])
        loss = tf.reduce_mean(v1.nn.sparse_softmax_cross_entropy_with_logits(
            labels=y, logits=logits))
        train = v1.train.AdamOptimizer(0.05).minimize(loss)
        saver = v1.train.Saver(sharded=sharded)
        ids = rng.integers(0, VOCAB, (BATCH, TIME)).astype(np.int32)
        with v1.Session(graph=graph) as s:
            s.run(v1.global_variables_initializer())
            for v in v1.trainable_variables():  # values from the seeded numpy generator
                v.load(rng.normal(scale=0.3, size=v.shape.as_list()).astype(np.float32), s)
            for _ in range(3):
                s.run(train, {x: ids, y: np.roll(ids, -1, 1)})
            folder = OUT / name
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            with _in_out():
                saver.save(s, f"{name}/char-rnn_3", write_meta_graph=False)
            _check_state_file(folder, "char-rnn_3")
            np.savez(folder / "outputs.npz", ids=ids, logits=s.run(logits, {x: ids}))
    print("wrote", name, sorted(p.name for p in (OUT / name).iterdir()))


def keras() -> None:
    tf.keras.utils.set_random_seed(2)
    model = tf.keras.Sequential([
        tf.keras.layers.Embedding(13, 6),
        tf.keras.layers.RNN(tf.keras.layers.LSTMCell(8), return_sequences=True),
        tf.keras.layers.RNN(tf.keras.layers.GRUCell(7, reset_after=False),
                            return_sequences=True),
        tf.keras.layers.RNN(tf.keras.layers.SimpleRNNCell(5), return_sequences=True),
        tf.keras.layers.Dense(4),
    ])
    ids = rng.integers(0, 13, (3, 6))
    model(ids)
    for v in model.trainable_variables:  # away from the initializers' special values
        v.assign(rng.normal(scale=0.4, size=v.shape).astype(np.float32))
    opt = tf.keras.optimizers.Adam(0.01)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(ids) ** 2)
    opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                            model.trainable_variables, strict=True))
    folder = OUT / "keras"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    tf.train.Checkpoint(model=model, optimizer=opt).write(str(folder / "ckpt"))
    np.savez(folder / "outputs.npz", ids=ids, outputs=model(ids).numpy())
    for name, shape in tf.train.list_variables(str(folder / "ckpt")):
        print(" ", name, shape)


def tfa_attention() -> None:
    import tensorflow_addons as tfa

    tf.keras.utils.set_random_seed(4)
    batch, steps = 3, 4
    memory = rng.normal(size=(batch, 6, 5)).astype(np.float32)
    lengths = np.array([6, 3, 1], np.int32)
    mech = tfa.seq2seq.BahdanauAttention(7, memory, lengths)
    wrapper = tfa.seq2seq.AttentionWrapper(tf.keras.layers.LSTMCell(8), mech,
                                           attention_layer_size=6)
    dense = tf.keras.layers.Dense(9)
    x = rng.normal(size=(batch, steps, 4)).astype(np.float32)
    state = wrapper.get_initial_state(batch_size=batch, dtype=tf.float32)
    dense(wrapper(x[:, 0], state)[0])  # build
    for v in wrapper.trainable_variables + dense.trainable_variables:
        v.assign(rng.normal(scale=0.5, size=v.shape).astype(np.float32))
    mech.setup_memory(memory, memory_sequence_length=lengths)  # keys from the new weights
    state = wrapper.get_initial_state(batch_size=batch, dtype=tf.float32)
    outs = []
    for t in range(steps):
        out, state = wrapper(x[:, t], state)
        outs.append(dense(out).numpy())
    folder = OUT / "tfa_attention"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    tf.train.Checkpoint(wrapper=wrapper, dense=dense).write(str(folder / "ckpt"))
    np.savez(folder / "outputs.npz", memory=memory, lengths=lengths, x=x,
             logits=np.stack(outs, 1))
    for name, shape in tf.train.list_variables(str(folder / "ckpt")):
        print(" ", name, shape)


def sharded_vars() -> None:
    v1 = tf.compat.v1
    local = np.random.default_rng(5)  # its own generator: the other cases stay as they were
    batch, time, depth, units, proj, classes = 2, 4, 3, 4, 3, 5
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [batch, time, depth])
        cell = v1.nn.rnn_cell.LSTMCell(units, num_proj=proj, num_unit_shards=2,
                                       num_proj_shards=2)
        outputs, _ = v1.nn.dynamic_rnn(cell, x, dtype=tf.float32)
        with v1.variable_scope("softmax"):
            w = v1.get_variable("weights", [proj, classes],
                                partitioner=v1.fixed_size_partitioner(2))  # rows 2 + 1
            b = v1.get_variable("biases", [classes],
                                partitioner=v1.fixed_size_partitioner(2))  # 3 + 2
        logits = tf.reshape(tf.matmul(tf.reshape(outputs, [-1, proj]), w) + b,
                            [batch, time, classes])
        saver = v1.train.Saver()
        inputs = local.normal(size=(batch, time, depth)).astype(np.float32)
        with v1.Session(graph=graph) as s:
            s.run(v1.global_variables_initializer())
            for v in v1.global_variables():  # each part of a partitioned variable
                v.load(local.normal(scale=0.5, size=v.shape.as_list()).astype(np.float32), s)
            folder = OUT / "sharded_vars"
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            with _in_out():
                saver.save(s, "sharded_vars/ckpt", write_meta_graph=False)
            _check_state_file(folder, "ckpt")
            got = s.run(logits, {x: inputs})
    prefix = str(folder / "ckpt")
    listed = tf.train.list_variables(prefix)
    assert any(shape == [2 * depth, 4 * units] for _, shape in listed), listed  # full shapes
    values = {f"var:{name}": tf.train.load_variable(prefix, name) for name, _ in listed}
    np.savez(folder / "outputs.npz", x=inputs, logits=got,
             listed=np.array([f"{n}:{','.join(map(str, d))}" for n, d in listed]), **values)
    for name, shape in listed:
        print(" ", name, shape)


CASES = {"seed003": lambda: seed003("seed003", sharded=False),
         "seed003_sharded": lambda: seed003("seed003_sharded", sharded=True),
         "keras": keras, "tfa_attention": tfa_attention, "sharded_vars": sharded_vars}


def main(argv: list[str]) -> None:
    unknown = sorted(set(argv) - set(CASES))
    if unknown:
        sys.exit(f"unknown cases {unknown}; the cases are {list(CASES)}")
    shared = ["seed003", "seed003_sharded", "keras", "tfa_attention"]  # draw from ``rng``
    wanted = set(argv or CASES) | (set(shared) if set(shared) & set(argv or CASES) else set())
    OUT.mkdir(parents=True, exist_ok=True)
    for name, make in CASES.items():  # in this order
        if name in wanted:
            make()


if __name__ == "__main__":
    main(sys.argv[1:])
