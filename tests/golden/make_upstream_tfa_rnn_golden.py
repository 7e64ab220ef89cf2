"""Record tensorflow-addons 0.23's ``tensorflow_addons/rnn/tests/`` Keras-layer runs into
``tests/fixtures/upstream_tfa_rnn_cells.npz``.

    /work/tfenv/bin/python tests/golden/make_upstream_tfa_rnn_golden.py

Every hard-coded value upstream checks comes from constant initializers (the ports need no
recording for them).  Upstream's Keras-layer tests run cells whose weights are TF's random
initialisation on unseeded numpy inputs and check shapes (``test_esn_keras_rnn``,
``nas_cell_test.test_keras_rnn``) or only that ``fit`` runs (``test_esn_keras_rnn_e2e``,
``test_with_masking_layer_layernorm_rnn``).  Here they run seeded
(``tf.keras.utils.set_random_seed(SEED)``, which seeds numpy too; byte-for-byte
reproducible) and this records, under ``<case>:``, the cell's initial variables
(``var:<Keras name without the layer scope and ":0">``), the numpy inputs (and targets),
Keras's outputs and, for the ``fit`` cases, the one batch's loss and the variables after
the step (``after:var:...``), so that the ports check values.
"""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

warnings.filterwarnings("ignore", module="tensorflow_addons")
from tensorflow_addons.rnn import ESNCell, LayerNormSimpleRNNCell, NASCell  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
SEED = 20230


def _variables(cell) -> dict[str, np.ndarray]:
    """``cell``'s variables by Keras name, its layer's scope and ``:0`` dropped."""
    out = {}
    for w in cell.weights:
        name = w.name.split(":")[0]
        name = name[name.index(cell.name):]
        out[f"var:{name}"] = w.numpy()
    return out


def keras_rnn(cell_fn, shape) -> dict[str, np.ndarray]:
    """``keras.layers.RNN(cell)`` on ``np.random.rand(*shape)`` (upstream's ``*_keras_rnn``)."""
    tf.keras.utils.set_random_seed(SEED)  # Python's, numpy's, TF's and Keras's seeds
    cell = cell_fn()
    seq_input = np.random.rand(*shape).astype(np.float32)
    outputs = tf.keras.layers.RNN(cell=cell)(seq_input)
    return {**_variables(cell), "inputs": seq_input, "outputs": outputs.numpy()}


def keras_fit(cell_fn, target_shape, return_sequences) -> dict[str, np.ndarray]:
    """Upstream's ``Masking`` + ``RNN(cell)`` model fitted one epoch of one batch
    (``categorical_crossentropy``, ``rmsprop``)."""
    tf.keras.utils.set_random_seed(SEED)  # Python's, numpy's, TF's and Keras's seeds
    inputs = np.random.random((2, 3, 4))
    targets = np.abs(np.random.random(target_shape))
    targets /= targets.sum(axis=-1, keepdims=True)
    cell = cell_fn()
    model = tf.keras.models.Sequential()
    model.add(tf.keras.layers.Masking(input_shape=(3, 4)))
    model.add(tf.keras.layers.RNN(cell, return_sequences=return_sequences))
    model.compile(loss="categorical_crossentropy", optimizer="rmsprop")
    before = _variables(cell)
    outputs = model(inputs.astype(np.float32)).numpy()
    history = model.fit(inputs, targets, epochs=1, batch_size=2, verbose=0)
    after = {f"after:{k}": v for k, v in _variables(cell).items()}
    return {**before, **after, "inputs": inputs, "targets": targets, "outputs": outputs,
            "loss": np.float32(history.history["loss"][0])}


CASES = {
    "esn_keras_rnn": lambda: keras_rnn(lambda: ESNCell(10), (2, 3, 5)),
    "nas_keras_rnn": lambda: keras_rnn(lambda: NASCell(10), (2, 3, 5)),
    "esn_keras_rnn_e2e": lambda: keras_fit(lambda: ESNCell(5), (2, 5), False),
    "layernorm_rnn_masking": lambda: keras_fit(lambda: LayerNormSimpleRNNCell(units=5),
                                               (2, 3, 5), True),
}


def main():
    arrays = {}
    for name, case in CASES.items():
        tf.keras.backend.clear_session()
        for key, value in case().items():
            arrays[f"{name}:{key}"] = value
    np.savez(OUT / "upstream_tfa_rnn_cells.npz", **arrays)
    print(f"wrote {len(arrays)} arrays for {len(CASES)} cases")


if __name__ == "__main__":
    main()
