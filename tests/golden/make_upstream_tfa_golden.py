"""Record tensorflow-addons 0.23's ``attention_wrapper_test._test_with_attention`` runs into
``tests/fixtures/upstream_tfa_attention_wrapper.npz``.

    /work/tfenv/bin/python tests/golden/make_upstream_tfa_golden.py

Upstream's expected means come from a model whose only random weights are the attention
layer's kernel (``glorot_uniform(seed=1337)`` under ``tf.random.set_seed(87654321)``); every
other weight is ``"ones"`` or a constant.  For each case this records, under ``<case>:``,
that kernel (TF's ``[cell_depth + memory_depth, attention_layer_size]`` layout; absent when
the case has no attention layer), the numpy inputs upstream draws (the test replays them
with ``np.random.seed`` and checks they agree) and the decoder's final outputs and state.
"""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow_addons.seq2seq import attention_wrapper as wrapper  # noqa: E402
from tensorflow_addons.seq2seq import basic_decoder  # noqa: E402
from tensorflow_addons.seq2seq import sampler as sampler_py  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "fixtures"

# name: (mechanism, mechanism kwargs, depth, alignment_history, attention_layer_size,
#        create_query_layer) as upstream's test_* functions call _test_with_attention
CASES = {
    "bahdanau_not_normalized": (wrapper.BahdanauAttention, {"kernel_initializer": "ones"},
                                3, True, 6, True),
    "bahdanau_normalized": (wrapper.BahdanauAttention,
                            {"kernel_initializer": "ones", "normalize": True}, 3, False, 6,
                            True),
    "luong_not_normalized": (wrapper.LuongAttention, {}, 9, False, 6, False),
    "luong_scaled": (wrapper.LuongAttention, {"scale": True}, 9, False, 6, False),
    "not_use_attention_layer": (wrapper.BahdanauAttention, {"kernel_initializer": "ones"},
                                3, False, None, True),
    "bahdanau_monotonic_not_normalized": (wrapper.BahdanauMonotonicAttention,
                                          {"kernel_initializer": "ones"}, 3, True, 6, True),
    "bahdanau_monotonic_normalized": (wrapper.BahdanauMonotonicAttention,
                                      {"kernel_initializer": "ones", "normalize": True}, 3,
                                      True, 6, True),
    "luong_monotonic_not_normalized": (wrapper.LuongMonotonicAttention, {}, 9, True, 6,
                                       False),
    "luong_monotonic_scaled": (wrapper.LuongMonotonicAttention, {"scale": True}, 9, True, 6,
                               False),
}


def dummy_data2():
    """upstream's DummyData2(): its draws advance numpy's stream."""
    np.random.randn(64, 10, 256)
    np.random.randint(1, high=10, size=(64,))
    np.random.randn(64, 12, 128)
    np.random.randint(12, size=(64,))


def run_case(creator, kwargs, depth, alignment_history, attention_layer_size, query_layer):
    tf.random.set_seed(87654321)  # set_random_state_for_tf_and_np()
    np.random.seed(87654321)
    dummy_data2()
    encoder_sequence_length = [3, 2, 3, 1, 1]
    decoder_sequence_length = [2, 0, 1, 2, 3]
    batch_size, encoder_max_time, input_depth, encoder_output_depth, cell_depth = 5, 8, 7, 10, 9
    decoder_inputs = np.random.randn(batch_size, 4, input_depth).astype(np.float32)
    encoder_outputs = np.random.randn(batch_size, encoder_max_time,
                                      encoder_output_depth).astype(np.float32)
    kwargs = dict(kwargs)
    if query_layer:
        kwargs["query_layer"] = tf.keras.layers.Dense(depth, kernel_initializer="ones",
                                                      use_bias=False)
    kwargs["memory_layer"] = tf.keras.layers.Dense(depth, kernel_initializer="ones",
                                                   use_bias=False)
    mechanism = creator(units=depth, memory=encoder_outputs,
                        memory_sequence_length=encoder_sequence_length, **kwargs)
    cell = tf.keras.layers.LSTMCell(cell_depth, recurrent_activation="sigmoid",
                                    kernel_initializer="ones", recurrent_initializer="ones")
    cell = wrapper.AttentionWrapper(cell, mechanism, attention_layer_size=attention_layer_size,
                                    alignment_history=alignment_history)
    if cell._attention_layers is not None:
        for layer in cell._attention_layers:
            layer.kernel_initializer = tf.compat.v1.keras.initializers.glorot_uniform(
                seed=1337)
    decoder = basic_decoder.BasicDecoder(cell=cell, sampler=sampler_py.TrainingSampler())
    initial_state = cell.get_initial_state(batch_size=batch_size, dtype=tf.float32)
    outputs, state, _ = decoder(decoder_inputs, initial_state=initial_state,
                                sequence_length=decoder_sequence_length)
    rec = {"decoder_inputs": decoder_inputs, "encoder_outputs": encoder_outputs,
           "rnn_output": outputs.rnn_output.numpy(), "sample_id": outputs.sample_id.numpy(),
           "cell_state_h": state.cell_state[0].numpy(), "cell_state_c": state.cell_state[1].numpy(),
           "attention": state.attention.numpy(), "alignments": state.alignments.numpy(),
           "attention_state": state.attention_state.numpy()}
    if alignment_history:
        rec["alignment_history"] = state.alignment_history.stack().numpy()
    if cell._attention_layers is not None:
        rec["attention_layer_kernel"] = cell._attention_layers[0].kernel.numpy()
    return rec


def main():
    arrays = {}
    for name, case in CASES.items():
        for key, value in run_case(*case).items():
            arrays[f"{name}:{key}"] = value
    np.savez(OUT / "upstream_tfa_attention_wrapper.npz", **arrays)
    print(f"wrote {len(arrays)} arrays for {len(CASES)} cases")


if __name__ == "__main__":
    main()
