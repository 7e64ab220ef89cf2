"""``rnnkit convert-tf``: a TF 1.x char-RNN checkpoint (seed 003's) as an rnnkit run.

Seed 003 saves ``basic_checkpoints/char-rnn_N`` with ``tf.train.Saver``: a ``MultiRNNCell``
of ``BasicLSTMCell`` under ``rnn/multi_rnn_cell/cell_K/basic_lstm_cell`` and
``tf.contrib.layers.linear``'s ``fully_connected/weights|biases``.  The sizes come from the
checkpoint; the vocabulary (which TF kept in the loader's pickle, never read here) comes from
``--vocab`` (a JSON list of the characters in id order) or ``--corpus`` (the training text:
the ids are rebuilt as seed 003's TextLoader made them, by decreasing frequency, ties in
order of first appearance).  The run written is what ``rnnkit charrnn sample`` reads.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from pathlib import Path

from rnnkit import compat
from rnnkit.apps.charrnn import APP, CharRNN, CharRNNConfig, default_prime
from rnnkit.apps.checkpoint import module_to_tensors
from rnnkit.apps.data.text import read_text_file
from rnnkit.apps.data.vocab import CharVocab
from rnnkit.apps.runs import Run

__all__ = ["convert_charrnn", "textloader_vocab"]

_KERNEL = re.compile(r"^rnn/multi_rnn_cell/cell_(\d+)/basic_lstm_cell/kernel$")


def textloader_vocab(text: str) -> list[str]:
    """Seed 003's TextLoader ids: characters by decreasing count, ties by first appearance."""
    return [c for c, _ in sorted(Counter(text).items(), key=lambda kv: -kv[1])]


def convert_charrnn(ckpt: str | Path, out: str | Path, vocab: list[str],
                    corpus: str = "converted", prime: str | None = None) -> Path:
    """Write run directory ``out`` from the TF char-RNN checkpoint ``ckpt``; ``prime`` (the
    default start of samples) defaults to the vocabulary's first character."""
    shapes = dict(compat.list_tf_variables(ckpt))
    layers = sorted(int(m.group(1)) for n in shapes if (m := _KERNEL.match(n)))
    if not layers or layers != list(range(len(layers))):
        raise ValueError(f"{ckpt} holds no seed-003 char-RNN (no rnn/multi_rnn_cell/cell_K/"
                         "basic_lstm_cell/kernel variables)")
    if "fully_connected/biases" not in shapes:
        raise ValueError(f"{ckpt} has no fully_connected/weights|biases output layer")
    hidden = shapes["rnn/multi_rnn_cell/cell_0/basic_lstm_cell/bias"][0] // 4
    vocab_size = shapes["fully_connected/biases"][0]
    if len(vocab) != vocab_size or len(set(vocab)) != len(vocab):
        raise ValueError(f"the vocabulary has {len(vocab)} distinct characters but the "
                         f"checkpoint's output layer has {vocab_size}")
    model = CharRNN(vocab_size, hidden, len(layers))
    compat.load_tf_checkpoint({"rnn/multi_rnn_cell": model.cell,
                               "fully_connected": model.output}, ckpt)
    chars = CharVocab(vocab)
    cfg = CharRNNConfig(corpus=corpus, num_layers=len(layers), hidden_size=hidden)
    run_cfg = dict(dataclasses.asdict(cfg), prime=prime or vocab[0], vocab=chars.to_json(),
                   converted_from=str(ckpt))
    run = Run(out, APP)
    run.start(run_cfg, resume=False, overwrite=False)
    try:
        run.save(0, module_to_tensors(model), {"history": [], "val_history": []})
    finally:
        run.unlock()
    return run.path


def vocab_from_args(vocab_file: str | None, corpus_file: str | None
                    ) -> tuple[list[str], str, str | None]:
    """``(characters in id order, corpus label, prime)`` from ``--vocab`` or ``--corpus``."""
    if (vocab_file is None) == (corpus_file is None):
        raise ValueError("give --vocab chars.json or --corpus text.txt (one of them)")
    if vocab_file is not None:
        try:
            chars = json.loads(Path(vocab_file).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"--vocab {vocab_file}: cannot read a JSON list ({e})") from None
        if not isinstance(chars, list) or not all(isinstance(c, str) and len(c) == 1
                                                   for c in chars):
            raise ValueError(f"--vocab {vocab_file} must hold a JSON list of characters")
        return chars, "converted", None
    text = read_text_file(corpus_file, "--corpus")
    return textloader_vocab(text), str(corpus_file), default_prime(text)
