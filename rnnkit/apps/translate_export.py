"""``rnnkit translate export RUN OUTDIR``: a trained translation run as ONNX models that
``examples/onnx_translate.py`` serves with numpy, onnxruntime and sentencepiece alone.

``OUTDIR`` holds ``model-beam{N}.onnx`` (one per beam width: the encoder, the attention
decoder and the beam search with the run's length penalty, loop in the graph; the decoding
constraints ``--min-length`` / ``--no-repeat-ngram`` are its inputs ``min_length`` and
``no_repeat_ngram_size``, 0 when not fed, and its output ``alignments`` serves
``--replace-unk``), the run's
SentencePiece models (``src.spm.model`` and ``tgt.spm.model``, or ``spm.model`` for a
shared vocabulary: the very files the run tokenises and detokenises with) and
``manifest.json`` (the settings ``rnnkit translate run`` decodes with, which file is which
side's tokenizer, and each file's size and SHA-256).
"""

from __future__ import annotations

from pathlib import Path

import torch

from rnnkit import seq2seq
from rnnkit.apps import translate
from rnnkit.apps.export_dir import write_export_dir

__all__ = ["LENGTH_PENALTY", "export_onnx"]

#: the length penalty ``Seq2SeqAttention.beam_search`` decodes with
LENGTH_PENALTY = 0.6
MANIFEST_VERSION = 3


def _bridge(model: translate.Seq2SeqAttention):
    """``Seq2SeqAttention.encode`` after its ``bidirectional_dynamic_rnn``."""
    def bridge(outputs, final, lengths):
        memory = torch.cat(outputs, -1)
        init = torch.tanh(model.bridge(torch.cat(final, -1)))
        model.attention.setup_memory(memory, lengths)
        return model.decoder_cell.zero_state(init.shape[0]).clone(cell_state=init)
    return bridge


def export_onnx(run_dir: str | Path, out_dir: str | Path, beam_widths=None,
                overwrite: bool = False, checkpoint: str = "last") -> Path:
    """Write the ONNX export of a translation run to ``out_dir`` (see the module's doc);
    ``beam_widths``: the widths to export (default: 1, 5 (``translate run``'s default) and
    the run's ``beam_width``); ``checkpoint``: as :func:`rnnkit.apps.translate.load_model`.
    Written as :func:`rnnkit.apps.export_dir.write_export_dir` writes export directories: an
    existing ``out_dir`` is replaced only with ``overwrite``, and only when it is such an
    export."""
    from rnnkit import export

    model, src_tok, tgt_tok, cfg = translate.load_model(run_dir, checkpoint=checkpoint)
    widths = sorted({1, 5, int(cfg["beam_width"])} if not beam_widths
                    else {int(w) for w in beam_widths})
    max_len = int(cfg["max_decode"])

    def fill(tmp: Path) -> dict:
        spec = export.Encoder(model.enc_fw, model.enc_bw, embedding=model.src_embedding,
                              bridge=_bridge(model), modules=(model,))
        with torch.no_grad():  # any batch: the decoder is rebound to the served one
            src = torch.tensor([[translate.UNK] * 2])
            state = model.encode(src, torch.tensor([2]))
        files = {}
        for w in widths:
            decoder = seq2seq.BeamSearchDecoder(
                model.decoder_cell, model.tgt_embedding, torch.tensor([translate.SOS]),
                translate.EOS, state, w, output_layer=model.output_layer,
                length_penalty_weight=LENGTH_PENALTY)
            name = f"model-beam{w}.onnx"
            export.export_seq2seq(spec, decoder, tmp / name, maximum_iterations=max_len,
                                  alignments=True)
            files[name] = {"beam_width": w}
        tokenizer = {}
        for side, tok in (("src", src_tok), ("tgt", tgt_tok)):
            name = cfg["tokenizer"][side]["file"]  # bounded: one of the names a run writes
            tok.save(tmp / name)  # the bytes load_model verified against config.json
            tokenizer[side] = name
        return {
            "version": MANIFEST_VERSION, "run": str(Path(run_dir)), "checkpoint": checkpoint,
            "files": files, "models": {str(w): f"model-beam{w}.onnx" for w in widths},
            "decode": {"max_decode": max_len, "length_penalty_weight": LENGTH_PENALTY,
                       "batch": 64, "unk_for_empty_source": True,
                       # translate run's options -> the models' inputs and output
                       "inputs": {"min_length": "min_length",
                                  "no_repeat_ngram": "no_repeat_ngram_size"},
                       "replace_unk": "alignments"},
            "tokenizer": {"library": "sentencepiece", **tokenizer},
            "special_ids": {"pad": translate.PAD, "sos": translate.SOS,
                            "eos": translate.EOS, "unk": translate.UNK},
        }

    return write_export_dir(out_dir, "rnnkit-translate-onnx", "translation ONNX export",
                            overwrite, fill)
