import pathlib

import numpy as np
import pytest
import torch

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


def load_fixture(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / name) as f:
        return {k: f[k] for k in f.files}


def tf_vars(fx: dict) -> dict[str, np.ndarray]:
    return {k[4:]: v for k, v in fx.items() if k.startswith("var:")}


def leaves(fx: dict, prefix: str) -> list[np.ndarray]:
    keys = sorted((k for k in fx if k.startswith(prefix)), key=lambda k: int(k.split(":")[1]))
    return [fx[k] for k in keys]
