"""Every example runs and prints results that make sense (seed ports)."""

import importlib.util
import pathlib

import pytest
import torch

from rnnkit import rnn

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_seed000_dynamic_rnn_loss_equals_manual(capsys):
    loss, manual = load("seed000_m1_dynamic_rnn").dynamic_rnn_test()
    assert loss == pytest.approx(manual, abs=1e-5)
    assert "manual cal. loss" in capsys.readouterr().out


def test_seed000_basic_decode_trains_and_infers():
    loss, sample_id, lengths = load("seed000_0_basic_decode").main()
    assert loss < 0.9  # from ln(5) = 1.61; the three targets share one SOS-start prefix
    assert sample_id.shape[0] == 3 and int(lengths.max()) <= 10


def test_seed000_rnn_wrapper_last_state():
    """The user wrapper's last state is its inner BasicRNNCell's (the wrapper changes only the
    output): the fused kernel over the same inputs agrees."""
    last, wrapper, inputs = load("seed000_1_rnn_wrapper").main()
    _, want = rnn.dynamic_rnn(wrapper.cell, inputs)
    torch.testing.assert_close(last, want)


def test_seed000_user_wrapper_state_is_0_6(capsys):
    load("seed000_1_rnn_wrapper").main()
    out = capsys.readouterr().out
    assert "[[0.6 0.6]\n [0.6 0.6]\n [0.6 0.6]]" in out


def test_seed000_user_helpers():
    mod = load("seed000_2_user_helper")
    out = mod.main()
    assert out.rnn_output.shape == (3, 4, 12)
    # MyRnnHelper equals TrainingHelper fed with the embedded argmax (its definition)
    torch.manual_seed(0)
    from rnnkit import rnn, seq2seq

    emb = torch.randn(5, 8)
    cell = rnn.OutputProjectionWrapper(rnn.GRUCell(6), 5)
    h = mod.MyRnnHelper(emb, 2, 5, [3, 3])
    a, _, la = seq2seq.dynamic_decode(seq2seq.BasicDecoder(cell, h, cell.zero_state(2)))
    assert la.tolist() == [3, 3] and a.sample_id.shape == (2, 3)
    # step t+1 reads the embedding of step t's argmax
    manual_state, x = cell.zero_state(2), emb[torch.zeros(2, dtype=torch.long)]
    for t in range(3):
        logits, manual_state = cell(x, manual_state)
        torch.testing.assert_close(a.rnn_output[:, t], logits)
        x = emb[logits.argmax(-1)]


def test_seed000_user_decoder_stops_per_entry():
    outputs, lengths = load("seed000_3_user_decoder").main()
    assert lengths.tolist() == [1, 8]
    assert torch.all(outputs.rnn_output[0, 1:] == 0)  # impute_finished


def test_seed004_translation():
    loss, results = load("seed004_seq2seq_translate").main(total_epoch=100)
    assert loss < 0.1
    assert results["word"][0] == "단어" and results["love"][0] == "사랑"
    assert results["word"][1] == "단어"


def test_seed000_attention(tmp_path):
    loss, manual, state = load("seed000_4_attention").attention_test(
        steps=100, heatmap=tmp_path / "a.png")
    assert loss == pytest.approx(manual, abs=1e-5) and loss < 0.8
    history = state.alignment_history.stack()
    assert history.shape == (6, 3, 20)
    assert torch.all(history[:, 0, 5:] == 0)
    assert (tmp_path / "a.png").stat().st_size > 1000


def test_location_sensitive_attention_learns_a_diagonal(tmp_path):
    # with TF's default initialisation of the layers (glorot uniform) the diagonal is learnt
    # after some 600 steps (0.48 at 500, 0.81 at 800)
    loss, diagonal = load("location_sensitive_attention").main(steps=800,
                                                              heatmap=tmp_path / "l.png")
    assert diagonal > 0.4  # uniform attention would give 1/8
    assert (tmp_path / "l.png").exists()


def test_seed001_basics(capsys):
    mod = load("seed001_rnn_basics")
    out = mod.dynamic_length()
    assert torch.all(out[1, 4] == 0) and torch.all(out[2, 3:] == 0)
    (fw, bw), states = mod.bidirectional()
    assert fw.shape == (3, 5, 5) and torch.all(fw[0, 2:] == 0) and torch.all(bw[2, 1:] == 0)
    assert mod.multi_rnn().shape == (3, 5, 5)
    assert mod.flatten_softmax().shape == (3, 5, 5)
    losses = mod.sequence_losses()
    assert [round(v, 6) for v in losses] == [0.596759, 0.513015, 0.371101, 1.313262, 0.646595]
    assert mod.hello_rnn() == "ihello"


def test_seed002_steps():
    """The batch of three 5-step sequences gives nn.LSTM's outputs (same weights)."""
    outputs, cell, x = load("seed002_rnn_steps").main()
    ref = torch.nn.LSTM(4, 2, batch_first=True)
    with torch.no_grad():
        ref.weight_ih_l0.copy_(cell.weight_ih)
        ref.weight_hh_l0.copy_(cell.weight_hh)
        ref.bias_ih_l0.copy_(cell.bias + torch.tensor([0.0, 1.0, 0.0, 0.0]).repeat_interleave(2))
        ref.bias_hh_l0.zero_()
        want = ref(torch.from_numpy(x))[0]
    torch.testing.assert_close(outputs, want)


def test_seed004_word_completion():
    accuracy, words = load("seed004_word_completion").main()
    assert accuracy == 1.0
    assert words == ["word", "wood", "deep", "dive", "cold", "cool", "load", "love", "kiss",
                     "kind"]


def test_seed004_mnist_short():
    assert load("seed004_mnist_rnn").main(epochs=5).test_accuracy > 0.85


def test_seed003_char_rnn_short(tmp_path):
    summary = load("seed003_char_rnn").main(["--out", str(tmp_path / "c"), "--steps", "30"])
    assert summary["steps"] == 30 and (tmp_path / "c" / "samples.txt").exists()


def test_readme_first_example_runs():
    """The snippet at the top of README is what a new user pastes first."""
    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102
    assert scope["outputs"].shape == (4, 10, 128)
    assert scope["outputs"][3, 2:].abs().sum() == 0  # zero past the length
    assert torch.isfinite(scope["loss"]) and scope["loss"].dim() == 0


def test_readme_tfa_snippet_runs():
    """The tensorflow-addons snippet, with the tensors it names."""
    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## From tensorflow-addons", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict = dict(projection=torch.nn.Linear(128, 30),
                       embedded_targets=torch.randn(4, 9, 16),
                       encoder_state=rnn.LSTMStateTuple(torch.zeros(4, 128), torch.zeros(4, 128)),
                       target_lengths=torch.tensor([9, 5, 3, 1]))
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102
    assert scope["outputs"].rnn_output.shape == (4, 9, 30)
    assert scope["lengths"].tolist() == [9, 5, 3, 1]
