"""Optical-flow baselines: every method recovers a known motion; RAFT loading is honest about weights."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pan_lib import motion
from pan_lib.motion import (FLOW_METHODS, RANDOM_WEIGHTS_NOTE, RaftWeightsUnavailable, available_flow_estimators,
                            estimate_flow, flow_magnitude, load_raft, make_flow_estimator)


def translating_texture(num_frames: int = 3, size: int = 64, dx: int = 2, seed: int = 0) -> np.ndarray:
    """Frames of a smooth random texture whose content moves `dx` pixels right per frame."""
    import cv2

    rng = np.random.default_rng(seed)
    big = cv2.GaussianBlur(rng.integers(0, 256, (size + 16, size + 16 + dx * num_frames, 3), dtype=np.uint8), (0, 0), 1.5)
    start = dx * num_frames
    return np.stack([big[8:8 + size, start - dx * i: start - dx * i + size] for i in range(num_frames)])


@pytest.mark.parametrize("method", ["farneback", "tvl1", "dis_ultrafast", "dis_medium"])
def test_opencv_methods_recover_translation(method):
    frames = translating_texture(dx=2)
    flow = estimate_flow(frames, method)
    assert flow.shape == (2, 64, 64, 2) and flow.dtype == np.float32
    interior = flow[:, 12:-12, 12:-12]  # borders see content entering the frame
    np.testing.assert_allclose(interior[..., 0].mean(), 2.0, atol=0.25)
    np.testing.assert_allclose(interior[..., 1].mean(), 0.0, atol=0.25)


def test_flow_magnitude():
    flow = np.zeros((1, 2, 2, 2), np.float32)
    flow[..., 0], flow[..., 1] = 3.0, 4.0
    np.testing.assert_allclose(flow_magnitude(flow), 5.0)


def test_random_raft_is_labelled_and_handles_small_frames():
    est = make_flow_estimator("raft_small", raft_weights="random")
    assert est.trained is False and RANDOM_WEIGHTS_NOTE in est.label
    frames = translating_texture(num_frames=2, size=40)  # below RAFT's 128-pixel minimum: upsampled inside
    flow = est(frames)
    assert flow.shape == (1, 40, 40, 2) and np.isfinite(flow).all()


def test_raft_auto_without_cached_weights_raises_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert motion.raft_weights_cached("small") is None
    with pytest.raises(RaftWeightsUnavailable, match="weights='random'"):
        load_raft("small", "auto")
    # the gallery of estimators skips it, or builds it random and labelled when asked to
    assert "RAFT small" not in available_flow_estimators(["dis_fast", "raft_small"])
    both = available_flow_estimators(["dis_fast", "raft_small"], allow_random_raft=True)
    assert both["RAFT small"].trained is False and both["DIS fast"].trained is None


def test_raft_from_state_dict_path(tmp_path):
    from torchvision.models.optical_flow import raft_small

    torch.manual_seed(3)
    reference = raft_small(weights=None)
    path = tmp_path / "raft_small.pth"
    torch.save(reference.state_dict(), path)
    model, trained, desc = load_raft("small", path)
    assert trained and desc == str(path)
    for (k, a), (_, b) in zip(reference.state_dict().items(), model.state_dict().items()):
        assert torch.equal(a, b), k


def test_parse_methods_accepts_papermill_strings():
    expected = ["tvl1", "dis_medium"]
    assert motion.parse_methods(expected) == expected
    assert motion.parse_methods("tvl1,dis_medium") == expected
    assert motion.parse_methods('["tvl1", "dis_medium"]') == expected
    with pytest.raises(ValueError, match="unknown optical-flow method"):
        motion.parse_methods("tvl1,horn_schunck")


def test_bad_inputs_give_clear_errors():
    with pytest.raises(ValueError, match="valid: " + ", ".join(FLOW_METHODS)):
        make_flow_estimator("lucas_kanade")
    with pytest.raises(ValueError, match="uint8"):
        estimate_flow(np.zeros((3, 8, 8, 3), np.float32), "dis_fast")
    with pytest.raises(ValueError, match="at least 2 frames"):
        estimate_flow(np.zeros((1, 8, 8, 3), np.uint8), "dis_fast")
    with pytest.raises(FileNotFoundError, match="random"):
        load_raft("small", "/nonexistent/raft.pth")
    with pytest.raises(ValueError, match="small, large"):
        load_raft("medium", "random")
