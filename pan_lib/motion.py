"""Optical-flow baselines to compare PA against: OpenCV Farneback, TV-L1, DIS and torchvision RAFT.

Every estimator has the same interface::

    frames (F, H, W, 3) uint8 RGB
        |  prepare()          once per clip: grey uint8 for OpenCV, [-1, 1] tensor for RAFT
        v
    prepared                  (what a loader would hand over)
        |  flow_prepared()    the method itself: one flow field per consecutive frame pair
        v
    flow (F-1, H, W, 2) float32, (dx, dy) in pixels, from frame i to frame i+1

`estimate_flow(frames, method)` chains the two; the speed benchmark times `flow_prepared` only, just
as it times PA on an already normalised tensor.

RAFT weights: torchvision's `Raft_Small_Weights.DEFAULT` / `Raft_Large_Weights.DEFAULT` are used when
they are in the torch hub cache (or when `weights="default"` may download them), or a local state-dict
path. `weights="random"` builds an untrained RAFT: it is only good for measuring speed, and every
estimator built that way says so in `label` (`trained=False`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from pan_lib.checkpoints import read_checkpoint

log = logging.getLogger(__name__)

RANDOM_WEIGHTS_NOTE = "random weights: speed only, not flow quality"

# name -> one-line description (also the row label of the speed table)
FLOW_METHODS: dict[str, str] = {
    "farneback": "OpenCV Farneback (3 levels, window 15)",
    "tvl1": "OpenCV TV-L1 (cv2.optflow, defaults)",
    "dis_ultrafast": "OpenCV DIS, ultrafast preset",
    "dis_fast": "OpenCV DIS, fast preset",
    "dis_medium": "OpenCV DIS, medium preset",
    "raft_small": "torchvision RAFT small (12 updates)",
    "raft_large": "torchvision RAFT large (12 updates)",
}

# short names for figure rows and table cells
SHORT_NAMES: dict[str, str] = {
    "farneback": "Farneback", "tvl1": "TV-L1", "dis_ultrafast": "DIS ultrafast", "dis_fast": "DIS fast",
    "dis_medium": "DIS medium", "raft_small": "RAFT small", "raft_large": "RAFT large",
}

RAFT_WEIGHTS_CHOICES = ("auto", "default", "random")
RAFT_MIN_SIDE = 128  # smallest side torchvision RAFT accepts (feature maps >= 16 after /8)


class RaftWeightsUnavailable(RuntimeError):
    """Trained RAFT weights are neither cached nor given as a file (and downloading is not allowed)."""


def parse_methods(value: str | list[str] | tuple[str, ...]) -> list[str]:
    """["tvl1", "dis_medium"] | "tvl1,dis_medium" | '["tvl1", "dis_medium"]' (papermill -p) -> checked names."""
    if isinstance(value, str):
        for ch in "[]'\"":
            value = value.replace(ch, " ")
        value = value.replace(",", " ").split()
    methods = [str(m) for m in value]
    unknown = [m for m in methods if m not in FLOW_METHODS]
    if unknown:
        raise ValueError(f"unknown optical-flow method(s) {unknown}; valid: {', '.join(FLOW_METHODS)}")
    return methods


def _check_method(method: str) -> None:
    if method not in FLOW_METHODS:
        raise ValueError(f"unknown optical-flow method {method!r}; valid: {', '.join(FLOW_METHODS)}")


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected frames (F, H, W, 3) uint8 RGB, got shape {frames.shape} dtype {frames.dtype}")
    if frames.shape[0] < 2:
        raise ValueError(f"need at least 2 frames for optical flow, got {frames.shape[0]}")
    return frames


@dataclass
class FlowEstimator:
    """One optical-flow method, built once (OpenCV objects and RAFT networks are reused across calls)."""

    method: str
    prepare: Callable[[np.ndarray], Any]
    flow_prepared: Callable[[Any], np.ndarray]
    trained: bool | None = None  # None: classical method (nothing to train); False: random RAFT weights
    weights: str = ""

    @property
    def short_name(self) -> str:
        return SHORT_NAMES[self.method]

    @property
    def label(self) -> str:
        """Human-readable name; untrained networks carry the 'speed only' warning."""
        text = FLOW_METHODS[self.method]
        if self.trained is False:
            text += f" [{RANDOM_WEIGHTS_NOTE}]"
        return text

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """(F, H, W, 3) uint8 RGB -> (F-1, H, W, 2) float32 flow between consecutive frames."""
        return self.flow_prepared(self.prepare(_check_frames(frames)))


# ----------------------------------------------------------------------------------------------
# OpenCV methods (work on grey uint8 frames)

def _to_grey(frames: np.ndarray) -> list[np.ndarray]:
    import cv2

    return [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]


def _opencv_pairs(compute: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[[list], np.ndarray]:
    def flow_prepared(grey: list[np.ndarray]) -> np.ndarray:
        # F grey frames (H, W) -> (F-1, H, W, 2)
        return np.stack([compute(a, b) for a, b in zip(grey[:-1], grey[1:])]).astype(np.float32, copy=False)

    return flow_prepared


def _opencv_estimator(method: str) -> FlowEstimator:
    import cv2

    if method == "farneback":
        def compute(a, b):
            return cv2.calcOpticalFlowFarneback(a, b, None, pyr_scale=0.5, levels=3, winsize=15,
                                                iterations=3, poly_n=5, poly_sigma=1.2, flags=0)
    elif method == "tvl1":
        if not hasattr(cv2, "optflow"):
            raise ImportError("TV-L1 needs cv2.optflow from opencv-contrib-python(-headless); "
                              "the installed OpenCV has no contrib modules")
        tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()

        def compute(a, b):
            return tvl1.calc(a, b, None)
    else:  # DIS presets
        preset = {"dis_ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
                  "dis_fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                  "dis_medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}[method]
        dis = cv2.DISOpticalFlow_create(preset)

        def compute(a, b):
            return dis.calc(a, b, None)
    return FlowEstimator(method, _to_grey, _opencv_pairs(compute))


# ----------------------------------------------------------------------------------------------
# torchvision RAFT

def _raft_weights_enum(size: str):
    from torchvision.models.optical_flow import Raft_Large_Weights, Raft_Small_Weights

    return (Raft_Small_Weights if size == "small" else Raft_Large_Weights).DEFAULT


def raft_weights_cached(size: str = "small") -> Path | None:
    """Path of torchvision's trained RAFT weights in the torch hub cache, or None when absent."""
    url = _raft_weights_enum(size).url
    path = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    return path if path.is_file() else None


def load_raft(size: str = "small", weights: str | Path = "auto", device: str = "cpu"):
    """Build torchvision RAFT small/large and say whether it is trained.

    weights:
      "auto"    torchvision's DEFAULT weights if they are in the torch hub cache, else RaftWeightsUnavailable
      "default" torchvision's DEFAULT weights (downloads them when not cached; needs network)
      "random"  untrained network: speed measurements only
      a path    a state dict saved from torchvision's RAFT (e.g. the cached .pth copied elsewhere)
    Returns (model in eval mode on device, trained: bool, description of the weights).
    """
    from torchvision.models.optical_flow import raft_large, raft_small

    if size not in ("small", "large"):
        raise ValueError(f"unknown RAFT size {size!r}; valid: small, large")
    build = raft_small if size == "small" else raft_large
    if weights == "random":
        model, trained, desc = build(weights=None), False, RANDOM_WEIGHTS_NOTE
    elif weights in ("auto", "default"):
        enum = _raft_weights_enum(size)
        if weights == "auto" and raft_weights_cached(size) is None:
            cache = Path(torch.hub.get_dir()) / "checkpoints"
            raise RaftWeightsUnavailable(
                f"trained RAFT-{size} weights are not in {cache} (file {enum.url.rsplit('/', 1)[-1]}). "
                f"Download them once with weights='default' on a machine with network, pass a local "
                f"state-dict path, or use weights='random' for speed measurements only")
        model, trained, desc = build(weights=enum, progress=False), True, f"torchvision {enum}"
    else:
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"RAFT weights file {path} not found; valid weights: "
                                    f"{', '.join(RAFT_WEIGHTS_CHOICES)} or a state-dict path")
        model = build(weights=None)
        state = read_checkpoint(path)  # weights_only: unsafe pickles are refused with a clear error
        model.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
        trained, desc = True, str(path)
    return model.eval().to(device), trained, desc


def _raft_estimator(method: str, weights: str | Path, device: str, num_flow_updates: int,
                    batch_pairs: int) -> FlowEstimator:
    model, trained, desc = load_raft(method.split("_")[1], weights, device)

    def prepare(frames: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(frames).to(device).permute(0, 3, 1, 2).float()  # (F, H, W, 3) -> (F, 3, H, W)
        return x / 127.5 - 1.0  # RAFT expects [-1, 1]

    @torch.inference_mode()
    def flow_prepared(x: torch.Tensor) -> np.ndarray:
        h, w = x.shape[-2:]
        # RAFT needs sides divisible by 8 and at least 128 (its correlation pyramid): small frames are
        # upsampled for the network and the flow is scaled back to the frame's pixels.
        up_h, up_w = max(h, RAFT_MIN_SIDE), max(w, RAFT_MIN_SIDE)
        if (up_h, up_w) != (h, w):
            x = F.interpolate(x, size=(up_h, up_w), mode="bilinear", align_corners=False)
        pad_h, pad_w = (-up_h) % 8, (-up_w) % 8
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        out = []
        for start in range(0, x.shape[0] - 1, batch_pairs):
            stop = min(start + batch_pairs, x.shape[0] - 1)
            flows = model(x[start:stop], x[start + 1:stop + 1], num_flow_updates=num_flow_updates)
            out.append(flows[-1][..., :up_h, :up_w])  # last refinement, (P, 2, up_h, up_w)
        flow = torch.cat(out)
        if (up_h, up_w) != (h, w):
            flow = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False)
            flow = flow * flow.new_tensor([w / up_w, h / up_h]).view(1, 2, 1, 1)  # back to frame pixels
        # (F-1, 2, H, W) -> (F-1, H, W, 2)
        return flow.permute(0, 2, 3, 1).float().cpu().numpy()

    return FlowEstimator(method, prepare, flow_prepared, trained=trained, weights=desc)


# ----------------------------------------------------------------------------------------------

def make_flow_estimator(method: str, *, device: str = "cpu", raft_weights: str | Path = "auto",
                        num_flow_updates: int = 12, batch_pairs: int = 4) -> FlowEstimator:
    """Build one estimator; see FLOW_METHODS for the names. `raft_weights` only matters for RAFT."""
    _check_method(method)
    if method.startswith("raft"):
        return _raft_estimator(method, raft_weights, device, num_flow_updates, batch_pairs)
    return _opencv_estimator(method)


def available_flow_estimators(methods: list[str] | tuple[str, ...] = tuple(FLOW_METHODS), *,
                              device: str = "cpu", raft_weights: str | Path = "auto",
                              allow_random_raft: bool = False) -> dict[str, FlowEstimator]:
    """Estimators that can run here, keyed by short name ("TV-L1", "RAFT small", ...). RAFT without
    trained weights is skipped (with a log line) unless `allow_random_raft`, in which case it is built
    with random weights and labelled as such."""
    out: dict[str, FlowEstimator] = {}
    for method in methods:
        try:
            out[SHORT_NAMES[method]] = make_flow_estimator(method, device=device, raft_weights=raft_weights)
        except RaftWeightsUnavailable as err:
            if allow_random_raft:
                out[SHORT_NAMES[method]] = make_flow_estimator(method, device=device, raft_weights="random")
            else:
                log.info("skipping %s: %s", method, err)
    return out


def estimate_flow(frames: np.ndarray, method: str = "dis_medium", **kwargs: Any) -> np.ndarray:
    """Flow between consecutive frames: (F, H, W, 3) uint8 RGB -> (F-1, H, W, 2) float32 pixels."""
    return make_flow_estimator(method, **kwargs)(frames)


def flow_magnitude(flow: np.ndarray) -> np.ndarray:
    """(..., 2) flow -> (...) Euclidean length in pixels."""
    return np.linalg.norm(np.asarray(flow, dtype=np.float32), axis=-1)


def set_opencv_threads(n: int) -> None:
    """Give OpenCV the same thread budget as torch (its parallel loops default to all cores)."""
    import cv2

    cv2.setNumThreads(int(n))
