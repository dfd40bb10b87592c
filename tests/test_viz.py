"""PA/flow pictures: PA maps equal the official-style maths, one colour scale per row, figures,
animation, the widget explorer, and frames from real (generated) video files."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pan_lib.checkpoints import save_official_checkpoint
from pan_lib.data.video import VideoReadError, write_video
from pan_lib.models import build_model
from pan_lib.modules.pa import pa_reference_loop
from pan_lib.motion import available_flow_estimators
from pan_lib.viz import (MotionExplorer, animation_html, colourise, compute_motion_cues, flow_to_rgb, learned_pa,
                         motion_figure, pa_animation, pa_maps, pair_figure, random_pa)
from pan_lib.viz.figures import figure_to_png, pick_pairs, speed_figure
from pan_lib.viz.maps import normalise_frames
from pan_lib.viz.video import dataset_videos, load_segments


def moving_square(num_frames: int = 7, size: int = 48, step: int = 4) -> np.ndarray:
    frames = np.full((num_frames, size, size, 3), 30, np.uint8)
    for i in range(num_frames):
        frames[i, 16:32, 4 + step * i:20 + step * i] = (230, 190, 50)
    return frames


def test_pa_maps_match_official_loop_pair_by_pair():
    frames = moving_square(num_frames=7)  # 6 pairs: groups of 4 frames overlap, the last one is padded
    pa = random_pa(seed=1)
    maps = pa_maps(frames, pa)
    assert maps.shape == (6, 48, 48) and maps.dtype == np.float32
    x = normalise_frames(frames)
    w, b = pa.shallow_conv.weight, pa.shallow_conv.bias
    for i in range(6):
        ref = pa_reference_loop(x[i:i + 2], w, b, n_length=2)[0, 0]  # (1, 1, H, W) -> (H, W)
        np.testing.assert_allclose(maps[i], ref.detach().numpy(), rtol=1e-4, atol=1e-6)


def test_pa_lights_up_moving_edges_only():
    maps = pa_maps(moving_square(), random_pa(seed=0))
    background, edge = maps[0, 40, 40], maps[0, 24, 5]  # far from the square / its trailing edge
    assert edge > 100 * max(background, 1e-7)


def test_random_pa_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b, c = random_pa(0), random_pa(0), random_pa(1)
    after = torch.rand(1)
    assert torch.equal(a.shallow_conv.weight, b.shallow_conv.weight)
    assert not torch.equal(a.shallow_conv.weight, c.shallow_conv.weight)
    assert torch.equal(before, after)


def test_colourise_uses_one_scale_for_the_row():
    maps = np.stack([np.full((4, 4), 1.0), np.full((4, 4), 2.0)]).astype(np.float32)
    images = colourise(maps, "gray", vmax=2.0)
    assert images.shape == (2, 4, 4, 3) and images.dtype == np.uint8
    assert images[0].mean() < images[1].mean() and images[1].max() == 255
    with pytest.raises(ValueError, match="colormap"):
        colourise(maps, "no-such-map")


def test_flow_to_rgb_shares_normalisation():
    flows = np.zeros((2, 4, 4, 2), np.float32)
    flows[0, ..., 0], flows[1, ..., 0] = 1.0, 4.0  # same direction, 4x the speed
    images = flow_to_rgb(flows).astype(int)
    saturation = 255 - images.min(axis=-1)  # white = no motion
    assert saturation[1].mean() > 2 * saturation[0].mean()


@pytest.fixture(scope="module")
def cues():
    frames = moving_square()
    return compute_motion_cues(frames, {"PA (random init)": random_pa(0)},
                               available_flow_estimators(["farneback", "dis_medium"]))


def test_compute_motion_cues_rows(cues):
    assert [r.name for r in cues.rows] == ["PA (random init)", "Farneback", "DIS medium"]
    assert cues.rows[0].values.shape == (6, 48, 48) and cues.rows[1].values.shape == (6, 48, 48, 2)
    assert all(r.seconds_per_pair > 0 for r in cues.rows)
    # the square moves 4 px right per frame: DIS sees it inside the square
    assert cues.rows[2].values[0, 20:28, 10:16, 0].mean() > 2.0


def test_static_figures(cues):
    fig = motion_figure(cues, max_pairs=3, flow_style="magnitude")
    image_axes = [ax for ax in fig.axes if ax.images]
    assert len(image_axes) == (1 + len(cues.rows)) * 3
    png = figure_to_png(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="out of range"):
        motion_figure(cues, pairs=[99])
    fig = pair_figure(cues, 2)
    assert len([ax for ax in fig.axes if ax.images]) == 2 + len(cues.rows)
    assert pick_pairs(24, 4) == [0, 8, 15, 23] and pick_pairs(3, 4) == [0, 1, 2]


def test_animation_is_self_contained_jshtml():
    frames = moving_square(num_frames=4)
    html = animation_html(pa_animation(frames, pa_maps(frames, random_pa(0)), fps=2))
    assert "<img" in html and html.count("data:image/png;base64") == 3  # one embedded PNG per pair
    with pytest.raises(ValueError, match="PA maps"):
        pa_animation(frames, np.zeros((2, 48, 48), np.float32))


def test_speed_figure_log_scale():
    rows = [{"method": "PA", "kind": "PA", "pairs_per_s": 1000.0}, {"method": "TV-L1", "kind": "flow", "pairs_per_s": 1.0}]
    fig = speed_figure(rows)
    assert fig.axes[0].get_xscale() == "log" and len(fig.axes[0].patches) == 2


def test_explorer_redraws_on_every_control():
    segments_a = moving_square(num_frames=8).reshape(2, 4, 48, 48, 3)  # (S, m, H, W, 3)
    segments_b = moving_square(num_frames=15, step=2)[:12].reshape(3, 4, 48, 48, 3)
    calls = []

    def lazy_b():
        calls.append(1)
        return segments_b

    ex = MotionExplorer({"a": segments_a, "b": lazy_b}, pa_modules={"PA": random_pa(0)}, flow_estimators={})
    assert calls == [] and ex.image.value[:4] == b"\x89PNG" and ex.status.value == ""
    first = ex.image.value
    ex.pair.value = 2
    assert ex.image.value != first
    second = ex.image.value
    ex.cmap.value = "gray"
    assert ex.image.value != second
    ex.video.value = "b"
    assert calls == [1] and ex.segment.max == 2 and ex.pair.max == 2 and ex.play.max == 2
    ex.segment.value = 2
    assert ("b", 2) in ex._cues
    assert len([ax for ax in ex.static_figure().axes if ax.images]) == 2 * 3
    with pytest.raises(ValueError, match="colormap"):
        MotionExplorer({"a": segments_a}, cmap="nope")
    with pytest.raises(ValueError, match=r"\(S, F>=2, H, W, 3\)"):
        MotionExplorer({"a": np.zeros((4, 8, 8, 3), np.uint8)})


def test_load_segments_from_a_real_video_and_garbage(tmp_path):
    path = write_video(tmp_path / "clip.mp4", moving_square(num_frames=20, size=64, step=2), codec="mpeg4")
    segs = load_segments(path, num_segments=3, frames_per_segment=4, size=32)
    assert segs.shape == (3, 4, 32, 32, 3) and segs.dtype == np.uint8
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(VideoReadError, match="garbage.mp4"):
        load_segments(garbage)


def test_dataset_videos_one_per_class_from_the_embedded_dataset(tmp_path):
    videos = dataset_videos("embedded", tmp_path / "emb", limit=3, small=True)  # generated (tiny) on first use
    assert len(videos) == 3 and len({name.split(" (")[0] for name in videos}) == 3
    first = next(iter(videos.values()))
    assert first.is_file() and load_segments(first, num_segments=2, size=32).shape == (2, 4, 32, 32, 3)
    again = dataset_videos("embedded", tmp_path / "emb", limit=3, small=True)  # found, not regenerated
    assert again == videos


def test_learned_pa_from_checkpoints(tmp_path):
    torch.manual_seed(5)
    lite = build_model("Lite", 3, num_segments=2, backbone="resnet_tiny", dropout=0.0)
    with torch.no_grad():
        lite.PA.shallow_conv.weight.mul_(7.0)  # "trained": differs from any fresh init
    path = save_official_checkpoint(lite, tmp_path / "lite.pth.tar", epoch=1, best_prec1=0.0)
    pa = learned_pa(path)
    assert torch.equal(pa.shallow_conv.weight, lite.PA.shallow_conv.weight)
    rgb = save_official_checkpoint(build_model("RGB", 3, num_segments=2, backbone="resnet_tiny", dropout=0.0),
                                   tmp_path / "rgb.pth.tar", epoch=1, best_prec1=0.0)
    with pytest.raises(ValueError, match="without a PA module"):
        learned_pa(rgb)
