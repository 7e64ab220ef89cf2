"""Handwritten digits for the row-by-row classifier.

No PyPI package ships the 28x28 MNIST images inside its wheel (those that mention MNIST
download it at run time), so this uses scikit-learn's bundled ``load_digits``: 1,797 real
handwritten digits of 8x8 pixels (UCI optdigits test set).  Each image is read as a sequence
of 8 rows of 8 pixels.
"""

from __future__ import annotations

import torch

__all__ = ["load_digits"]


def load_digits(test_fraction: float = 0.2, seed: int = 0):
    """``(x_train [n, 8, 8], y_train [n], x_test, y_test)``: pixels scaled to [0, 1], a
    stratification-free seeded split."""
    from sklearn.datasets import load_digits as sk_digits

    data = sk_digits()
    x = torch.tensor(data.images, dtype=torch.float32) / 16.0
    y = torch.tensor(data.target, dtype=torch.long)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(y), generator=g)
    n_test = int(round(len(y) * test_fraction))
    test, train = perm[:n_test], perm[n_test:]
    return x[train], y[train], x[test], y[test]
