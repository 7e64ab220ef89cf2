"""Row-by-row RNN digit classifier (seed 004): each image is a sequence of pixel rows.

The seed used 28x28 MNIST, which no package ships inside its wheel; this uses
scikit-learn's bundled 8x8 handwritten digits (8 steps of 8 pixels).  Model: a cell
(BasicRNNCell by default, as the seed) run by dynamic_rnn, its last output through a
dense layer, softmax cross-entropy, Adam.  With ``out``, the trained model is saved as a run
directory (``config.json`` and a verified checkpoint whose ``meta.json`` holds the
accuracies).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit import rnn
from rnnkit.apps.data.digits import load_digits
from rnnkit.apps.device import resolve_device

__all__ = ["RowClassifier", "main", "train"]


@dataclass
class Result:
    test_accuracy: float
    train_accuracy: float
    epochs: int
    costs: list


class RowClassifier(nn.Module):
    """``images [batch, rows, cols]`` -> ``logits [batch, classes]``."""

    def __init__(self, n_input: int, n_hidden: int, n_class: int, cell: str = "rnn"):
        super().__init__()
        make = {"rnn": rnn.BasicRNNCell, "lstm": rnn.BasicLSTMCell, "gru": rnn.GRUCell}
        if cell not in make:
            raise ValueError(f"cell must be one of {sorted(make)}, received {cell!r}")
        self.cell = make[cell](n_hidden, input_size=n_input)
        self.out = nn.Linear(n_hidden, n_class)

    def forward(self, x):
        outputs, _ = rnn.dynamic_rnn(self.cell, x, dtype=torch.float32)
        # [batch, n_step, n_hidden] -> the last step [batch, n_hidden]
        return self.out(outputs[:, -1])


DATA_NOTE = ("digits: scikit-learn's 8x8 handwritten digits (load_digits), read row by row; "
             "the seed's 28x28 MNIST ships in no package")


def train(cell: str = "rnn", n_hidden: int = 128, epochs: int = 30, batch_size: int = 64,
          lr: float = 3e-3, seed: int = 0, log=print, device: str | None = None,
          out: str | Path | None = None, overwrite: bool = False) -> Result:
    """Train and test the classifier; ``device`` as :func:`rnnkit.apps.device.resolve_device`
    (default: cuda when available); ``out``: the run directory to save it in (``None``:
    none)."""
    dev = resolve_device(device)
    log(DATA_NOTE)
    config = dict(cell=cell, n_hidden=n_hidden, epochs=epochs, batch_size=batch_size, lr=lr,
                  seed=seed)
    run = _start_run(out, config, overwrite) if out is not None else None
    try:
        result, model = _train(cell, n_hidden, epochs, batch_size, lr, seed, log, dev)
        if run is not None:
            from rnnkit.apps.checkpoint import module_to_tensors

            run.save(epochs, module_to_tensors(model),
                     {"history": [round(c, 6) for c in result.costs],
                      "test_accuracy": result.test_accuracy,
                      "train_accuracy": result.train_accuracy})
            log(f"run written to {run.path}: config.json, checkpoints/")
    finally:
        if run is not None:
            run.unlock()
    return result


def _start_run(out, config: dict, overwrite: bool):
    from rnnkit.apps.checkpoint import latest_checkpoint
    from rnnkit.apps.runs import Run, RunError

    run = Run(out, "mnist")
    if not overwrite and latest_checkpoint(run.checkpoints) is not None:
        raise RunError(f"{run.path} already holds checkpoints; choose another --out or pass "
                       "--overwrite to replace it")
    run.start(config, resume=False, overwrite=overwrite)
    return run


def _train(cell, n_hidden, epochs, batch_size, lr, seed, log, dev):
    torch.manual_seed(seed)
    x_train, y_train, x_test, y_test = (t.to(dev) for t in load_digits(seed=seed))
    n_step, n_input = x_train.shape[1:]
    model = RowClassifier(n_input, n_hidden, 10, cell).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    total_batch = (len(y_train) + batch_size - 1) // batch_size
    costs = []
    for epoch in range(epochs):
        perm = torch.randperm(len(y_train), generator=g)
        total_cost = 0.0
        for i in range(total_batch):
            idx = perm[i * batch_size:(i + 1) * batch_size].to(dev)
            cost = F.cross_entropy(model(x_train[idx]), y_train[idx])
            opt.zero_grad()
            cost.backward()
            opt.step()
            total_cost += cost.item()
        costs.append(total_cost / total_batch)
        log(f"Epoch: {epoch + 1:04d} Avg. cost = {costs[-1]:.3f}")
    model.eval()
    with torch.no_grad():
        test_acc = (model(x_test).argmax(1) == y_test).float().mean().item()
        train_acc = (model(x_train).argmax(1) == y_train).float().mean().item()
    log(f"digits: {len(y_train)} train / {len(y_test)} test images of {n_step}x{n_input} "
        "pixels (scikit-learn load_digits)")
    log(f"test accuracy: {test_acc:.4f} (train {train_acc:.4f})")
    return Result(test_acc, train_acc, epochs, costs), model


def main(args: argparse.Namespace) -> Result:
    return train(cell=args.cell, n_hidden=args.hidden, epochs=args.epochs,
                 batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device,
                 out=args.out, overwrite=args.overwrite)
