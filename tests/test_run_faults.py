"""Run directories and the CLI under faults (issue 27): a resume on changed data, edited
settings and TF variables, small data, a full disk, Ctrl-C at every phase, sampling options
out of range, ``--overwrite`` through a symbolic link.

Most cases run the CLI in-process (``cli.main``) to stay quick; the signal cases run it as a
subprocess, paused at a phase by ``RNNKIT_PAUSE_AT`` (:func:`rnnkit.apps.interrupts.pause_point`).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnkit.apps import charrnn, cli, translate
from rnnkit.apps.checkpoint import latest_checkpoint, load_checkpoint

PY = sys.executable
TINY = ["--hidden", "16", "--layers", "1", "--batch-size", "4", "--seq-length", "16",
        "--sample-length", "20", "--threads", "1", "--device", "cpu"]
TINY_TR = ["--hidden", "8", "--embedding", "8", "--batch-size", "8", "--beam-width", "2",
           "--threads", "1", "--device", "cpu"]
WORDS = ["red", "green", "blue", "big", "small", "cat", "dog", "bird", "runs", "sleeps"]
FR = ["rouge", "vert", "bleu", "grand", "petit", "chat", "chien", "oiseau", "court", "dort"]


def corpus_text() -> str:
    return "".join(f"line {i}: the quick brown fox jumps over the lazy dog\n"
                   for i in range(40))


def pair_lines(n: int) -> list[str]:
    lines = []
    for i in range(n):
        sent = [WORDS[(i * k + 3) % 10] for k in (1, 3, 7)]
        lines.append(" ".join(sent) + "\t" + " ".join(FR[WORDS.index(w)] for w in sent))
    return lines


def main(capsys, *args) -> tuple[int, str, str]:
    rc = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line(err: str, *needles: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnkit: error: "), err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def leftovers(root: Path) -> list[str]:
    """Temporary files or directories anywhere under ``root`` (half-written things)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if ".tmp" in p.name)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(corpus_text(), encoding="utf-8")
    return path


def train_char(capsys, corpus, out, *extra, steps=2):
    return main(capsys, "charrnn", "train", "--corpus", corpus, *TINY, "--steps", steps,
                "--checkpoint-every", "2", "--eval-every", "2", "--out", out, *extra)


# -- 1. a resume on other data is refused, naming the file -----------------------------------
def test_resume_on_a_changed_corpus_is_refused_naming_the_file(tmp_path, capsys, corpus):
    run = tmp_path / "run"
    assert train_char(capsys, corpus, run)[0] == 0
    original = corpus.read_text(encoding="utf-8")
    corpus.write_text("".join(reversed(original.splitlines(keepends=True))), encoding="utf-8")
    rc, _, err = train_char(capsys, corpus, run, "--resume", steps=4)
    assert rc == 2
    one_line(err, str(corpus), "not the data")
    assert run.joinpath("checkpoints", "step-00000002").is_dir()
    assert latest_checkpoint(run / "checkpoints").name == "step-00000002"
    moved = tmp_path / "elsewhere" / "same.txt"  # the same content at another path is fine
    moved.parent.mkdir()
    moved.write_text(original, encoding="utf-8")
    rc, _, err = train_char(capsys, moved, run, "--resume", steps=4)
    assert rc == 0, err
    assert latest_checkpoint(run / "checkpoints").name == "step-00000004"


def _train_pairs(capsys, out, *data, steps=2, extra=()):
    return main(capsys, "translate", "train", *data, "--out", out, "--steps", steps,
                "--checkpoint-every", "2", *TINY_TR, *extra)


def test_translate_resume_on_changed_pairs_is_refused_and_40_pairs_complete(tmp_path, capsys):
    """40 usable pairs (the documented minimum: 2 held out) train, score and plot; a resume
    on a pairs file with a few target sentences reordered is refused naming the file."""
    pairs = tmp_path / "pairs.tsv"
    lines = pair_lines(40)
    pairs.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = tmp_path / "tr"
    rc, _, err = _train_pairs(capsys, run, "--pairs", pairs)
    assert rc == 0, err
    assert json.loads((run / "bleu.json").read_text())["held_out_pairs"] == 2
    assert sorted(p.name for p in run.glob("alignment-*.png")) == ["alignment-0.png",
                                                                   "alignment-1.png"]
    edited = list(lines)
    for k in (3, 11):
        src, tgt = edited[k].split("\t")
        edited[k] = src + "\t" + " ".join(reversed(tgt.split()))
    pairs.write_text("\n".join(edited) + "\n", encoding="utf-8")
    rc, _, err = _train_pairs(capsys, run, "--pairs", pairs, "--resume")
    assert rc == 2
    one_line(err, str(pairs), "not the data")
    same = tmp_path / "copy.tsv"
    same.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rc, _, err = _train_pairs(capsys, run, "--pairs", same, "--resume")
    assert rc == 0, err


@pytest.mark.parametrize("n", [41, 59])
def test_translate_trains_with_few_pairs(tmp_path, capsys, n):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("\n".join(pair_lines(n)) + "\n", encoding="utf-8")
    rc, _, err = _train_pairs(capsys, tmp_path / "tr", "--pairs", pairs, steps=1)
    assert rc == 0, err


def test_translate_resume_on_a_changed_target_file_names_it(tmp_path, capsys):
    lines = pair_lines(45)
    src, tgt = tmp_path / "src.txt", tmp_path / "tgt.txt"
    src.write_text("\n".join(x.split("\t")[0] for x in lines) + "\n", encoding="utf-8")
    tgt.write_text("\n".join(x.split("\t")[1] for x in lines) + "\n", encoding="utf-8")
    run = tmp_path / "tr"
    assert _train_pairs(capsys, run, "--src", src, "--tgt", tgt)[0] == 0
    rows = tgt.read_text(encoding="utf-8").splitlines()
    rows[5], rows[6] = rows[6], rows[5]
    tgt.write_text("\n".join(rows) + "\n", encoding="utf-8")
    rc, _, err = _train_pairs(capsys, run, "--src", src, "--tgt", tgt, "--resume")
    assert rc == 2
    line = one_line(err, str(tgt), "not the data")
    assert str(src) not in line


@pytest.mark.parametrize("which", ["valid", "test"])
def test_translate_resume_on_a_changed_valid_or_test_file_names_it(tmp_path, capsys, which):
    """The --valid / --test files are data too: their SHA-256 is recorded and checked; the
    resume reads the run's settings from config.json (the path need not be given again)."""
    pairs, held = tmp_path / "pairs.tsv", tmp_path / f"{which}.tsv"
    lines = pair_lines(50)
    pairs.write_text("\n".join(lines[:44]) + "\n", encoding="utf-8")
    held.write_text("\n".join(lines[44:]) + "\n", encoding="utf-8")
    run = tmp_path / "tr"
    rc, _, err = _train_pairs(capsys, run, "--pairs", pairs, f"--{which}", held)
    assert rc == 0, err
    recorded = json.loads((run / "config.json").read_text())["data_sha256"]
    assert set(recorded) == {"pairs", which}
    original = held.read_text(encoding="utf-8")
    held.write_text("\n".join(reversed(original.splitlines())) + "\n", encoding="utf-8")
    rc, _, err = _train_pairs(capsys, run, "--resume")
    assert rc == 2
    one_line(err, str(held), "not the data")
    moved = tmp_path / "moved.tsv"
    moved.write_text(original, encoding="utf-8")
    rc, _, err = _train_pairs(capsys, run, f"--{which}", moved, "--resume")
    assert rc == 0, err
    assert latest_checkpoint(run / "checkpoints").name == "step-00000002"


# -- 2. values read from disk: integrity and bounds before any allocation ---------------------
@pytest.fixture
def char_run(tmp_path, capsys, corpus):
    run = tmp_path / "run"
    assert train_char(capsys, corpus, run)[0] == 0
    return run


def _edit_config(run: Path, resign: bool, **changes) -> None:
    cfg = json.loads((run / "config.json").read_text())
    cfg.update(changes)
    (run / "config.json").write_text(json.dumps(cfg))
    if resign:  # an edit that also rewrites the manifests' digest of config.json
        digest = hashlib.sha256((run / "config.json").read_bytes()).hexdigest()
        for manifest in run.glob("checkpoints/step-*/manifest.json"):
            doc = json.loads(manifest.read_text())
            doc["depends_on"] = {"config.json": digest}
            manifest.write_text(json.dumps(doc))


@pytest.fixture
def no_model(monkeypatch):
    """Building any model is a test failure: the refusal must come first."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a model was built from {args} {kwargs}")

    monkeypatch.setattr(charrnn, "CharRNN", refuse)
    monkeypatch.setattr(translate, "Seq2SeqAttention", refuse)


@pytest.mark.parametrize("key,value", [
    ("hidden_size", 200000), ("hidden_size", 8000), ("hidden_size", -4), ("hidden_size", 0),
    ("hidden_size", "16"), ("hidden_size", 16.5), ("hidden_size", True),
    ("num_layers", 10**30), ("vocab", {"chars": [chr(0x4E00 + i) for i in range(70000)]}),
    ("vocab", {"chars": "abc"}), ("vocab", None), ("prime", 7),
])
@pytest.mark.parametrize("resign", [False, True], ids=["edited", "edited+manifest"])
def test_edited_config_is_refused_before_any_allocation(char_run, capsys, no_model, key,
                                                        value, resign):
    _edit_config(char_run, resign, **{key: value})
    rc, _, err = main(capsys, "charrnn", "sample", char_run, "--length", "3", "--device", "cpu")
    assert rc == 2
    one_line(err, "config.json", *([key] if resign else ["is not the file"]))
    rc, _, err = main(capsys, "charrnn", "export", char_run, char_run.parent / "w.safetensors")
    assert rc == 2 and not (char_run.parent / "w.safetensors").exists()
    one_line(err, "config.json")


def test_edited_translate_config_is_refused_before_any_allocation(tmp_path, capsys):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("\n".join(pair_lines(40)) + "\n", encoding="utf-8")
    run = tmp_path / "tr"
    assert _train_pairs(capsys, run, "--pairs", pairs, steps=1)[0] == 0
    original = (run / "config.json").read_text()
    for key, value in [("hidden", 200000), ("embedding", -1), ("dropout", 7.0),
                       ("max_decode", 10**12), ("hidden", 7), ("hidden", 16),
                       ("tokenizer", {"src": {"file": "../../outside.model",
                                              "sha256": "0" * 64},
                                      "tgt": {"file": "tgt.spm.model", "sha256": "0" * 64}}),
                       ("vocab_size", 0), ("patience", -1), ("keep", 0), ("log_every", 0),
                       ("valid", ""), ("max_words", 10**6)]:
        (run / "config.json").write_text(original)
        _edit_config(run, True, **{key: value})
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(translate, "Seq2SeqAttention", lambda *a, **k: pytest.fail("built"))
            rc, _, err = main(capsys, "translate", "run", run, "red cat", "--device", "cpu")
        assert rc == 2
        one_line(err, "config.json", key)


def _write_tf(prefix: Path, variables: dict[str, np.ndarray],
              shapes: dict[str, list[int]] | None = None) -> Path:
    from test_tf_bundle_faults import _crc32c, _entry, _mask, write_bundle

    items, data = [], b""
    for name in sorted(variables):
        raw = np.ascontiguousarray(variables[name], dtype=np.float32).tobytes()
        shape = (shapes or {}).get(name, list(variables[name].shape))
        items.append((name, _entry(1, shape, len(data), len(raw), _mask(_crc32c(raw)))))
        data += raw
    return write_bundle(prefix, items, data)


@pytest.mark.parametrize("case", ["bias_shape", "bias_huge", "bias_missing", "kernel_missing",
                                  "weights_missing", "weights_shape"])
def test_convert_tf_with_an_edited_variable_is_one_error_line(tmp_path, capsys, case,
                                                              monkeypatch):
    from conftest import FIXTURES

    from rnnkit import compat
    from rnnkit.apps import convert

    variables = compat.read_tf_checkpoint(FIXTURES / "tf_ckpt" / "seed003" / "char-rnn_3")
    bias = "rnn/multi_rnn_cell/cell_1/basic_lstm_cell/bias"
    shapes = {}
    if case == "bias_shape":
        variables[bias] = variables[bias][:-4]
    elif case == "bias_huge":  # the index declares 1.44 TB (the data does not hold it)
        shapes[bias] = [360_000_000_000]
    elif case == "bias_missing":
        del variables[bias]
    elif case == "kernel_missing":
        del variables["rnn/multi_rnn_cell/cell_2/basic_lstm_cell/kernel"]
    elif case == "weights_missing":
        del variables["fully_connected/weights"]
    else:
        variables["fully_connected/weights"] = variables["fully_connected/weights"][:, :5]
    (tmp_path / "ck").mkdir()
    prefix = _write_tf(tmp_path / "ck" / "char-rnn_3", variables, shapes)
    (tmp_path / "chars.json").write_text(json.dumps([chr(97 + i) for i in range(11)]))
    monkeypatch.setattr(convert, "CharRNN", lambda *a, **k: pytest.fail(f"built {a}"))
    rc, _, err = main(capsys, "convert-tf", prefix, "--out", tmp_path / "run", "--vocab",
                      tmp_path / "chars.json")
    assert rc == 2
    one_line(err, "bias" if case.startswith("bias") else case.split("_")[0])
    assert not (tmp_path / "run").exists()


# -- 4. a full disk ------------------------------------------------------------------------
def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _weights(run: Path) -> dict[str, torch.Tensor]:
    tensors, _ = load_checkpoint(latest_checkpoint(run / "checkpoints"))
    return {k: v for k, v in tensors.items() if k.startswith("model.")}


@pytest.mark.parametrize("where", ["safetensors", "fsync", "fsync_at_end", "savefig"])
def test_a_full_disk_during_training_is_one_line_and_resume_recovers(tmp_path, capsys,
                                                                     corpus, monkeypatch,
                                                                     where):
    """The disk fills once the first checkpoint (or, ``_at_end``, the last) is committed:
    in safetensors' writer, at an ``fsync`` (any file), or in matplotlib's ``savefig``."""
    import matplotlib.figure
    import safetensors
    import safetensors.torch

    ref = tmp_path / "ref"
    assert train_char(capsys, corpus, ref, steps=6)[0] == 0
    run = tmp_path / "run"
    def full() -> bool:
        if where.endswith("_at_end"):
            return (run / "checkpoints" / "step-00000006").exists()
        return latest_checkpoint(run / "checkpoints") is not None

    def filling(real, partial=None):
        def call(*args, **kwargs):
            if full():
                if partial is not None:  # a half-written file, then the error
                    Path(partial(args)).write_bytes(b"partial")
                if where == "safetensors":  # what safetensors raises for a full disk
                    raise safetensors.SafetensorError(
                        "Error while serializing: I/O error: No space left on device "
                        "(os error 28)")
                _enospc()
            return real(*args, **kwargs)
        return call

    if where == "safetensors":
        monkeypatch.setattr(safetensors.torch, "save_file",
                            filling(safetensors.torch.save_file, lambda a: a[1]))
    elif where.startswith("fsync"):
        monkeypatch.setattr(os, "fsync", filling(os.fsync))
    else:
        monkeypatch.setattr(matplotlib.figure.Figure, "savefig",
                            filling(matplotlib.figure.Figure.savefig, lambda a: a[1]))
    rc, _, err = train_char(capsys, corpus, run, steps=6)
    assert rc in (1, 2)
    one_line(err, "No space left on device")
    assert leftovers(run) == [], leftovers(run)
    committed = latest_checkpoint(run / "checkpoints")
    assert committed is not None
    load_checkpoint(committed)  # intact
    monkeypatch.undo()
    rc, _, err = train_char(capsys, corpus, run, "--resume", steps=6)
    assert rc == 0, err
    a, b = _weights(ref), _weights(run)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (run / "loss.png").is_file()
    assert (run / "samples.txt").read_text().count("=== trained") == 1


def test_a_full_disk_during_export_is_one_line_and_keeps_the_old_file(tmp_path, capsys,
                                                                       char_run, monkeypatch):
    import safetensors.torch

    out = tmp_path / "w.safetensors"
    out.write_bytes(b"old")

    def full(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise safetensors.SafetensorError(
            "Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    rc, _, err = main(capsys, "charrnn", "export", char_run, out, "--overwrite")
    assert rc in (1, 2)
    one_line(err, "No space left on device")
    assert out.read_bytes() == b"old" and leftovers(tmp_path) == []


def _limit_file_size(limit: int):
    def set_limit():
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past it fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return set_limit


def test_a_real_write_failure_in_safetensors_is_one_line(tmp_path, corpus):
    """No mock: the kernel refuses the checkpoint's tensor file (RLIMIT_FSIZE), safetensors'
    Rust writer reports it; the CLI prints one line and nothing is left half-written."""
    run = tmp_path / "run"
    res = subprocess.run([PY, "-m", "rnnkit", "charrnn", "train", "--corpus", str(corpus),
                          *TINY, "--hidden", "64", "--steps", "2", "--checkpoint-every", "2",
                          "--out", str(run)], capture_output=True, text=True, timeout=300,
                         preexec_fn=_limit_file_size(40_000))
    assert res.returncode in (1, 2), res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("rnnkit: error: "), res.stderr
    assert "Traceback" not in res.stderr and "File too large" in res.stderr
    assert leftovers(run) == [] and latest_checkpoint(run / "checkpoints") is None


# -- 5. Ctrl-C at every phase ----------------------------------------------------------------
def _interrupt_at(phase: str, args: list[str], timeout: float = 240):
    env = dict(os.environ, RNNKIT_PAUSE_AT=phase,
               PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[1]),
                                           os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([PY, "-m", "rnnkit", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + timeout
    err = []
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        err.append(line)
        if line.startswith(f"rnnkit: paused at {phase}"):
            proc.send_signal(signal.SIGINT)
            break
    out, rest = proc.communicate(timeout=timeout)
    return proc.returncode, out, "".join(err) + rest


CHAR_PHASES = ["start-up", "training", "evaluation", "sampling", "plotting", "checkpoint"]


@pytest.mark.parametrize("phase", [
    *CHAR_PHASES[:1], *(pytest.param(p, marks=pytest.mark.slow) for p in CHAR_PHASES[1:4]),
    *CHAR_PHASES[4:]])
def test_ctrl_c_at_each_phase_of_charrnn_train(tmp_path, corpus, phase):
    run = tmp_path / "run"
    args = ["charrnn", "train", "--corpus", str(corpus), *TINY, "--steps", "4",
            "--checkpoint-every", "2", "--eval-every", "2", "--out", str(run)]
    rc, out, err = _interrupt_at(phase, args)
    assert rc == 130, (out, err)
    assert "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("rnnkit: interrupted"), err
    assert "--resume" in out + err
    assert leftovers(run) == [], leftovers(run)
    res = subprocess.run([PY, "-m", "rnnkit", *args, "--resume"], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert latest_checkpoint(run / "checkpoints").name == "step-00000004"
    assert (run / "loss.png").is_file()
    assert (run / "samples.txt").read_text().count("=== trained") == 1


def test_ctrl_c_during_export_leaves_nothing(tmp_path, char_run):
    out = tmp_path / "w.safetensors"
    rc, _, err = _interrupt_at("export", ["charrnn", "export", str(char_run), str(out)])
    assert rc == 130 and "Traceback" not in err, err
    assert not out.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("phase", ["evaluation", pytest.param("plotting",
                                                              marks=pytest.mark.slow)])
def test_ctrl_c_during_translate_scoring_leaves_a_resumable_run(tmp_path, phase):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("\n".join(pair_lines(60)) + "\n", encoding="utf-8")
    run = tmp_path / "tr"
    args = ["translate", "train", "--pairs", str(pairs), "--out", str(run), "--steps", "2",
            "--checkpoint-every", "2", *TINY_TR]
    rc, out, err = _interrupt_at(phase, args)
    assert rc == 130 and "Traceback" not in err, (out, err)
    assert leftovers(run) == []
    res = subprocess.run([PY, "-m", "rnnkit", *args, "--resume"], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert (run / "bleu.json").is_file() and (run / "translations.txt").is_file()


# -- 6. sampling options out of range --------------------------------------------------------
@pytest.mark.parametrize("option,value", [
    ("--top-p", "1e-300"), ("--top-p", "0"), ("--top-p", "nan"), ("--top-p", "-0.5"),
    ("--top-p", "1.5"), ("--temperature", "1e-45"), ("--temperature", "1e-300"),
    ("--temperature", "nan"), ("--temperature", "-1"), ("--temperature", "inf"),
    ("--top-k", "0"), ("--top-k", "-3"),
])
def test_sampling_options_out_of_range_are_one_line(char_run, capsys, option, value):
    with pytest.raises(SystemExit) as e:
        cli.main(["charrnn", "sample", str(char_run), option, value, "--device", "cpu"])
    assert e.value.code == 2
    one_line(capsys.readouterr().err, option)


def test_training_temperature_out_of_range_is_one_line(tmp_path, capsys, corpus):
    with pytest.raises(SystemExit) as e:
        cli.main(["charrnn", "train", "--corpus", str(corpus), "--temperature", "1e-45",
                  "--out", str(tmp_path / "r")])
    assert e.value.code == 2
    one_line(capsys.readouterr().err, "--temperature")


def test_library_sampling_is_finite_at_extreme_settings():
    """The library's own bounds: the most likely token always stays in the nucleus (also
    when ``top_p`` is below float32's range); a temperature too small for float32 is refused
    by name, and any positive float32 temperature samples the most likely token."""
    from rnnkit import seq2seq

    emb = torch.eye(5)
    logits = torch.tensor([[1.0, 3.0, 2.0, -1.0, 0.5]] * 4)
    for top_p in (1e-300, 1e-45, 1e-8):
        helper = seq2seq.SampleEmbeddingHelper(emb, torch.zeros(4, dtype=torch.long), 4,
                                               seed=0, top_p=top_p)
        assert helper.sample(0, logits, None).tolist() == [1, 1, 1, 1]
    for t in (1e-45, 1e-38, 1e-20):
        helper = seq2seq.SampleEmbeddingHelper(emb, torch.zeros(4, dtype=torch.long), 4,
                                               softmax_temperature=t, seed=0)
        assert helper.sample(0, logits * 1e3, None).tolist() == [1, 1, 1, 1]
    with pytest.raises(ValueError, match="softmax_temperature"):
        seq2seq.SampleEmbeddingHelper(emb, torch.zeros(4, dtype=torch.long), 4,
                                      softmax_temperature=1e-300)


# -- 7. --overwrite through a symbolic link ----------------------------------------------------
def test_overwrite_through_a_symlink_to_a_run_of_the_same_app(tmp_path, capsys, char_run,
                                                               corpus):
    link = tmp_path / "link"
    link.symlink_to(char_run, target_is_directory=True)
    outside = tmp_path / "keep.txt"
    outside.write_text("mine")
    (char_run / "pointer").symlink_to(outside)  # a link inside the run: unlinked, not followed
    rc, _, err = train_char(capsys, corpus, link, "--overwrite", steps=2)
    assert rc == 0, err
    assert link.is_symlink() and link.resolve() == char_run.resolve()
    assert outside.read_text() == "mine" and not (char_run / "pointer").exists()
    assert latest_checkpoint(char_run / "checkpoints").name == "step-00000002"
    # a link to a directory rnnkit did not make, or to another application's run: refused
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep")
    bad = tmp_path / "bad"
    bad.symlink_to(other, target_is_directory=True)
    rc, _, err = train_char(capsys, corpus, bad, "--overwrite")
    assert rc == 2
    one_line(err, "nothing was deleted")
    assert (other / "notes.txt").read_text() == "keep"
    rc, _, err = main(capsys, "translate", "train", "--out", link, "--overwrite", "--steps",
                      "1")
    assert rc == 2
    one_line(err, "is a charrnn run", "nothing was deleted")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "missing", target_is_directory=True)
    rc, _, err = train_char(capsys, corpus, dangling, "--overwrite")
    assert rc == 2
    one_line(err, "symbolic link")


@pytest.mark.parametrize("entry", [["-m", "rnnkit"],
                                   ["-c", "from rnnkit.launch import main; main()"]])
def test_ctrl_c_while_the_first_imports_run_is_one_line_and_130(entry):
    """The executable's first instant: PyTorch is still being imported."""
    # (--help needs no PyTorch any more: a command that imports it)
    proc = subprocess.Popen([PY, *entry, "charrnn", "sample", "no-such-run"],
                            stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(0.15)  # while the imports run (rnnkit's own package imports nothing)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.startswith("rnnkit: interrupted") and len(err.strip().splitlines()) == 1, err


def test_an_export_whose_settings_do_not_match_its_weights_is_refused(char_run, capsys,
                                                                       monkeypatch):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    out = char_run.parent / "w.safetensors"
    assert main(capsys, "charrnn", "export", char_run, out)[0] == 0
    with safe_open(str(out), "pt") as f:
        meta = dict(f.metadata())
    cfg = json.loads(meta["rnnkit_config"])
    cfg["hidden_size"] += 8  # within bounds: only the weights can tell
    edited = char_run.parent / "edited.safetensors"
    save_file(load_file(str(out)), str(edited), metadata={**meta,
                                                          "rnnkit_config": json.dumps(cfg)})
    monkeypatch.setattr(charrnn, "CharRNN", lambda *a, **k: pytest.fail("a model was built"))
    rc, _, err = main(capsys, "charrnn", "sample", edited, "--length", "3", "--device", "cpu")
    assert rc == 2
    one_line(err, str(edited), "does not match the weights it holds", "the settings give",
             "the file holds")
