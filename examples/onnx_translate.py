"""Translate with a run exported by ``rnnkit translate export RUN OUTDIR``: numpy,
onnxruntime and sentencepiece only (no PyTorch, no rnnkit).  Prints what
``rnnkit translate run RUN`` prints for the same sentences: one translation a line (an empty
sentence gives an empty line).

    python examples/onnx_translate.py OUTDIR "And God said" "Let there be light" --beam-width 5
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import sentencepiece as spm


class Translator:
    """The exported encoder + attention decoder + beam search of one run."""

    def __init__(self, out_dir: str | Path, verify: bool = True):
        self.dir = Path(out_dir)
        self.manifest = json.loads((self.dir / "manifest.json").read_text(encoding="utf-8"))
        if self.manifest.get("format") != "rnnkit-translate-onnx":
            raise SystemExit(f"{self.dir}: not an rnnkit translate export")
        if verify:
            for name, entry in self.manifest["files"].items():
                digest = hashlib.sha256((self.dir / name).read_bytes()).hexdigest()
                if digest != entry["sha256"]:
                    raise SystemExit(f"{self.dir / name}: SHA-256 differs from the manifest's "
                                     "(damaged or replaced)")
        tokenizer = self.manifest["tokenizer"]
        self.src_sp, self.tgt_sp = (
            spm.SentencePieceProcessor(model_file=str(self.dir / tokenizer[side]))
            for side in ("src", "tgt"))
        self.ids = self.manifest["special_ids"]
        self.sessions: dict[int, ort.InferenceSession] = {}

    def session(self, beam_width: int) -> ort.InferenceSession:
        models = self.manifest["models"]
        if str(beam_width) not in models:
            raise SystemExit(f"beam width {beam_width} was not exported (exported: "
                             f"{', '.join(sorted(models, key=int))}; rnnkit translate export "
                             f"--beam-width {beam_width})")
        if beam_width not in self.sessions:
            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            self.sessions[beam_width] = ort.InferenceSession(
                str(self.dir / models[str(beam_width)]), opts,
                providers=["CPUExecutionProvider"])
        return self.sessions[beam_width]

    def tokenize(self, text: str) -> list[int]:
        """The source pieces' ids of ``text`` (the run's SentencePiece model)."""
        return list(self.src_sp.encode(text))

    def decode(self, ids) -> str:
        """The detokenised text of ``ids`` up to the first ``</s>``."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.ids["eos"]:
                break
            if i in (self.ids["pad"], self.ids["sos"]):
                continue
            out.append(i)
        return self.tgt_sp.decode(out)

    def translate(self, sentences: list[str], beam_width: int = 5) -> list[str]:
        """Sentences in, translations out (the best hypothesis of each); an empty (or
        blank) sentence is left empty, as ``rnnkit translate run`` leaves it."""
        todo = [s for s in sentences if s.strip()]
        done = iter(self._translate([self.tokenize(s) for s in todo], beam_width))
        return [next(done) if s.strip() else "" for s in sentences]

    def _translate(self, sentences: list[list[int]], beam_width: int) -> list[str]:
        sess = self.session(beam_width)
        unk, pad = self.ids["unk"], self.ids["pad"]
        batch = self.manifest["decode"]["batch"]
        max_len = np.array(self.manifest["decode"]["max_decode"], np.int64)
        results = []
        for i in range(0, len(sentences), batch):
            chunk = [s or [unk] for s in sentences[i:i + batch]]
            lengths = np.array([len(s) for s in chunk], np.int64)
            source = np.full((len(chunk), int(lengths.max())), pad, np.int64)
            for b, s in enumerate(chunk):
                source[b, :len(s)] = s
            ids = sess.run(["predicted_ids"], {"source": source, "source_length": lengths,
                                               "maximum_iterations": max_len})[0]
            results += [self.decode(ids[b, :, 0]) for b in range(len(chunk))]
        return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out_dir", help="directory written by 'rnnkit translate export'")
    p.add_argument("sentences", nargs="+", help="sentences in the source language")
    p.add_argument("--beam-width", type=int, default=5, help="beam width (an exported one)")
    args = p.parse_args(argv)
    t = Translator(args.out_dir)
    for line in t.translate(args.sentences, args.beam_width):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
