"""rnnkit: the TensorFlow 1.x RNN and seq2seq API on PyTorch.

``from rnnkit import rnn, seq2seq`` mirrors ``tf.contrib.rnn`` and ``tf.contrib.seq2seq``;
``rnnkit.tfa.seq2seq`` mirrors tensorflow-addons' ``tfa.seq2seq``.
"""

from rnnkit import compat, initializers, legacy_seq2seq, nest, rnn, seq2seq, tfa

__version__ = "0.1.0"
__all__ = ["compat", "initializers", "legacy_seq2seq", "nest", "rnn", "seq2seq", "tfa",
           "__version__"]
