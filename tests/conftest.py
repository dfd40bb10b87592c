"""Shared pytest setup: deterministic seeds, small thread counts, the reference fixtures (tests/fixtures)."""
from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Annotation excerpts, official state-dict manifests and real clips, copied into the repository with
# their provenance (tests/fixtures/PROVENANCE.md): a plain clone runs every test.
FIXTURES = REPO / "tests" / "fixtures"


@pytest.fixture(autouse=True)
def _pan_loggers_enabled():
    """Some third-party code calls logging.config.dictConfig, which disables every existing logger;
    keep the library's loggers on so tests can read their warnings (caplog)."""
    for name, logger in logging.root.manager.loggerDict.items():
        if name.startswith(("pan_lib", "data_prep")) and isinstance(logger, logging.Logger):
            logger.disabled = False
    yield


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
    """The reference material (formats/, reference/, realclips/) the tests read."""
    return FIXTURES


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO
