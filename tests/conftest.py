"""Shared pytest setup: deterministic seeds, small thread counts, the shared/ reference folder."""
from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# ../shared beside the checkout (developers and CI); tests that need it skip with a reason otherwise.
SHARED = Path(os.environ.get("PAN_SHARED", REPO.parent / "shared"))


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    try:
        import numpy as np

        np.random.seed(0)
    except ImportError:
        pass
    try:
        import torch

        torch.manual_seed(0)
    except ImportError:
        pass
    yield


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"reference folder {SHARED} not found (set PAN_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO
