"""rnnkit charrnn export RUN DIR + examples/onnx_charrnn.py: the exported sampler (the
prime read and the sampling loop in one ONNX graph, the draws at uniforms numpy computes
from the seed) prints, without PyTorch or rnnkit importable (numpy and onnxruntime only),
exactly what rnnkit charrnn sample prints."""

from __future__ import annotations

import hashlib
import json
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from rnnkit.apps import cli as rnnkit_cli  # noqa: E402

PY = sys.executable
ROOT = pathlib.Path(__file__).resolve().parent.parent
CLIENT = ROOT / "examples" / "onnx_charrnn.py"
CORPUS = "the quick brown fox jumps over the lazy dog and runs far away into the woods\n" * 40
#: the client run with torch and rnnkit impossible to import
BLOCKED = ("import runpy, sys; sys.modules['torch'] = None; sys.modules['rnnkit'] = None; "
           "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")
OPTIONS = [
    ["--length", "60", "--temperature", "0"],  # greedy
    ["--length", "60", "--seed", "3"],  # the default temperature 0.8
    ["--length", "60", "--seed", "4", "--temperature", "1.5"],
    ["--length", "60", "--seed", "5", "--top-k", "3"],
    ["--length", "60", "--seed", "6", "--top-p", "0.6", "--temperature", "1.2"],
    ["--length", "40", "--seed", "7", "--top-k", "5", "--top-p", "0.9", "--prime", "dog"],
    ["--length", "30", "--seed", "8", "--prime", "z"],  # a one-character prime
    ["--length", "0", "--prime", "fox j"],
    ["--seed", "9"],  # the default length (500) and prime
]


def cli(*args, **kw):
    return subprocess.run([PY, "-m", "rnnkit", *map(str, args)], capture_output=True,
                          text=True, timeout=600, **kw)


def client(*args, blocked=True):
    argv = [PY, "-c", BLOCKED, str(CLIENT)] if blocked else [PY, str(CLIENT)]
    return subprocess.run([*argv, *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def sample(capsys, run, *args) -> str:
    """What ``rnnkit charrnn sample RUN ARGS`` prints (the CLI run in this process)."""
    capsys.readouterr()
    assert rnnkit_cli.main(["charrnn", "sample", str(run), *args, "--device", "cpu"]) == 0
    return capsys.readouterr().out


def refused(run, *args) -> bool:
    """Whether ``rnnkit charrnn sample RUN ARGS`` exits with status 2 (a usage error)."""
    try:
        return rnnkit_cli.main(["charrnn", "sample", str(run), *args, "--device", "cpu"]) == 2
    except SystemExit as stop:  # argparse's refusals
        return stop.code == 2


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("charrnn-onnx")
    (tmp / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    res = cli("charrnn", "train", "--corpus", tmp / "corpus.txt", "--hidden", "16",
              "--layers", "2", "--batch-size", "4", "--seq-length", "16", "--steps", "8",
              "--sample-length", "10", "--eval-every", "8", "--checkpoint-every", "8",
              "--threads", "1", "--out", tmp / "run", "--device", "cpu")
    assert res.returncode == 0, res.stderr
    return tmp / "run"


@pytest.fixture(scope="module")
def exported(run):
    out = run.parent / "served"
    res = cli("charrnn", "export", run, out, umask=0o027)
    assert res.returncode == 0, res.stderr
    return out


def test_exported_sampler_prints_what_charrnn_sample_prints_without_torch(run, exported,
                                                                         capsys):
    manifest = json.loads((exported / "manifest.json").read_text())
    assert manifest["format"] == "rnnkit-charrnn-onnx"
    assert set(manifest["files"]) == {"model.onnx", "vocab.json"}
    for name, entry in manifest["files"].items():
        data = (exported / name).read_bytes()
        assert entry == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    for path in (exported / "manifest.json", exported / "model.onnx", exported / "vocab.json"):
        assert path.stat().st_mode & 0o777 == 0o640, path  # the user's umask (027)
    config = json.loads((run / "config.json").read_text())
    vocab = json.loads((exported / "vocab.json").read_text())
    assert vocab == {"chars": config["vocab"]["chars"], "prime": config["prime"]}
    seen = set()
    for opts in OPTIONS:
        want = sample(capsys, run, *opts)
        got = client(exported, *opts)
        assert got.returncode == 0, got.stderr
        assert got.stdout == want, opts
        seen.add(want)
    assert len(seen) == len(OPTIONS)  # every option set draws its own text
    assert sample(capsys, run, "--length", "0", "--prime", "fox j") == "fox j\n"
    assert len(sample(capsys, run, "--seed", "9")) == len(config["prime"]) + 500 + 1
    # greedy ignores the seed; a seed draws the same text again
    assert client(exported, "--temperature", "0", "--seed", "1").stdout == \
        sample(capsys, run, "--temperature", "0")


def test_existing_directory_damaged_files_and_bad_options_are_refused(run, exported,
                                                                     tmp_path, capsys):
    res = cli("charrnn", "export", run, exported)
    assert res.returncode == 2 and "exists" in res.stderr and "--overwrite" in res.stderr
    again = tmp_path / "again.dir"  # a suffix other than .safetensors: --format onnx says so
    shutil.copytree(exported, again)
    res = cli("charrnn", "export", run, again, "--overwrite")
    assert res.returncode == 2 and "--format" in res.stderr
    res = cli("charrnn", "export", run, again, "--overwrite", "--format", "onnx")
    assert res.returncode == 0, res.stderr
    for name in ("model.onnx", "vocab.json"):
        assert (again / name).read_bytes() == (exported / name).read_bytes()
    mine = tmp_path / "mine"  # --overwrite replaces an export, never another directory
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's own file")
    res = cli("charrnn", "export", run, mine, "--overwrite")
    assert res.returncode == 2 and "is not a char-RNN ONNX export" in res.stderr
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    for name in ("model.onnx", "vocab.json"):
        damaged = tmp_path / f"damaged-{name}"
        shutil.copytree(exported, damaged)
        path = damaged / name
        data = path.read_bytes()
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
        got = client(damaged, "--length", "5", blocked=False)
        assert got.returncode != 0 and "SHA-256 differs" in got.stderr, name
    got = client(run, "--length", "5", blocked=False)
    assert got.returncode != 0 and "manifest.json" in got.stderr
    for opts, needle in [(["--top-k", "0"], "--top-k"), (["--top-p", "0"], "--top-p"),
                         (["--top-p", "1.5"], "--top-p"), (["--length", "-1"], "--length"),
                         (["--length", "100001"], "--length"),
                         (["--temperature", "0.0001"], "--temperature"),
                         (["--temperature", "nan"], "--temperature"),
                         (["--seed", "-1"], "--seed"), (["--prime", ""], "--prime"),
                         (["--prime", "XYZ"], "--prime")]:
        got = client(exported, *opts, blocked=False)
        assert got.returncode == 2 and needle in got.stderr and got.stdout == "", opts
        assert refused(run, *opts), opts  # charrnn sample refuses them too


def test_safetensors_export_is_unchanged(run, tmp_path, capsys):
    res = cli("charrnn", "export", run, tmp_path / "w.safetensors")
    assert res.returncode == 0 and (tmp_path / "w.safetensors").is_file(), res.stderr
    opts = ["--length", "30", "--seed", "2"]
    assert sample(capsys, tmp_path / "w.safetensors", *opts) == sample(capsys, run, *opts)


def test_the_uniforms_are_numpys_pcg64_stream():
    """The documented source: (PCG64(seed).random_raw(n) >> 11) * 2**-53, which is also what
    numpy's own Generator.random draws (pinned: a change would change every sampled text)."""
    from rnnkit.generators import stable_uniforms

    assert stable_uniforms(0, 3).tolist() == [0.6369616873214543, 0.2697867137638703,
                                             0.04097352393619469]
    for seed in (1, 2**63 - 1):
        want = np.random.Generator(np.random.PCG64(seed)).random(50)
        assert np.array_equal(stable_uniforms(seed, 50), want)
    assert stable_uniforms(5, 0).shape == (0,)
    with pytest.raises(ValueError, match="count must be >= 0, received -1"):
        stable_uniforms(5, -1)
