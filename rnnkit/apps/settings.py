"""The applications' settings: plain dataclasses with no dependency beyond the standard
library, so that ``rnnkit --help`` works on a library-only install (without ``[apps]``).

:mod:`rnnkit.apps.charrnn` and :mod:`rnnkit.apps.translate` re-export their own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["CHARRNN_RESUME_MAY_CHANGE", "MAX_SAMPLE_LENGTH", "TRANSLATE_RESUME_MAY_CHANGE",
           "CharRNNConfig", "TranslateConfig"]

CHARRNN = "charrnn"
#: settings that do not change the training trajectory: a resumed run may use other values
CHARRNN_RESUME_MAY_CHANGE = frozenset({"steps", "checkpoint_every", "eval_every",
                                       "sample_length", "temperature"})
MAX_SAMPLE_LENGTH = 100_000


@dataclass
class CharRNNConfig:
    corpus: str = "hamlet"
    num_layers: int = 2
    hidden_size: int = 256
    batch_size: int = 32
    seq_length: int = 64
    learning_rate: float = 3e-3
    steps: int = 1200
    checkpoint_every: int = 200
    eval_every: int = 200
    val_fraction: float = 0.05
    seed: int = 0
    sample_length: int = 400
    temperature: float = 0.6
    prime: str | None = None  # None: the corpus's first line
    clip_norm: float = 5.0

    def __post_init__(self):
        for name in ("num_layers", "hidden_size", "batch_size", "seq_length", "steps",
                     "checkpoint_every", "eval_every", "sample_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, received {value!r}")
        if self.sample_length > MAX_SAMPLE_LENGTH:
            raise ValueError(f"sample_length must be at most {MAX_SAMPLE_LENGTH}, received "
                             f"{self.sample_length}")
        if not 0.0 < self.val_fraction < 0.5:
            raise ValueError(f"val_fraction must be in (0, 0.5), received {self.val_fraction}")
        _check_temperature(self.temperature)
        if self.prime is not None and not self.prime:
            raise ValueError("prime must contain at least one character")


def _check_temperature(t: float) -> None:
    if not math.isfinite(t) or t < 0:
        raise ValueError(f"temperature must be a finite number >= 0, received {t}")


@dataclass
class TranslateConfig:
    steps: int = 2500
    hidden: int = 256
    embedding: int = 128
    batch_size: int = 64
    lr: float = 2e-3
    max_words: int = 25  # longest sentence kept, in words (pairs.tokenize)
    vocab_size: int = 4000  # SentencePiece pieces per side (at most)
    shared_vocab: bool = False  # one vocabulary and embedding for both sides
    dropout: float = 0.3  # on embeddings and the decoder GRU's output, training only
    checkpoint_every: int = 500
    test_every: int = 20  # every n-th verse is held out
    min_length: int = 0  # decoding: tokens before the end token is allowed
    no_repeat_ngram: int = 0  # decoding: forbid repeating n-grams of this size (0: off)
    replace_unk: bool = False  # decoding: <unk> -> the most attended source word
    pairs: str | None = None  # your own data: source<TAB>target lines (default: the Bible)
    src: str | None = None  # or two files, one sentence per line
    tgt: str | None = None
    valid: str | list[str] | None = None  # validation pairs: a source<TAB>target file, or
    test: str | list[str] | None = None  # [src, tgt] files; BLEU's (else: held out)
    beam_width: int = 5
    seed: int = 0
    log_every: int = 100  # steps between training-loss lines (metrics.jsonl, TensorBoard)
    keep: int = 2  # newest checkpoints kept (the best one is kept apart, in best/)
    patience: int = 0  # stop after this many validations without a better loss (0: never)
    bleu_every: int = 0  # steps between validation BLEU lines (greedy; 0: never)
    max_decode: int | None = None  # pieces per translation; None: 1.5x the longest target


TRANSLATE = "translate"
#: settings that do not change the training trajectory: a resumed run may use other values
TRANSLATE_RESUME_MAY_CHANGE = frozenset({"checkpoint_every", "beam_width", "max_decode",
                                         "min_length", "no_repeat_ngram", "replace_unk",
                                         "log_every", "keep", "bleu_every"})
