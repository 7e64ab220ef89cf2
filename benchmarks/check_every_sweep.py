"""Greedy and beam-5 decoding tokens/s against ``check_finished_every`` (the default K).

    python benchmarks/check_every_sweep.py --device cuda
"""

from __future__ import annotations

import argparse

import torch
from decode_speed import rnnkit_rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    device = torch.device(args.device)
    print("| K | greedy tokens/s | beam 5 tokens/s |\n|---|---|---|")
    for k in (1, 2, 4, 8, 16, 32):
        rates = rnnkit_rates(device, args.repeat, widths=(5,), check_every=k)
        print(f"| {k} | {rates['greedy']:,.0f} | {rates['beam 5']:,.0f} |")


if __name__ == "__main__":
    main()
