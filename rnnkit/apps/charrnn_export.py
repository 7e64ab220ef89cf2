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

from pathlib import Path

import torch

from rnnkit.apps import charrnn
from rnnkit.apps.checkpoint import write_json_atomic
from rnnkit.apps.export_dir import write_export_dir
from rnnkit.apps.settings import MAX_SAMPLE_LENGTH

__all__ = ["SAMPLE_DEFAULTS", "export_onnx"]

MANIFEST_VERSION = 1
#: ``rnnkit charrnn sample``'s defaults and bounds (rnnkit.apps.cli), which the client applies
SAMPLE_DEFAULTS = {"length": 500, "temperature": 0.8, "max_length": MAX_SAMPLE_LENGTH,
                   "min_temperature": 1e-3, "max_temperature": 100.0, "min_top_p": 1e-3,
                   "max_top_k": 1_000_000, "max_seed": 2**63 - 1}


def export_onnx(run_dir: str | Path, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Write the ONNX export of a char-RNN run (or of a ``.safetensors`` file ``charrnn
    export`` wrote) to ``out_dir`` (see the module's doc), as
    :func:`rnnkit.apps.export_dir.write_export_dir` writes export directories: an existing
    ``out_dir`` is replaced only with ``overwrite``, and only when it is such an export."""
    from rnnkit import export

    model, vocab, cfg = charrnn.load_run(run_dir)  # verified
    prime = cfg.get("prime") or "\n"  # charrnn sample's default prime

    def fill(tmp: Path) -> dict:
        one_hot = torch.eye(model.vocab_size, dtype=model.output.weight.dtype)
        export.export_sampler(model.cell, one_hot, model.output, tmp / "model.onnx")
        write_json_atomic(tmp / "vocab.json", {"chars": vocab.chars, "prime": prime})
        return {"version": MANIFEST_VERSION, "run": str(Path(run_dir)), "model": "model.onnx",
                "vocab": "vocab.json", "sample": SAMPLE_DEFAULTS,
                "uniforms": {"bit_generator": "numpy.random.PCG64(seed)",
                             "values": "(random_raw(length) >> 11) * 2**-53"}}

    return write_export_dir(out_dir, "rnnkit-charrnn-onnx", "char-RNN ONNX export", overwrite,
                            fill)
