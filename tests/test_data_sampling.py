"""segment_offsets / dense_offsets against a literal transcription of the official ops/dataset.py."""
from __future__ import annotations

import numpy as np
import pytest

from pan_lib.data.sampling import clip_frame_indices, dense_offsets, segment_offsets


class _OfficialRNG:
    """np.random.randint-like calls served by a numpy Generator (the official code uses the global RNG)."""

    def __init__(self, seed):
        self.g = np.random.default_rng(seed)

    def randint(self, high, size=None):
        return self.g.integers(high, size=size)


def official_train(nf, T, L, r):  # ops/dataset.py _sample_indices (dense_sample=False)
    average_duration = (nf - L + 1) // T
    if average_duration > 0:
        offsets = np.multiply(list(range(T)), average_duration) + r.randint(average_duration, size=T)
    elif nf > T:
        offsets = np.sort(r.randint(nf - L + 1, size=T))
    else:
        offsets = np.zeros((T,))
    return offsets + 1


def official_val(nf, T, L):  # main.py path: _get_val_indices
    if nf > T + L - 1:
        tick = (nf - L + 1) / float(T)
        offsets = np.array([int(tick / 2.0 + tick * x) for x in range(T)])
    else:
        offsets = np.zeros((T,))
    return offsets + 1


def official_test(nf, T, L, twice):  # _get_test_indices
    tick = (nf - L + 1) / float(T)
    if twice:
        offsets = np.array([int(tick / 2.0 + tick * x) for x in range(T)] + [int(tick * x) for x in range(T)])
    else:
        offsets = np.array([int(tick / 2.0 + tick * x) for x in range(T)])
    return offsets + 1


FRAME_COUNTS = list(range(1, 80)) + [97, 120, 255, 301]


@pytest.mark.parametrize("T,L", [(8, 1), (8, 4), (16, 1), (4, 4), (3, 5)])
def test_train_offsets_match_official(T, L):
    for nf in FRAME_COUNTS:
        ours = segment_offsets(nf, T, L, "train", rng=np.random.default_rng([nf, T, L]))
        if T < nf < L:  # the official code crashes here (randint(<= 0)); we return frame 1
            with pytest.raises(ValueError):
                official_train(nf, T, L, _OfficialRNG(0))
            assert ours.tolist() == [1] * T
            continue
        ref = official_train(nf, T, L, _OfficialRNG([nf, T, L]))
        np.testing.assert_array_equal(ours, ref.astype(np.int64), err_msg=f"nf={nf}")
        assert ours.dtype == np.int64 and ours.shape == (T,)


@pytest.mark.parametrize("T,L", [(8, 1), (8, 4), (16, 1), (4, 4)])
def test_val_and_test_offsets_match_official(T, L):
    for nf in FRAME_COUNTS:
        np.testing.assert_array_equal(segment_offsets(nf, T, L, "val"), official_val(nf, T, L))
        for twice in (False, True):
            np.testing.assert_array_equal(segment_offsets(nf, T, L, "test", twice_sample=twice),
                                          official_test(nf, T, L, twice))


def test_short_video_cases():
    # val collapses clips with nf <= T + L - 1 to one snippet (official quirk 13)
    assert segment_offsets(11, 8, 4, "val").tolist() == [1] * 8
    assert segment_offsets(12, 8, 4, "val").tolist() != [1] * 8
    # test has no guard: a 1-frame PA video yields a start of 0 ...
    assert segment_offsets(1, 8, 4, "test").min() == 0
    # ... which the loader clamps to frame 1 and the last frame repeats
    idx = clip_frame_indices(segment_offsets(1, 8, 4, "test"), 4, 1)
    assert idx.tolist() == [1] * 32


def test_train_is_deterministic_under_seed_and_varies_otherwise():
    a = segment_offsets(100, 8, 4, "train", rng=np.random.default_rng(5))
    b = segment_offsets(100, 8, 4, "train", rng=np.random.default_rng(5))
    c = segment_offsets(100, 8, 4, "train", rng=np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_clip_frame_indices_clamp_like_official_loop():
    def official(offsets, L, nf):
        out = []
        for seg in offsets:
            p = int(seg)
            for _ in range(L):
                out.append(p)
                if p < nf:
                    p += 1
        return out

    for nf in (1, 3, 9, 32, 50):
        offs = segment_offsets(nf, 8, 4, "test", twice_sample=True)
        offs = np.maximum(offs, 1)
        assert clip_frame_indices(offs, 4, nf).tolist() == official(offs, 4, nf)


def test_dense_offsets():
    train = dense_offsets(200, 8, "train", rng=np.random.default_rng(0))
    assert train.shape == (8,) and np.all(np.diff(train) == 8)
    test = dense_offsets(200, 8, "test")
    assert test.shape == (80,)
    starts = test.reshape(10, 8)[:, 0] - 1
    np.testing.assert_array_equal(starts, np.linspace(0, 136, 10, dtype=int))
    short = dense_offsets(20, 8, "test")  # wraps modulo num_frames
    assert short.min() >= 1 and short.max() <= 20


def test_bad_arguments():
    with pytest.raises(ValueError, match="valid: train, val, test"):
        segment_offsets(10, 8, 1, "eval")
    with pytest.raises(ValueError):
        segment_offsets(10, 0, 1, "val")
