"""``python -m rnnkit`` (also what ``torchrun ... -m rnnkit`` runs)."""

import sys

from rnnkit.cli import main

sys.exit(main())
