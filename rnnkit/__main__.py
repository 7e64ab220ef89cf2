"""``python -m rnnkit`` (also what ``torchrun ... -m rnnkit`` runs)."""

import os
import sys

try:
    from rnnkit.apps.cli import entry
except KeyboardInterrupt:  # Ctrl-C while the imports run: nothing was written
    print("rnnkit: interrupted; nothing was written", file=sys.stderr, flush=True)
    os._exit(130)  # no teardown of half-imported extension modules

entry()
