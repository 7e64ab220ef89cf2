"""``rnnkit charrnn export RUN OUTDIR``: a trained char-RNN run as an ONNX sampler that
``examples/onnx_charrnn.py`` serves with numpy and onnxruntime alone, printing what
``rnnkit charrnn sample RUN`` prints for the same options.

``OUTDIR`` holds ``model.onnx`` (the prime read and the sampling loop in the graph; inputs
``prime``, ``uniforms``, ``temperature``, ``top_k``, ``top_p``: see
:func:`rnnkit.export.export_sampler`), ``vocab.json`` (the characters, id order, and the
run's default prime) and ``manifest.json`` (the defaults and bounds of ``charrnn sample``,
how the uniforms are made from a seed, and each file's size and SHA-256).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import torch

from rnnkit.apps import charrnn
from rnnkit.apps.checkpoint import write_json_atomic
from rnnkit.apps.runs import RunError
from rnnkit.apps.settings import MAX_SAMPLE_LENGTH

__all__ = ["SAMPLE_DEFAULTS", "export_onnx"]

MANIFEST_VERSION = 1
#: ``rnnkit charrnn sample``'s defaults and bounds (rnnkit.apps.cli), which the client applies
SAMPLE_DEFAULTS = {"length": 500, "temperature": 0.8, "max_length": MAX_SAMPLE_LENGTH,
                   "min_temperature": 1e-3, "max_temperature": 100.0, "min_top_p": 1e-3,
                   "max_top_k": 1_000_000, "max_seed": 2**63 - 1}


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _is_export(path: Path) -> bool:
    """Whether ``path`` is a directory :func:`export_onnx` wrote (its manifest says so)."""
    import json

    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == "rnnkit-charrnn-onnx"


def export_onnx(run_dir: str | Path, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Write the ONNX export of a char-RNN run (or of a ``.safetensors`` file ``charrnn
    export`` wrote) to ``out_dir`` (see the module's doc).  An existing ``out_dir`` is
    replaced only with ``overwrite``, and only when it is such an export; the directory is
    written beside it and renamed into place, so an interrupted export leaves no half
    directory.  The files get the mode the user's umask gives new files."""
    from rnnkit import export

    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise RunError(f"{out_dir} exists; choose another directory or pass --overwrite")
    if out_dir.exists() and not _is_export(out_dir):
        raise RunError(f"{out_dir} exists and is not a char-RNN ONNX export; --overwrite "
                       "replaces only such a directory (choose another directory)")
    if out_dir.suffix == ".safetensors":
        raise RunError(f"{out_dir}: an ONNX export is a directory")
    model, vocab, cfg = charrnn.load_run(run_dir)  # verified
    prime = cfg.get("prime") or "\n"  # charrnn sample's default prime
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        one_hot = torch.eye(model.vocab_size, dtype=model.output.weight.dtype)
        export.export_sampler(model.cell, one_hot, model.output, tmp / "model.onnx")
        write_json_atomic(tmp / "vocab.json", {"chars": vocab.chars, "prime": prime})
        umask = os.umask(0)
        os.umask(umask)
        listing = {}
        for name in sorted(p.name for p in tmp.iterdir()):
            path = tmp / name
            os.chmod(path, 0o666 & ~umask)
            listing[name] = {"bytes": path.stat().st_size, "sha256": _digest(path)}
        manifest = {
            "format": "rnnkit-charrnn-onnx", "version": MANIFEST_VERSION,
            "run": str(Path(run_dir)), "files": listing, "model": "model.onnx",
            "vocab": "vocab.json", "sample": SAMPLE_DEFAULTS,
            "uniforms": {"bit_generator": "numpy.random.PCG64(seed)",
                         "values": "(random_raw(length) >> 11) * 2**-53"},
        }
        write_json_atomic(tmp / "manifest.json", manifest)
        os.chmod(tmp / "manifest.json", 0o666 & ~umask)
        os.chmod(tmp, 0o777 & ~umask)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
