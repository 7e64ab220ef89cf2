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

_CELL = re.compile(r"^rnn/multi_rnn_cell/cell_(\d+)/")
_LSTM = "rnn/multi_rnn_cell/cell_{}/basic_lstm_cell/{}"


def checked_sizes(shapes: dict[str, list[int]], ckpt) -> tuple[int, int, int]:
    """``(vocabulary, hidden, layers)`` of a seed-003 char-RNN from its variables' shapes,
    every variable present with the shape the others imply and within the char-RNN's bounds
    (:data:`rnnkit.apps.charrnn.SPEC`), before anything is allocated; else a
    ``ValueError`` naming the variable."""
    from rnnkit.apps.charrnn import MAX_HIDDEN, MAX_LAYERS, MAX_VOCAB

    def shape(name: str) -> list[int]:
        if name not in shapes:
            raise ValueError(f"{ckpt}: the variable {name} is missing")
        return list(shapes[name])

    cells = sorted({int(m.group(1)) for n in shapes if (m := _CELL.match(n))})
    if not cells:
        raise ValueError(f"{ckpt} holds no seed-003 char-RNN (no rnn/multi_rnn_cell/cell_K/"
                         "basic_lstm_cell/kernel variables)")
    if cells != list(range(len(cells))) or len(cells) > MAX_LAYERS:
        raise ValueError(f"{ckpt}: the cells are numbered {cells[:8]}, not 0 to at most "
                         f"{MAX_LAYERS - 1}")
    weights, biases = shape("fully_connected/weights"), shape("fully_connected/biases")
    if len(weights) != 2 or biases != weights[1:]:
        raise ValueError(f"{ckpt}: fully_connected/weights {weights} and "
                         f"fully_connected/biases {biases} are not [hidden, vocabulary] "
                         "and [vocabulary]")
    hidden, vocab = weights
    if not (1 <= hidden <= MAX_HIDDEN and 1 <= vocab <= MAX_VOCAB):
        raise ValueError(f"{ckpt}: fully_connected/weights {weights}: at most "
                         f"[{MAX_HIDDEN}, {MAX_VOCAB}] are supported")
    for k in cells:
        for part, want in (("kernel", [(vocab if k == 0 else hidden) + hidden, 4 * hidden]),
                           ("bias", [4 * hidden])):
            name = _LSTM.format(k, part)
            if shape(name) != want:
                raise ValueError(f"{ckpt}: {name} has shape {shape(name)}; the output layer "
                                 f"(hidden {hidden}, vocabulary {vocab}) implies {want}")
    return vocab, hidden, len(cells)


def textloader_vocab(text: str) -> list[str]:
    """Seed 003's TextLoader ids: characters by decreasing count, ties by first appearance."""
    return [c for c, _ in sorted(Counter(text).items(), key=lambda kv: -kv[1])]


def convert_charrnn(ckpt: str | Path, out: str | Path, vocab: list[str],
                    corpus: str = "converted", prime: str | None = None) -> Path:
    """Write run directory ``out`` from the TF char-RNN checkpoint ``ckpt``; ``prime`` (the
    default start of samples) defaults to the vocabulary's first character."""
    vocab_size, hidden, layers = checked_sizes(dict(compat.list_tf_variables(ckpt)), ckpt)
    if len(vocab) != vocab_size or len(set(vocab)) != len(vocab):
        raise ValueError(f"the vocabulary has {len(vocab)} distinct characters but the "
                         f"checkpoint's output layer has {vocab_size}")
    model = CharRNN(vocab_size, hidden, layers)
    compat.load_tf_checkpoint({"rnn/multi_rnn_cell": model.cell,
                               "fully_connected": model.output}, ckpt)
    chars = CharVocab(vocab)
    cfg = CharRNNConfig(corpus=corpus, num_layers=layers, hidden_size=hidden)
    run_cfg = dict(dataclasses.asdict(cfg), prime=prime or vocab[0], vocab=chars.to_json(),
                   converted_from=str(ckpt))
    run = Run(out, APP)
    run.start(run_cfg, resume=False, overwrite=False, continuable=False)
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
