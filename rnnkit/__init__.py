"""rnnkit: the TensorFlow 1.x RNN and seq2seq API on PyTorch.

``from rnnkit import rnn, seq2seq`` mirrors ``tf.contrib.rnn`` and ``tf.contrib.seq2seq``;
``rnnkit.tfa.seq2seq`` mirrors tensorflow-addons' ``tfa.seq2seq``;
``rnnkit.legacy_seq2seq`` mirrors ``tf.contrib.legacy_seq2seq``.  The subpackages are
imported when first used (``import rnnkit`` itself loads nothing else, so the command line
answers Ctrl-C from its first instant).
"""

import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = ["activations", "compat", "export", "initializers", "legacy_seq2seq", "nest", "rnn",
           "seq2seq", "tfa", "__version__"]

_SUBMODULES = frozenset(__all__) - {"__version__"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"rnnkit.{name}")
    raise AttributeError(f"module 'rnnkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
