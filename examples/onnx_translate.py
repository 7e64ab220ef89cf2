"""Translate with a run exported by ``rnnkit translate export RUN OUTDIR``: numpy and
onnxruntime only (no PyTorch, no rnnkit).  Prints what ``rnnkit translate run RUN`` prints
for the same sentences.

    python examples/onnx_translate.py OUTDIR "and god said" "let there be light" --beam-width 5
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort


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
        vocab = json.loads((self.dir / "vocab.json").read_text(encoding="utf-8"))
        self.src_index = {w: i for i, w in enumerate(vocab["source"])}
        self.tgt_words = vocab["target"]
        self.tokenizer = json.loads((self.dir / "tokenizer.json").read_text(encoding="utf-8"))
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

    def tokenize(self, text: str) -> list[str]:
        spec = self.tokenizer
        if spec["lowercase"]:
            text = text.lower()
        for a, b in spec["replace"].items():
            text = text.replace(a, b)
        return re.findall(spec["pattern"], text)

    def decode(self, ids) -> list[str]:
        out = []
        for i in ids:
            i = int(i)
            if i == self.ids["eos"]:
                break
            if i in (self.ids["pad"], self.ids["sos"]):
                continue
            out.append(self.tgt_words[i])
        return out

    def translate(self, sentences: list[list[str]], beam_width: int = 5) -> list[list[str]]:
        """Token lists in, token lists out (the best hypothesis of each)."""
        sess = self.session(beam_width)
        unk, pad = self.ids["unk"], self.ids["pad"]
        batch = self.manifest["decode"]["batch"]
        max_len = np.array(self.manifest["decode"]["max_decode"], np.int64)
        results = []
        for i in range(0, len(sentences), batch):
            chunk = [[self.src_index.get(w, unk) for w in s] or [unk]
                     for s in sentences[i:i + batch]]
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
    hyps = t.translate([t.tokenize(s) for s in args.sentences], args.beam_width)
    for s, h in zip(args.sentences, hyps, strict=True):
        print(f"{s}\n  -> {' '.join(h)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
