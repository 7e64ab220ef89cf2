"""``python -m rnnkit`` (also what ``torchrun ... -m rnnkit`` runs)."""

from rnnkit.launch import main

main()
