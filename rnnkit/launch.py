"""The ``rnnkit`` executable's first code: it imports the command line (and PyTorch with
it) under a Ctrl-C guard, so an interrupt at any instant is one line and exit status 130."""

import os
import sys


def main() -> None:
    """Import :mod:`rnnkit.apps.cli` and run it; Ctrl-C during the imports (nothing has been
    written yet) exits 130 without the interpreter's teardown of half-imported modules."""
    try:
        from rnnkit.apps.cli import entry
    except KeyboardInterrupt:
        print("rnnkit: interrupted; nothing was written", file=sys.stderr, flush=True)
        os._exit(130)
    entry()
