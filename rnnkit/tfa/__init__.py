"""tensorflow-addons' API on rnnkit, for code written against ``tfa`` 0.23.

``from rnnkit import tfa`` and ``tfa.seq2seq.BasicDecoder(cell, tfa.seq2seq.TrainingSampler())``
runs as it did with ``import tensorflow_addons as tfa`` (cells come from :mod:`rnnkit.rnn`).
See :mod:`rnnkit.tfa.seq2seq`; tfa's Keras-style cells are :mod:`rnnkit.tfa.rnn`
(``tfa.rnn.LayerNormLSTMCell(64)``).
"""

from rnnkit.tfa import rnn, seq2seq

__all__ = ["rnn", "seq2seq"]
