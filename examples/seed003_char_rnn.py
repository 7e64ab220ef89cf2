"""Seed 003, "Basic RNN implemented with Tensorflow": a char-RNN on Hamlet, then prediction
with batch size 1, feeding the state back at every step.

The seed's sizes (3 x 512 LSTM, batch 200) need a GPU; the defaults here train a smaller
stack on the CPU in a few minutes.  ``--seed-sizes`` restores the seed's settings.
"""

import argparse

from rnnkit.apps import charrnn


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/examples/seed003")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--seed-sizes", action="store_true",
                    help="num_layers 3, hidden 512, batch 200, max_length 30, lr 0.001")
    args = ap.parse_args(argv)
    if args.seed_sizes:
        cfg = charrnn.CharRNNConfig(num_layers=3, hidden_size=512, batch_size=200,
                                    seq_length=30, learning_rate=0.001, steps=args.steps)
    else:
        cfg = charrnn.CharRNNConfig(steps=args.steps, checkpoint_every=max(1, args.steps // 3),
                                    eval_every=max(1, args.steps // 3))
    import shutil

    shutil.rmtree(args.out, ignore_errors=True)
    summary = charrnn.train(cfg, args.out)

    # prediction: batch_size 1, start with the first 10 characters, one character per step
    model, vocab, _ = charrnn.load_run(args.out)
    text = charrnn.load_corpus(cfg.corpus)
    start = text[:10]
    print("Start with:", start)
    print(charrnn.sample(model, vocab, start, 300, temperature=0.0))  # argmax, as the seed
    return summary


if __name__ == "__main__":
    main()
