"""Shared pytest setup: deterministic seeds, small thread counts, the reference fixtures (tests/fixtures)."""
from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import pytest

from pan_lib.data.video import write_video

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


@pytest.fixture(scope="session")
def clip_bytes(tmp_path_factory) -> bytes:
    """A small real MPEG-4 clip (20 frames, 32 px) to stand in for dataset videos."""
    frames = np.stack([np.full((32, 32, 3), 9 * i, np.uint8) for i in range(20)])
    return write_video(tmp_path_factory.mktemp("clip") / "c.mp4", frames, codec="mpeg4").read_bytes()


def put_file(path: Path, data: bytes) -> None:
    """Write `data` at `path`, making its folders (laying out a fake download)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
