"""rnnkit translate export RUN OUTDIR + examples/onnx_translate.py: the exported run (its
ONNX models and the run's own SentencePiece models) translates, without PyTorch or rnnkit
importable (numpy, onnxruntime and sentencepiece only), exactly as rnnkit translate run
does."""

from __future__ import annotations

import hashlib
import json
import pathlib
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("sentencepiece")

PY = sys.executable
ROOT = pathlib.Path(__file__).resolve().parent.parent
CLIENT = ROOT / "examples" / "onnx_translate.py"
SENTENCES = ["red cat runs", "Big DOG, sleeps!", "", "blue zebra flies", "small bird"]
#: the client run with torch and rnnkit impossible to import
BLOCKED = ("import runpy, sys; sys.modules['torch'] = None; sys.modules['rnnkit'] = None; "
           "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")


def cli(*args):
    return subprocess.run([PY, "-m", "rnnkit", *map(str, args)], capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from rnnkit.apps import translate

    words = ["red", "green", "blue", "big", "small", "cat", "dog", "bird", "runs", "sleeps"]
    trans = ["rouge", "vert", "bleu", "grand", "petit", "chat", "chien", "oiseau", "court",
             "dort"]
    lines = []
    for i in range(200):
        sent = [words[(i * k + 3) % 10] for k in (1, 3, 7)][: 1 + i % 3]
        lines.append(" ".join(sent) + "\t" + " ".join(trans[words.index(w)] for w in sent))
    tmp = tmp_path_factory.mktemp("onnx")
    pairs = tmp / "pairs.tsv"
    pairs.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = translate.TranslateConfig(steps=25, hidden=16, embedding=8, batch_size=16,
                                    pairs=str(pairs), beam_width=3, max_decode=12,
                                    checkpoint_every=25)
    translate.train(cfg, tmp / "run", log=lambda *_: None, progress=False, device="cpu")
    return tmp / "run"


def test_exported_run_translates_as_translate_run_without_torch(run, tmp_path):
    out = tmp_path / "served"
    res = cli("translate", "export", run, out)
    assert res.returncode == 0, res.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["models"] == {"1": "model-beam1.onnx", "3": "model-beam3.onnx",
                                  "5": "model-beam5.onnx"}
    assert set(manifest["files"]) == {"model-beam1.onnx", "model-beam3.onnx",
                                      "model-beam5.onnx", "src.spm.model", "tgt.spm.model"}
    assert all(len(f["sha256"]) == 64 for f in manifest["files"].values())
    # the run's own tokenizers, byte for byte, their digests those config.json records
    config = json.loads((run / "config.json").read_text())
    assert manifest["tokenizer"]["src"] == "src.spm.model"
    assert manifest["tokenizer"]["tgt"] == "tgt.spm.model"
    for side in ("src", "tgt"):
        name = config["tokenizer"][side]["file"]
        assert (out / name).read_bytes() == (run / name).read_bytes()
        digest = hashlib.sha256((out / name).read_bytes()).hexdigest()
        assert manifest["files"][name]["sha256"] == digest == config["tokenizer"][side]["sha256"]
    printed = {}
    for beam, options in [(5, ()), (1, ()), (3, ()), (3, ("--no-repeat-ngram", "1")),
                          (1, ("--no-repeat-ngram", "2", "--min-length", "3"))]:
        printed[beam, options] = _same_as_translate_run(run, out, beam, *options)
    # the untrained model repeats pieces: the constraint changed the translations
    assert printed[3, ("--no-repeat-ngram", "1")] != printed[3, ()]
    # an existing directory is kept unless --overwrite; a damaged model is refused
    res = cli("translate", "export", run, out)
    assert res.returncode == 2 and "exists" in res.stderr
    got = subprocess.run([PY, str(CLIENT), str(out), "red cat", "--beam-width", "4"],
                         capture_output=True, text=True, timeout=300)
    assert got.returncode != 0 and "beam width 4 was not exported" in got.stderr
    for name in ("model-beam5.onnx", "tgt.spm.model"):
        damaged = tmp_path / f"damaged-{name}"
        shutil.copytree(out, damaged)
        path = damaged / name
        path.write_bytes(path.read_bytes()[:-1] + bytes([path.read_bytes()[-1] ^ 1]))
        got = subprocess.run([PY, str(CLIENT), str(damaged), "red cat"], capture_output=True,
                             text=True, timeout=300)
        assert got.returncode != 0 and "SHA-256 differs" in got.stderr, name


def _same_as_translate_run(run, out, beam, *options) -> str:
    """``translate run RUN`` and the client on ``out`` print the same; returns it."""
    want = cli("translate", "run", run, *SENTENCES, "--beam-width", beam, "--device", "cpu",
               *options)
    assert want.returncode == 0, want.stderr
    got = subprocess.run([PY, "-c", BLOCKED, str(CLIENT), str(out), *SENTENCES,
                          "--beam-width", str(beam), *options], capture_output=True,
                         text=True, timeout=300)
    assert got.returncode == 0, got.stderr
    assert got.stdout == want.stdout, options
    return want.stdout


def test_min_length_and_replace_unk_are_served_as_translate_run_serves_them(run, tmp_path):
    """The run's weights with </s> and <unk> made likely (as a .safetensors export, which
    translate run and translate export both read): translations are empty unless
    --min-length forbids the end token, then full of <unk> that --replace-unk replaces by
    the source pieces the attention weighted most; the client prints what translate run
    prints with each option."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from rnnkit.apps import translate

    weights = tmp_path / "biased.safetensors"
    translate.export_weights(run, weights)
    with safe_open(str(weights), "pt") as f:
        metadata = f.metadata()
    tensors = load_file(str(weights))
    tensors["output_layer.bias"][translate.EOS] += 1.0
    tensors["output_layer.bias"][translate.UNK] += 0.5
    save_file(tensors, str(weights), metadata=metadata)
    out = tmp_path / "served"
    res = cli("translate", "export", weights, out, "--beam-width", "1", "--beam-width", "3")
    assert res.returncode == 0, res.stderr
    cases = [(3, ()), (3, ("--min-length", "6")), (3, ("--min-length", "6", "--replace-unk")),
             (1, ("--min-length", "4", "--no-repeat-ngram", "2", "--replace-unk"))]
    printed = {(beam, options): _same_as_translate_run(weights, out, beam, *options)
               for beam, options in cases}
    assert printed[3, ()].split("\n") == [""] * len(SENTENCES) + [""]  # nothing but </s>
    assert "<unk>" in printed[3, ("--min-length", "6")]
    replaced = printed[3, ("--min-length", "6", "--replace-unk")]
    assert "<unk>" not in replaced and replaced != printed[3, ()]
    assert any(w in replaced for w in ("red", "cat", "big", "small", "bird"))


def test_safetensors_export_is_unchanged(run, tmp_path):
    res = cli("translate", "export", run, tmp_path / "w.safetensors")
    assert res.returncode == 0 and (tmp_path / "w.safetensors").is_file(), res.stderr
