"""Sample from a char-RNN run exported by ``rnnkit charrnn export RUN OUTDIR``: numpy and
onnxruntime only (no PyTorch, no rnnkit).  Prints what ``rnnkit charrnn sample RUN`` prints
with the same options (the prime, then the characters drawn):

    python examples/onnx_charrnn.py OUTDIR --length 200 --temperature 0.8 --seed 1

A seed's uniforms are ``(numpy.random.PCG64(seed).random_raw(length) >> 11) * 2**-53``, as
``rnnkit.generators.stable_uniforms`` computes them; each character is the inverse CDF of
the filtered softmax at its uniform, inside the model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort


def stable_uniforms(seed: int | None, length: int) -> np.ndarray:
    """``[length]`` float64 uniforms in ``[0, 1)``: the top 53 bits of numpy's PCG64
    stream for ``seed`` (a stream numpy keeps identical across its versions); ``None``:
    fresh entropy."""
    raw = np.random.PCG64(seed).random_raw(length) if length else np.zeros(0, np.uint64)
    return (np.asarray(raw, np.uint64) >> np.uint64(11)).astype(np.float64) * 2.0**-53


class Sampler:
    """The exported sampler of one run: its model, characters and default prime."""

    def __init__(self, out_dir: str | Path, verify: bool = True):
        self.dir = Path(out_dir)
        try:
            self.manifest = json.loads((self.dir / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise SystemExit(f"{self.dir}: no readable manifest.json ({e})") from None
        if self.manifest.get("format") != "rnnkit-charrnn-onnx":
            raise SystemExit(f"{self.dir}: not an rnnkit char-RNN export")
        if verify:
            for name, entry in self.manifest["files"].items():
                digest = hashlib.sha256((self.dir / name).read_bytes()).hexdigest()
                if digest != entry["sha256"]:
                    raise SystemExit(f"{self.dir / name}: SHA-256 differs from the manifest's "
                                     "(damaged or replaced)")
        vocab = json.loads((self.dir / self.manifest["vocab"]).read_text(encoding="utf-8"))
        self.chars: list[str] = vocab["chars"]
        self.index = {c: i for i, c in enumerate(self.chars)}
        self.prime: str = vocab["prime"]
        self.limits = self.manifest["sample"]
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(self.dir / self.manifest["model"]), opts,
                                            providers=["CPUExecutionProvider"])

    def sample(self, prime: str | None = None, length: int | None = None,
               temperature: float | None = None, seed: int | None = None,
               top_k: int | None = None, top_p: float | None = None) -> str:
        """``prime`` and ``length`` characters drawn after it (``None``: the defaults of
        ``rnnkit charrnn sample``).  ``temperature`` 0 is greedy; ``top_k`` / ``top_p``
        restrict the draws to the most likely characters.  A value out of bounds raises
        ``ValueError`` naming it."""
        lim = self.limits
        prime = self.prime if prime is None else prime
        length = lim["length"] if length is None else length
        temperature = lim["temperature"] if temperature is None else temperature
        if not prime:
            raise ValueError("--prime must contain at least one character")
        missing = sorted({c for c in prime if c not in self.index})
        if missing:
            raise ValueError(f"--prime has characters the model never saw: {missing!r}")
        if not 0 <= length <= lim["max_length"]:
            raise ValueError(f"--length must be in [0, {lim['max_length']}], received {length}")
        if not (math.isfinite(temperature) and (temperature == 0 or lim["min_temperature"]
                                                <= temperature <= lim["max_temperature"])):
            raise ValueError(f"--temperature must be 0 (greedy) or in [{lim['min_temperature']}"
                             f", {lim['max_temperature']}], received {temperature}")
        if seed is not None and not 0 <= seed <= lim["max_seed"]:
            raise ValueError(f"--seed must be in [0, {lim['max_seed']}], received {seed}")
        if top_k is not None and not 1 <= top_k <= lim["max_top_k"]:
            raise ValueError(f"--top-k must be in [1, {lim['max_top_k']}], received {top_k}")
        if top_p is not None and not (math.isfinite(top_p)
                                      and lim["min_top_p"] <= top_p <= 1):
            raise ValueError(f"--top-p must be in [{lim['min_top_p']}, 1], received {top_p}")
        feed = {"prime": np.array([self.index[c] for c in prime], np.int64),
                "uniforms": stable_uniforms(seed, length),
                "temperature": np.array(temperature, np.float32),
                "top_k": np.array(top_k or 0, np.int64),
                "top_p": np.array(1.0 if top_p is None else top_p, np.float32)}
        ids = self.session.run(["sample_ids"], feed)[0]
        return prime + "".join(self.chars[int(i)] for i in ids)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out_dir", help="directory written by 'rnnkit charrnn export'")
    p.add_argument("--prime", default=None, help="start text (unset: the run's prime)")
    p.add_argument("--length", type=int, default=None,
                   help="characters to generate (unset: 500, as 'charrnn sample')")
    p.add_argument("--temperature", type=float, default=None,
                   help="softmax temperature (0: greedy; unset: 0.8, as 'charrnn sample')")
    p.add_argument("--seed", type=int, default=None, help="random seed (unset: a fresh draw)")
    p.add_argument("--top-k", type=int, default=None,
                   help="sample among the k most likely characters only (unset: all)")
    p.add_argument("--top-p", type=float, default=None,
                   help="nucleus sampling: among the fewest most likely characters whose "
                        "probabilities sum to p (unset: all)")
    args = p.parse_args(argv)
    try:
        sampler = Sampler(args.out_dir)
    except OSError as e:
        raise SystemExit(f"{args.out_dir}: {e}") from None
    try:
        text = sampler.sample(args.prime, args.length, args.temperature, args.seed,
                              args.top_k, args.top_p)
    except ValueError as e:
        p.error(str(e))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
