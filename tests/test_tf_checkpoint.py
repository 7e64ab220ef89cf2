"""TF checkpoints read without TensorFlow (fixtures from tests/golden/make_tf_checkpoint_golden.py,
TF 2.15), loaded into rnnkit modules, reproducing TF's outputs."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import FIXTURES
from torch import nn

from rnnkit import compat, rnn
from rnnkit.compat.bundle import TFCheckpointError

CKPT = FIXTURES / "tf_ckpt"


def _seed003_model():
    cell = rnn.MultiRNNCell([rnn.BasicLSTMCell(12) for _ in range(3)])
    return cell, nn.Linear(12, 11)


def _seed003_logits(cell, linear, ids):
    x = F.one_hot(torch.from_numpy(ids).long(), 11).float()
    outputs, _ = rnn.dynamic_rnn(cell, x)
    return linear(outputs)


@pytest.mark.parametrize("case", ["seed003", "seed003_sharded"])
def test_seed003_saver_checkpoint_reproduces_tf_logits(case):
    folder = CKPT / case
    names = dict(compat.list_tf_variables(folder))  # the directory's 'checkpoint' file
    assert names["rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel"] == [11 + 12, 48]
    assert names["rnn/multi_rnn_cell/cell_2/basic_lstm_cell/kernel/Adam_1"] == [24, 48]
    assert names["fully_connected/weights"] == [12, 11] and names["beta1_power"] == []
    cell, linear = _seed003_model()
    loaded = compat.load_tf_checkpoint({"rnn/multi_rnn_cell": cell, "fully_connected": linear},
                                       folder / "char-rnn_3")
    assert not any(k.endswith(("Adam", "Adam_1", "_power")) for k in loaded)  # slots skipped
    ref = np.load(folder / "outputs.npz")
    with torch.no_grad():
        got = _seed003_logits(cell, linear, ref["ids"])
    np.testing.assert_allclose(got.numpy(), ref["logits"], atol=1e-5, rtol=1e-5)


def test_optimizer_slots_when_asked_for():
    values = compat.read_tf_checkpoint(CKPT / "seed003")
    assert values["beta1_power"].shape == () and 0 < float(values["beta1_power"]) < 1
    cell, linear = _seed003_model()
    with pytest.raises(ValueError, match="cannot place"):
        compat.load_tf_checkpoint({"rnn/multi_rnn_cell": cell, "fully_connected": linear},
                                  CKPT / "seed003", include_optimizer=True)


@pytest.mark.parametrize("damage", ["flip_data", "truncate_data", "flip_index",
                                    "truncate_index", "no_index"])
def test_damaged_checkpoints_are_refused(tmp_path, damage):
    folder = shutil.copytree(CKPT / "seed003", tmp_path / "ck")
    data = folder / "char-rnn_3.data-00000-of-00001"
    index = folder / "char-rnn_3.index"
    if damage == "flip_data":
        raw = bytearray(data.read_bytes())
        raw[len(raw) // 2] ^= 0x10
        data.write_bytes(bytes(raw))
        match = r"char-rnn_3.data-00000-of-00001 is damaged: .* fails its CRC32C check"
    elif damage == "truncate_data":
        data.write_bytes(data.read_bytes()[:100])
        match = "char-rnn_3.data-00000-of-00001 is (truncated|damaged)"
    elif damage == "flip_index":
        raw = bytearray(index.read_bytes())
        raw[20] ^= 0x01
        index.write_bytes(bytes(raw))
        match = r"char-rnn_3.index is damaged"
    elif damage == "truncate_index":
        index.write_bytes(index.read_bytes()[:-10])
        match = r"char-rnn_3.index is not a TF checkpoint index"
    else:
        index.unlink()
        match = r"char-rnn_3.index is missing"
    with pytest.raises(TFCheckpointError, match=match):
        compat.read_tf_checkpoint(folder / "char-rnn_3")


def test_keras_checkpoint_reproduces_tf_outputs():
    folder = CKPT / "keras"
    emb = nn.Embedding(13, 6)
    lstm = rnn.LSTMCell(8)  # Keras's scope name is lstm_cell, as TF 1.x's: its layout decides
    gru = rnn.GRUCell(7)  # TF 1.x formula == Keras GRUCell(reset_after=False)
    simple = rnn.BasicRNNCell(5)
    dense = nn.Linear(5, 4)
    scopes = {"model/layer_with_weights-0": emb, "model/layer_with_weights-1/cell": lstm,
              "model/layer_with_weights-2/cell": gru, "model/layer_with_weights-3/cell": simple,
              "model/layer_with_weights-4": dense}
    compat.load_tf_checkpoint(scopes, folder / "ckpt")
    ref = np.load(folder / "outputs.npz")
    with torch.no_grad():
        x = emb(torch.from_numpy(ref["ids"]).long())
        for cell in (lstm, gru, simple):
            x, _ = rnn.dynamic_rnn(cell, x)
        got = dense(x)
    np.testing.assert_allclose(got.numpy(), ref["outputs"], atol=1e-5, rtol=1e-5)


def test_ambiguous_layout_is_refused():
    cell = rnn.GRUCell(3, input_size=2)
    variables = {"gru_cell/gates/kernel": np.zeros((5, 6)), "gru_cell/recurrent_kernel":
                 np.zeros((3, 9))}
    with pytest.raises(ValueError, match=r"several layouts \(TF 1.x GRUCell, Keras GRUCell\)"):
        compat.load_tf_variables(cell, variables)


def test_convert_tf_char_rnn_into_a_run_that_samples(tmp_path):
    import json
    import subprocess
    import sys

    from rnnkit.apps import charrnn

    vocab = [chr(c) for c in range(ord("a"), ord("a") + 11)]
    (tmp_path / "chars.json").write_text(json.dumps(vocab))
    res = subprocess.run([sys.executable, "-m", "rnnkit", "convert-tf",
                          str(CKPT / "seed003" / "char-rnn_3"), "--to", "charrnn", "--out",
                          str(tmp_path / "run"), "--vocab", str(tmp_path / "chars.json")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    model, chars, cfg = charrnn.load_run(tmp_path / "run")
    assert chars.chars == vocab and cfg["num_layers"] == 3 and cfg["hidden_size"] == 12
    ref = np.load(CKPT / "seed003" / "outputs.npz")
    with torch.no_grad():
        logits, _ = model(torch.from_numpy(ref["ids"]).long())
    np.testing.assert_allclose(logits.numpy(), ref["logits"], atol=1e-5, rtol=1e-5)
    res = subprocess.run([sys.executable, "-m", "rnnkit", "charrnn", "sample",
                          str(tmp_path / "run"), "--length", "10", "--seed", "0",
                          "--device", "cpu"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and len(res.stdout.strip()) == 11, res.stderr
    bad = subprocess.run([sys.executable, "-m", "rnnkit", "convert-tf",
                          str(CKPT / "seed003"), "--out", str(tmp_path / "r2"), "--vocab",
                          str(tmp_path / "chars.json"), "--corpus", "x"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "one of them" in bad.stderr


def test_textloader_vocabulary_order():
    from rnnkit.apps.convert import textloader_vocab

    assert textloader_vocab("abbcccdd") == ["c", "b", "d", "a"]  # count, then first seen


def test_tfa_attention_checkpoint_reproduces_tf_outputs():
    from rnnkit import seq2seq

    folder = CKPT / "tfa_attention"
    ref = np.load(folder / "outputs.npz")
    memory, lengths = torch.from_numpy(ref["memory"]), torch.from_numpy(ref["lengths"]).long()
    mech = seq2seq.BahdanauAttention(7, memory, lengths)
    cell = rnn.LSTMCell(8)  # the checkpoint holds a Keras LSTMCell
    wrapper = seq2seq.AttentionWrapper(cell, mech, attention_layer_size=6)
    dense = nn.Linear(6, 9)
    x = torch.from_numpy(ref["x"])
    wrapper(x[:, 0], wrapper.zero_state(3))  # build the lazily sized layers
    compat.load_tf_checkpoint({"wrapper/_cell": cell, "wrapper/_attention_mechanisms/0": mech,
                               "wrapper/_attention_layers/0": wrapper.attention_layers[0],
                               "dense": dense}, folder / "ckpt")
    with torch.no_grad():
        out, _ = rnn.dynamic_rnn(wrapper, x, initial_state=wrapper.zero_state(3))
        got = dense(out)
    np.testing.assert_allclose(got.numpy(), ref["logits"], atol=1e-5, rtol=1e-5)
