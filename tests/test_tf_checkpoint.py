"""TF checkpoints read without TensorFlow (fixtures from tests/golden/make_tf_checkpoint_golden.py,
TF 2.15), loaded into rnnkit modules, reproducing TF's outputs."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

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
    # a second conversion into the same run names only what convert-tf offers
    again = subprocess.run([sys.executable, "-m", "rnnkit", "convert-tf",
                            str(CKPT / "seed003" / "char-rnn_3"), "--to", "charrnn", "--out",
                            str(tmp_path / "run"), "--vocab", str(tmp_path / "chars.json")],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 2, again.stderr
    assert "is not empty; choose another --out" in again.stderr
    assert "--resume" not in again.stderr and "--overwrite" not in again.stderr


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


def _listed(ckpt) -> list[str]:
    return [f"{name}:{','.join(map(str, shape))}" for name, shape in compat.list_tf_variables(ckpt)]


def test_partitioned_variables_are_listed_whole_and_reassembled_as_tf_does():
    """TF 1.x's partitioned variables (LSTMCell num_unit_shards / num_proj_shards,
    get_variable(partitioner=fixed_size_partitioner(2))) are saved as slices; TF lists and
    loads each as one full variable."""
    folder = CKPT / "sharded_vars"
    ref = np.load(folder / "outputs.npz")
    assert _listed(folder) == ref["listed"].tolist()  # tf.train.list_variables: no slices
    assert dict(compat.list_tf_variables(folder))["rnn/lstm_cell/kernel"] == [3 + 3, 16]
    values = compat.read_tf_checkpoint(folder)
    assert sorted(values) == [n.split(":")[0] for n in ref["listed"]]
    for name, value in values.items():  # as tf.train.load_variable reassembles them
        want = ref[f"var:{name}"]
        assert value.dtype == want.dtype and value.tobytes() == want.tobytes(), name
        assert value.shape == want.shape, name


def test_partitioned_lstm_cell_checkpoint_reproduces_tf_outputs():
    folder = CKPT / "sharded_vars"
    ref = np.load(folder / "outputs.npz")
    cell = rnn.LSTMCell(4, num_proj=3, num_unit_shards=2, num_proj_shards=2)
    softmax = nn.Linear(3, 5)  # get_variable's weights [3, 5] and biases [5], partitioned
    compat.load_tf_checkpoint({"rnn/lstm_cell": cell, "softmax": softmax}, folder)
    with torch.no_grad():
        outputs, _ = rnn.dynamic_rnn(cell, torch.from_numpy(ref["x"]))
        got = softmax(outputs)
    np.testing.assert_allclose(got.numpy(), ref["logits"], atol=1e-5, rtol=1e-5)


# -- TF's 'checkpoint' state file: relative names, resolved against its directory ----------
def test_fixture_state_files_hold_relative_names_only():
    """No fixture holds this checkout's location: TF's state files name checkpoints relative
    to their directory (the generator saves with relative paths)."""
    here = str(FIXTURES.resolve().parent.parent).encode()
    for path in sorted(FIXTURES.rglob("*")) + sorted((FIXTURES.parent / "golden").glob("*")):
        assert not path.is_file() or here not in path.read_bytes(), path
    states = sorted(FIXTURES.rglob("checkpoint"))
    assert len(states) >= 3
    for state in states:
        paths = re.findall(r'^\s*\w+:\s*"(.*)"\s*$', state.read_text(), re.M)
        assert paths, state
        for path in paths:
            assert not Path(path).is_absolute() and "/" not in path, (state, path)


@pytest.mark.parametrize("case", ["seed003", "seed003_sharded", "sharded_vars"])
def test_checkpoint_directory_moved_elsewhere_still_loads(tmp_path, monkeypatch, case):
    """A relative model_checkpoint_path is resolved against the state file's directory (as
    TF does), not the working directory: a copy of the folder anywhere loads by directory."""
    folder = Path(shutil.copytree(CKPT / case, tmp_path / "moved" / case))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    want = compat.read_tf_checkpoint(CKPT / case)
    assert compat.list_tf_variables(folder) == compat.list_tf_variables(CKPT / case)
    got = compat.read_tf_checkpoint(folder)
    assert got.keys() == want.keys()
    assert all(got[k].tobytes() == want[k].tobytes() for k in want)
    (CKPT / case / "checkpoint").stat()  # the original is still there; the copy is read:
    for data in folder.glob("*.data-*"):
        data.write_bytes(data.read_bytes()[:8])
    with pytest.raises(TFCheckpointError, match=re.escape(str(folder))):
        compat.read_tf_checkpoint(folder)


def test_relative_state_file_path_into_a_subdirectory(tmp_path, monkeypatch):
    sub = tmp_path / "ck" / "step-3"
    shutil.copytree(CKPT / "seed003", sub)
    (tmp_path / "ck" / "checkpoint").write_text('model_checkpoint_path: "step-3/char-rnn_3"\n')
    monkeypatch.chdir(tmp_path)
    assert compat.list_tf_variables(tmp_path / "ck") == compat.list_tf_variables(sub)
