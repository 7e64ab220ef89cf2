"""``rnnkit bench``: run the speed and memory benchmarks of a source checkout and print their
tables."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

__all__ = ["main"]

SCRIPTS = ("rnn_speed.py", "decode_speed.py", "rnn_memory.py")


def _bench_dir() -> Path:
    here = Path(__file__).resolve().parents[2] / "benchmarks"
    if not (here / SCRIPTS[0]).is_file():
        raise ValueError("rnnkit bench runs the scripts in the source checkout's benchmarks/ "
                         f"directory, which was not found at {here}")
    return here


def main(args: argparse.Namespace) -> int:
    folder = _bench_dir()
    extra = ["--quick"] if args.quick else []
    if args.repeat is not None:
        extra += ["--repeat", str(args.repeat)]
    if args.tf_python:
        extra += ["--tf-python", args.tf_python]
    status = 0
    for script in SCRIPTS:
        print(f"## {script}", flush=True)
        if script == "rnn_memory.py":  # measures bytes, not time
            flags = ["--quick"] if args.quick else []
        else:
            flags = extra + (["--no-compile"] if args.no_compile and script == "rnn_speed.py"
                             else [])
        status |= subprocess.call([sys.executable, str(folder / script), *flags], cwd=folder)
    return status
