"""`python -m pan_lib.demo`: top-5 over time on a generated video with a random-init checkpoint saved in
the official layout; unreadable videos and checkpoints give clear errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pan_lib.checkpoints import save_official_checkpoint
from pan_lib.data.video import write_video
from pan_lib.demo import DemoConfig, DemoError, _window_plan, main, plot_timeline, predict_timeline
from pan_lib.models import build_model


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    frames = np.full((40, 64, 64, 3), 40, np.uint8)
    for i in range(40):
        frames[i, 20:40, 2 + i:22 + i] = (220, 180, 60)
    video = write_video(root / "square.mp4", frames, fps=10, codec="mpeg4")
    torch.manual_seed(0)
    model = build_model("Lite", 5, num_segments=4, backbone="resnet_tiny", dropout=0.0)
    ckpt = save_official_checkpoint(model, root / "random_lite.pth.tar", epoch=0, best_prec1=0.0)
    labels = root / "classes.txt"
    labels.write_text("\n".join(f"action {c}" for c in "abcde") + "\n")
    garbage = root / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return {"video": video, "checkpoint": ckpt, "labels": labels, "garbage": garbage, "root": root}


def test_window_plan_covers_the_video():
    assert _window_plan(40, 32, 8) == [(0, 32), (8, 40)]
    assert _window_plan(40, 32, 5) == [(0, 32), (5, 37), (8, 40)]
    assert _window_plan(10, 32, 8) == [(0, 10)]


def test_cli_writes_table_and_plot(demo_files, tmp_path, capsys):
    out, csv = tmp_path / "plot.png", tmp_path / "top5.csv"
    code = main([str(demo_files["video"]), "--checkpoint", str(demo_files["checkpoint"]), "--window", "32",
                 "--stride", "8", "--input-size", "64", "--labels", str(demo_files["labels"]),
                 "--out", str(out), "--csv", str(csv)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "40 frames" in printed and "2 windows of 32 frames" in printed and "action " in printed
    import pandas as pd

    table = pd.read_csv(csv)
    assert list(table["frames"]) == ["0-31", "8-39"]
    assert {f"top{k}" for k in range(1, 6)} <= set(table.columns)
    assert (table[[f"p{k}" for k in range(1, 6)]].diff(axis=1).iloc[:, 1:] <= 0).all().all()  # sorted
    assert out.stat().st_size > 10_000


def test_timeline_probabilities_and_plot(demo_files):
    cfg = DemoConfig(video=str(demo_files["video"]), checkpoint=str(demo_files["checkpoint"]), window=16,
                     stride=8, input_size=64)
    timeline = predict_timeline(cfg)
    assert timeline.probs.shape == (4, 5)  # windows 0-15, 8-23, 16-31, 24-39
    np.testing.assert_allclose(timeline.probs.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(timeline.times, [0.75, 1.55, 2.35, 3.15])  # window centres / 10 fps
    assert timeline.class_names == [f"class {i}" for i in range(5)]
    assert timeline.thumbnails.shape == (4, 64, 64, 3)
    fig = plot_timeline(timeline)
    assert len(fig.axes[-1].lines) == 5


def test_unreadable_video_gives_a_clear_error(demo_files, capsys):
    code = main([str(demo_files["garbage"]), "--checkpoint", str(demo_files["checkpoint"]), "--out", ""])
    err = capsys.readouterr().err
    assert code == 2 and "cannot read video" in err and "garbage.mp4" in err
    code = main([str(demo_files["root"] / "missing.mp4"), "--checkpoint", str(demo_files["checkpoint"]), "--out", ""])
    assert code == 2 and "not found" in capsys.readouterr().err


def test_bad_checkpoint_and_options(demo_files, capsys):
    code = main([str(demo_files["video"]), "--checkpoint", str(demo_files["garbage"]), "--out", ""])
    err = capsys.readouterr().err
    assert code == 2 and "could not be loaded" in err and "garbage.mp4" in err
    with pytest.raises(DemoError, match="valid: video, checkpoint"):
        DemoConfig.from_dict({"video": "v", "checkpoint": "c", "windw": 3})
    with pytest.raises(DemoError, match="has 2 names but the model has 5"):
        labels = demo_files["root"] / "two.txt"
        labels.write_text("a\nb\n")
        predict_timeline(DemoConfig(video=str(demo_files["video"]), checkpoint=str(demo_files["checkpoint"]),
                                    labels=str(labels), input_size=64))


def test_device_goes_through_resolve_device(demo_files, capsys):
    """`--device auto` runs wherever the tests run; a device that is not there is a clear error."""
    code = main([str(demo_files["video"]), "--checkpoint", str(demo_files["checkpoint"]), "--window", "32",
                 "--input-size", "64", "--device", "auto", "--out", ""])
    assert code == 0, capsys.readouterr().err
    code = main([str(demo_files["video"]), "--checkpoint", str(demo_files["checkpoint"]), "--device", "nowhere",
                 "--out", ""])
    assert code == 2 and "device 'nowhere'" in capsys.readouterr().err
