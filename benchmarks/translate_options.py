"""Held-out BLEU of a trained translation run under each decoding option.

    python benchmarks/translate_options.py runs/translate [--device cpu]

Decodes the run's held-out pairs (the same split training used) with beam 5 and: nothing
else, --min-length 3, --no-repeat-ngram 3, --replace-unk, and all three; prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from rnnkit.apps import translate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--beam-width", type=int, default=5)
    args = ap.parse_args()
    model, src_vocab, tgt_vocab, saved = translate.load_model(args.run, args.device)
    fields = {f.name for f in dataclasses.fields(translate.TranslateConfig)}
    cfg = translate.TranslateConfig(**{k: v for k, v in saved.items() if k in fields})
    pairs = translate.load_pairs(cfg)
    test = [p for i, p in enumerate(pairs) if i % cfg.test_every == cfg.test_every - 1]
    sources, refs = [s for s, _ in test], [t for _, t in test]
    variants = {"beam 5": {}, "--min-length 3": {"min_length": 3},
                "--no-repeat-ngram 3": {"no_repeat_ngram": 3},
                "--replace-unk": {"replace_unk": True},
                "all three": {"min_length": 3, "no_repeat_ngram": 3, "replace_unk": True}}
    print(f"{len(test)} held-out pairs; copying the source scores "
          f"{translate.bleu(sources, refs):.2f}")
    print("| decoding | held-out BLEU | seconds |\n|---|---|---|")
    for name, kw in variants.items():
        t0 = time.perf_counter()
        hyps, _ = translate.translate(model, sources, src_vocab, tgt_vocab, args.beam_width,
                                      cfg.max_decode, **kw)
        print(f"| {name} | {translate.bleu(hyps, refs):.2f} | "
              f"{time.perf_counter() - t0:.1f} |")


if __name__ == "__main__":
    main()
