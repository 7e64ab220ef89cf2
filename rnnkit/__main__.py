"""``python -m rnnkit`` (also what ``torchrun ... -m rnnkit`` runs)."""

import sys

from rnnkit.apps.cli import main

sys.exit(main())
