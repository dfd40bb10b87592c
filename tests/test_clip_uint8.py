"""uint8 clips (VideoClipDataset(output="uint8")) normalised by the engine with transforms.normalize_clip."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pan_lib.data.dataset import VideoClipDataset
from pan_lib.data.lists import VideoRecord
from pan_lib.data.transforms import CLIP_STATS, IMAGENET_MEAN, IMAGENET_STD, build_transform, clip_stats, normalize_clip

RGB_LIKE = ("TSN", "TSM", "RGB", "PA", "Lite")  # ImageNet statistics (Flow / RGBDiff have their own)


def _frames(shape=(8, 56, 70, 3), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize("mode,crops", [("val", 1), ("test", 1), ("test", 3), ("test", 10)])
def test_uint8_then_normalize_clip_equals_the_float_output(mode, crops):
    frames = _frames()
    kw = dict(input_size=48, scale_size=56, test_crops=crops)
    floats = build_transform(mode, **kw)(frames, np.random.default_rng(1))
    raw = build_transform(mode, output="uint8", **kw)(frames, np.random.default_rng(1))
    assert raw.dtype == torch.uint8 and raw.shape == floats.shape
    assert torch.equal(normalize_clip(raw, *clip_stats("RGB")), floats)  # no resize: exactly equal
    batch = torch.stack([raw, raw])  # a batch [B, V*F*3, S, S] normalises the same, stats as tensors too
    mean, std = (torch.tensor(v) for v in CLIP_STATS["Lite"])
    assert torch.equal(normalize_clip(batch, mean, std)[1], floats)


def test_train_uint8_differs_from_float_only_by_rounding():
    frames = _frames((8, 64, 80, 3))
    floats = build_transform("train", input_size=48, scale_size=56)(frames, np.random.default_rng(3))
    raw = build_transform("train", input_size=48, scale_size=56, output="uint8")(frames, np.random.default_rng(3))
    diff = (normalize_clip(raw, IMAGENET_MEAN, IMAGENET_STD) - floats).abs().max()
    assert 0 < diff <= 1.5 / 255 / min(IMAGENET_STD) + 1e-6  # same crop and flip; the uint8 resize is within a level


def test_stats_table_and_errors():
    assert set(RGB_LIKE) <= set(CLIP_STATS) and all(CLIP_STATS[m] == (IMAGENET_MEAN, IMAGENET_STD) for m in RGB_LIKE)
    assert clip_stats("TSM") == (IMAGENET_MEAN, IMAGENET_STD)
    with pytest.raises(ValueError, match="known"):
        clip_stats("nope")
    with pytest.raises(ValueError, match="multiple"):
        normalize_clip(torch.zeros(1, 4, 2, 2, dtype=torch.uint8), IMAGENET_MEAN, IMAGENET_STD)
    with pytest.raises(ValueError, match="valid: float, uint8"):
        build_transform("val", output="half")


def test_dataset_uint8_output_and_bad_input_zeros(tmp_path):
    for i in range(3):
        np.save(tmp_path / f"v{i}.npy", _frames((12, 56, 56, 3), seed=i))
    records = [VideoRecord(f"v{i}", 12, i) for i in range(3)] + [VideoRecord("missing", 12, 0)]
    kw = dict(num_segments=4, new_length=1, mode="val", source="decoded", input_size=48, scale_size=56,
              report_dir=tmp_path / "bad")
    floats = VideoClipDataset(records, tmp_path, **kw)
    raw = VideoClipDataset(records, tmp_path, output="uint8", **kw)
    assert floats.output == "float" and raw.output == "uint8"
    assert raw[1][0].dtype == torch.uint8 and torch.equal(normalize_clip(raw[1][0], *clip_stats("RGB")), floats[1][0])
    copied = floats.with_output("uint8")
    assert copied.output == "uint8" and floats.output == "float" and torch.equal(copied[2][0], raw[2][0])
    zeros, label, index = raw[3]  # unreadable: zeros in the output's own dtype, row kept
    assert zeros.dtype == torch.uint8 and zeros.shape == raw.clip_shape and not zeros.any() and index == 3
