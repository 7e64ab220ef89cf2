"""``rnnkit translate export RUN OUTDIR``: a trained translation run as ONNX models that
``examples/onnx_translate.py`` serves with numpy + onnxruntime alone.

``OUTDIR`` holds ``model-beam{N}.onnx`` (one per beam width: the encoder, the attention
decoder and the beam search with the run's length penalty, loop in the graph), ``vocab.json``
(both vocabularies), ``tokenizer.json`` (the tokenizer as data: lower-casing, replacements, a
regular expression) and ``manifest.json`` (the settings ``rnnkit translate run`` decodes with,
and each file's size and SHA-256).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import torch

from rnnkit import seq2seq
from rnnkit.apps import translate
from rnnkit.apps.checkpoint import write_json_atomic
from rnnkit.apps.data import pairs
from rnnkit.apps.data.vocab import WordVocab
from rnnkit.apps.runs import RunError

__all__ = ["LENGTH_PENALTY", "export_onnx", "tokenizer_spec"]

#: the length penalty ``Seq2SeqAttention.beam_search`` decodes with
LENGTH_PENALTY = 0.6
MANIFEST_VERSION = 1
#: strings the exported tokenizer must split as the run's does
_PROBES = ("And God said, Let there be light: and there was light.",
           "Thou shalt not \u2019steal\u2018 -- 12 o'clock; THE END!", "  ", "caf\u00e9 na\u00efve")


def tokenizer_spec() -> dict:
    """The run's tokenizer (:func:`rnnkit.apps.data.pairs.tokenize`) as data, checked to
    reproduce it: refused if the tokenizer has become something a regular expression over
    the lower-cased text does not describe."""
    spec = {"type": "regex", "lowercase": True,
            "replace": {"\u2019": "'", "\u2018": "'"},
            "pattern": pairs._TOKEN.pattern}
    for text in _PROBES:
        if apply_tokenizer(spec, text) != pairs.tokenize(text):
            raise RunError("the translation tokenizer is not the regular expression this "
                           "export writes; update rnnkit.apps.translate_export.tokenizer_spec")
    return spec


def apply_tokenizer(spec: dict, text: str) -> list[str]:
    """What ``examples/onnx_translate.py`` does with ``tokenizer.json``."""
    import re

    if spec["lowercase"]:
        text = text.lower()
    for a, b in spec["replace"].items():
        text = text.replace(a, b)
    return re.findall(spec["pattern"], text)


def _bridge(model: translate.Seq2SeqAttention):
    """``Seq2SeqAttention.encode`` after its ``bidirectional_dynamic_rnn``."""
    def bridge(outputs, final, lengths):
        memory = torch.cat(outputs, -1)
        init = torch.tanh(model.bridge(torch.cat(final, -1)))
        model.attention.setup_memory(memory, lengths)
        return model.decoder_cell.zero_state(init.shape[0]).clone(cell_state=init)
    return bridge


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def export_onnx(run_dir: str | Path, out_dir: str | Path, beam_widths=None,
                overwrite: bool = False) -> Path:
    """Write the ONNX export of a translation run to ``out_dir`` (see the module's doc);
    ``beam_widths``: the widths to export (default: 1, 5 (``translate run``'s default) and
    the run's ``beam_width``).  An existing ``out_dir`` is replaced only with ``overwrite``;
    the directory is written beside it and renamed into place, so an interrupted export
    leaves no half directory."""
    from rnnkit import export

    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise RunError(f"{out_dir} exists; choose another directory or pass --overwrite")
    if out_dir.suffix == ".safetensors":
        raise RunError(f"{out_dir}: an ONNX export is a directory")
    model, src_vocab, tgt_vocab, cfg = translate.load_model(run_dir)
    widths = sorted({1, 5, int(cfg["beam_width"])} if not beam_widths
                    else {int(w) for w in beam_widths})
    max_len = int(cfg["max_decode"])
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        spec = export.Encoder(model.enc_fw, model.enc_bw, embedding=model.src_embedding,
                              bridge=_bridge(model), modules=(model,))
        with torch.no_grad():  # any batch: the decoder is rebound to the served one
            src = torch.tensor([[WordVocab.UNK] * 2])
            state = model.encode(src, torch.tensor([2]))
        files = {}
        for w in widths:
            decoder = seq2seq.BeamSearchDecoder(
                model.decoder_cell, model.tgt_embedding, torch.tensor([WordVocab.SOS]),
                WordVocab.EOS, state, w, output_layer=model.output_layer,
                length_penalty_weight=LENGTH_PENALTY)
            name = f"model-beam{w}.onnx"
            export.export_seq2seq(spec, decoder, tmp / name, maximum_iterations=max_len)
            files[name] = {"beam_width": w}
        with open(tmp / "vocab.json", "w", encoding="utf-8") as f:
            json.dump({"source": src_vocab.words, "target": tgt_vocab.words}, f,
                      ensure_ascii=False)
        with open(tmp / "tokenizer.json", "w", encoding="utf-8") as f:
            json.dump(tokenizer_spec(), f, ensure_ascii=False)
        listing = {}
        for name in sorted(p.name for p in tmp.iterdir()):
            path = tmp / name
            listing[name] = {**files.get(name, {}), "bytes": path.stat().st_size,
                             "sha256": _digest(path)}
        manifest = {
            "format": "rnnkit-translate-onnx", "version": MANIFEST_VERSION,
            "run": str(Path(run_dir)), "files": listing,
            "models": {str(w): f"model-beam{w}.onnx" for w in widths},
            "decode": {"max_decode": max_len, "length_penalty_weight": LENGTH_PENALTY,
                       "batch": 64, "unk_for_empty_source": True},
            "special_ids": {"pad": WordVocab.PAD, "sos": WordVocab.SOS,
                            "eos": WordVocab.EOS, "unk": WordVocab.UNK},
        }
        write_json_atomic(tmp / "manifest.json", manifest)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
