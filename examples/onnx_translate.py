"""Translate with a run exported by ``rnnkit translate export RUN OUTDIR``: numpy,
onnxruntime and sentencepiece only (no PyTorch, no rnnkit).  Prints what
``rnnkit translate run RUN`` prints for the same sentences: one translation a line (an empty
sentence gives an empty line).

    python examples/onnx_translate.py OUTDIR "And God said" "Let there be light" --beam-width 5

``--min-length N``, ``--no-repeat-ngram N`` and ``--replace-unk`` mean what they mean to
``rnnkit translate run`` (the same defaults: 0, 0, off): the first two are fed to the model
(computed inside the graph), the third replaces each ``<unk>`` of a translation by the
source piece the model's ``alignments`` output weighted most at that step.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
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

    def with_unk_replaced(self, ids: Sequence[int], align: np.ndarray,
                          src_ids: Sequence[int]) -> str:
        """The text of ``ids`` (up to ``</s>``, excluded) with each ``<unk>`` replaced by
        the source piece ``align [len(ids) + 1, len(src_ids)]`` weighted most at that step
        (``rnnkit translate run --replace-unk``'s rule, piece for piece)."""
        unk = self.ids["unk"]
        text: list[str] = []
        run: list[int] = []
        for t, i in enumerate(ids):
            if i == unk and src_ids:
                text.append(self.decode(run))
                run = []
                piece = self.src_sp.id_to_piece(int(src_ids[int(np.argmax(align[t]))]))
                piece = piece.replace("\u2581", " ")  # the word-start mark as a space
                text.append(piece if not (text and text[-1] == "") else piece.lstrip())
            else:
                run.append(i)
        text.append(self.decode(run))
        return "".join(text).strip() if len(text) > 1 else text[0]

    def translate(self, sentences: list[str], beam_width: int = 5, min_length: int = 0,
                  no_repeat_ngram: int = 0, replace_unk: bool = False) -> list[str]:
        """Sentences in, translations out (the best hypothesis of each); an empty (or
        blank) sentence is left empty, as ``rnnkit translate run`` leaves it.
        ``min_length`` / ``no_repeat_ngram`` / ``replace_unk``: ``translate run``'s
        ``--min-length``, ``--no-repeat-ngram`` and ``--replace-unk``."""
        todo = [s for s in sentences if s.strip()]
        done = iter(self._translate([self.tokenize(s) for s in todo], beam_width,
                                    min_length, no_repeat_ngram, replace_unk))
        return [next(done) if s.strip() else "" for s in sentences]

    def _feed(self, sess: ort.InferenceSession, min_length: int,
              no_repeat_ngram: int) -> dict[str, np.ndarray]:
        """The constraint inputs to feed (an export before they existed takes none)."""
        names = {i.name for i in sess.get_inputs()} | {
            i.name for i in sess.get_overridable_initializers()}
        feed = {}
        for option, value in (("min_length", min_length), ("no_repeat_ngram", no_repeat_ngram)):
            name = self.manifest["decode"].get("inputs", {}).get(option)
            if name in names:
                feed[name] = np.array(value, np.int64)
            elif value:
                raise SystemExit(f"--{option.replace('_', '-')}: this export's models do not "
                                 "take it (export the run again with rnnkit translate export)")
        return feed

    def _translate(self, sentences: list[list[int]], beam_width: int, min_length: int,
                   no_repeat_ngram: int, replace_unk: bool) -> list[str]:
        sess = self.session(beam_width)
        unk, pad, eos = self.ids["unk"], self.ids["pad"], self.ids["eos"]
        batch = self.manifest["decode"]["batch"]
        max_len = np.array(self.manifest["decode"]["max_decode"], np.int64)
        outputs = ["predicted_ids"]
        if replace_unk:
            name = self.manifest["decode"].get("replace_unk")
            if name not in {o.name for o in sess.get_outputs()}:
                raise SystemExit("--replace-unk: this export's models give no alignments "
                                 "(export the run again with rnnkit translate export)")
            outputs.append(name)
        constraints = self._feed(sess, min_length, no_repeat_ngram)
        results = []
        for i in range(0, len(sentences), batch):
            chunk = [s or [unk] for s in sentences[i:i + batch]]
            lengths = np.array([len(s) for s in chunk], np.int64)
            source = np.full((len(chunk), int(lengths.max())), pad, np.int64)
            for b, s in enumerate(chunk):
                source[b, :len(s)] = s
            got = sess.run(outputs, {"source": source, "source_length": lengths,
                                     "maximum_iterations": max_len, **constraints})
            ids = got[0]  # [batch, time, beam], best first
            for b, src_ids in enumerate(chunk):
                if not replace_unk:
                    results.append(self.decode(ids[b, :, 0]))
                    continue
                out = [int(x) for x in ids[b, :, 0]]
                out = out[:out.index(eos)] if eos in out else out
                align = got[1][b, :len(out) + 1, 0, :len(src_ids)]  # [steps, src]
                results.append(self.with_unk_replaced(out, align, src_ids))
        return results


def _int_in(low: int, high: int):
    """An argparse type: an int in ``[low, high]`` (``rnnkit translate run``'s bounds)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, received {text!r}") \
                from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be in [{low}, {high}], received {value}")
        return value
    return parse


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out_dir", help="directory written by 'rnnkit translate export'")
    p.add_argument("sentences", nargs="+", help="sentences in the source language")
    p.add_argument("--beam-width", type=int, default=5, help="beam width (an exported one)")
    p.add_argument("--min-length", type=_int_in(0, 1000), default=0,
                   help="tokens a translation has before its end token, at least")
    p.add_argument("--no-repeat-ngram", type=_int_in(0, 100), default=0,
                   help="forbid a translation to repeat any n-gram of this size (0: off)")
    p.add_argument("--replace-unk", action="store_true",
                   help="replace each <unk> by the source word the attention weighted most")
    args = p.parse_args(argv)
    t = Translator(args.out_dir)
    for line in t.translate(args.sentences, args.beam_width, args.min_length,
                            args.no_repeat_ngram, args.replace_unk):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
