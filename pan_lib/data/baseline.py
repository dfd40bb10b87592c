"""Order-free baselines on the embedded dataset: how far a single frame or an unordered bag of frames
gets, against an order-aware control of the same capacity (``python -m data_prep baseline``).

Every class of the embedded dataset has a time-reversal partner (``pan_lib.data.synthetic``), so
order-free features should stay at chance (0.5) within each pair.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from pan_lib.data.lists import read_list_file
from pan_lib.data.prepared import PreparedDataset, find_prepared
from pan_lib.data.synthetic import class_pairs
from pan_lib.data.video import read_video_frames


def _video_features(path: str, num_frames: int, frames: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(colour features [F, size*size*3], grey 8x8 features [F, 64]) of ``frames`` evenly spaced frames."""
    import cv2

    idx = np.linspace(0, num_frames - 1, frames).round().astype(int)
    clip = read_video_frames(path, idx)  # (F, H, W, 3)
    colour = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in clip])
    grey = np.stack([cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (8, 8), interpolation=cv2.INTER_AREA)
                     for f in clip])
    return colour.reshape(frames, -1).astype(np.float32) / 255.0, grey.reshape(frames, -1).astype(np.float32) / 255.0


def _fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, num_classes: int,
                 weight_decay: float, seed: int) -> np.ndarray:
    """Multinomial logistic regression (standardised features, L-BFGS); returns test logits."""
    torch.manual_seed(seed)
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    xt = torch.from_numpy((x_train - mu) / sd).float()
    xv = torch.from_numpy((x_test - mu) / sd).float()
    yt = torch.from_numpy(y_train).long()
    model = torch.nn.Linear(xt.shape[1], num_classes)
    opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=300, history_size=20,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xt), yt) + weight_decay * model.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return model(xv).numpy()


def bag_of_frames_baseline(prepared: PreparedDataset | str | Path, *, frames: int = 8, feature_size: int = 16, weight_decay: float = 1e-3,
                           seed: int = 0, split: str = "val") -> dict[str, Any]:
    """How far order-free views of a video get, against an order-aware control of the same capacity.

    Three linear classifiers trained on the train list, scored on ``split``:

    * ``single_frame``: per-frame colour thumbnails (``feature_size``^2 x 3); a video is scored by its
      middle sampled frame;
    * ``bag_of_frames``: mean, std, min and max of the thumbnails over the frames (order-invariant);
    * ``ordered_control``: the antisymmetric lag-1 correlation of 8x8 grey frames,
      ``mean_t(f_t f_{t+1}^T - f_{t+1} f_t^T)`` — linear features that see temporal order.

    Reported: 12-/16-way accuracy and, for each time-reversal pair, the accuracy of choosing the right
    class of the pair (chance 0.5) on that pair's videos.
    """
    if not isinstance(prepared, PreparedDataset):
        prepared = find_prepared("embedded", prepared, source="video")
    gen = prepared.manifest.get("options", {}).get("generator", {})
    names = prepared.classes
    pairs = class_pairs(gen.get("classes", "default"))

    def load(split_name: str):
        recs = read_list_file(prepared.list_for(split_name), "pan")
        feats = [_video_features(str(prepared.data_dir / r.path), r.num_frames, frames, feature_size) for r in recs]
        return feats, np.array([r.label for r in recs])

    train, y_train = load("train")
    test, y_test = load(split)

    def bag(f):
        return np.concatenate([f.mean(0), f.std(0), f.min(0), f.max(0)])

    def ordered(g):
        g = g - g.mean(0, keepdims=True)
        c = (g[:-1, :, None] * g[1:, None, :]).mean(0)  # (64, 64) lag-1 cross-correlation
        a = c - c.T
        return a[np.triu_indices(a.shape[0], 1)]

    results: dict[str, Any] = {"classes": len(names), "train_videos": len(y_train), "test_videos": len(y_test),
                               "split": split, "frames_per_video": frames}
    mid = frames // 2
    variants = {
        "single_frame": (np.concatenate([c for c, _ in train]), np.repeat(y_train, frames),
                         np.stack([c[mid] for c, _ in test])),
        "bag_of_frames": (np.stack([bag(c) for c, _ in train]), y_train, np.stack([bag(c) for c, _ in test])),
        "ordered_control": (np.stack([ordered(g) for _, g in train]), y_train,
                            np.stack([ordered(g) for _, g in test])),
    }
    for name, (xt, yt, xv) in variants.items():
        logits = _fit_predict(xt, yt, xv, len(names), weight_decay, seed)
        row = {"accuracy": float((logits.argmax(1) == y_test).mean()), "pairs": {}}
        for a, b in pairs:
            sel = np.isin(y_test, [a, b])
            choice = np.where(logits[sel, a] >= logits[sel, b], a, b)
            row["pairs"][f"{names[a]} vs {names[b]}"] = float((choice == y_test[sel]).mean())
        row["pair_accuracy_mean"] = float(np.mean(list(row["pairs"].values())))
        results[name] = row
    return results
