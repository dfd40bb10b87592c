"""evaluate(): the official protocol's view counts, view averaging, ensembles, batch-size independence."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pan_lib.engine import EvalConfig, evaluate
from pan_lib.engine.evaluate import classification_metrics, combine_members, load_scores
from pan_lib.ensemble import ensemble_name
from test_engine_toys import TinyNet, ToyMotion


class _CountingNet(TinyNet):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.inputs: list[tuple[int, ...]] = []

    def forward(self, x):
        self.inputs.append(tuple(x.shape))
        return super().forward(x)


@pytest.mark.parametrize("crops,twice,dense,views", [(1, False, False, 1), (3, False, False, 3),
                                                      (10, False, False, 10), (1, True, False, 2),
                                                      (3, True, False, 6), (1, False, True, 10)])
def test_protocol_view_counts(crops, twice, dense, views):
    cfg = EvalConfig(crops=crops, twice_sample=twice, dense_sample=dense, num_workers=0)
    assert cfg.views == views
    torch.manual_seed(0)
    net = _CountingNet(new_length=4)
    data = ToyMotion(5, new_length=4, views=views)
    res = evaluate([net], cfg.replace(batch_size=2, device="cpu", progress="off"), datasets=[data], num_classes=3,
                   write=False)
    # every forward sees whole videos: batch x views clips of T*m*3 channels
    assert [s[0] for s in net.inputs] == [2 * views, 2 * views, 1 * views]
    assert all(s[1] == 4 * 4 * 3 for s in net.inputs)
    assert res.scores.shape == (5, 3) and res.views == views


def test_views_are_averaged_per_video():
    torch.manual_seed(0)
    net = TinyNet().eval()
    data = ToyMotion(4, views=3, fixed=True)
    res = evaluate([net], EvalConfig(crops=3, batch_size=4, progress="off", num_workers=0), datasets=[data], num_classes=3,
                   write=False)
    with torch.no_grad():
        manual = torch.stack([net(data[i][0].view(3, -1, 32, 32)).mean(0) for i in range(4)])  # (V, C) -> (C,)
    order = np.argsort(data.video_ids)
    np.testing.assert_allclose(res.scores, manual.numpy()[order], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("twice", [False, True])
def test_result_does_not_depend_on_batch_size(twice):
    torch.manual_seed(0)
    from pan_lib.models import build_model

    net = build_model("Lite", 3, num_segments=4, backbone="resnet_tiny").eval()
    views = 2 if twice else 1
    data = ToyMotion(7, new_length=4, views=views, fixed=True)
    cfg = EvalConfig(twice_sample=twice, progress="off", num_workers=0)
    results = [evaluate([net], cfg.replace(batch_size=b), datasets=[data], num_classes=3, write=False)
               for b in (1, 3, 7)]
    for other in results[1:]:
        np.testing.assert_allclose(results[0].scores, other.scores, rtol=1e-5, atol=1e-5)
        assert other.top1 == results[0].top1 and other.video_ids == results[0].video_ids


def test_ensemble_with_own_loaders_per_member(tmp_path):
    """PAN_En-style: members with new_length 4 and 1 get their own datasets; raw logits averaged."""
    torch.manual_seed(0)
    lite, rgb, pa = TinyNet(new_length=4, modality="Lite"), TinyNet(modality="RGB"), TinyNet(new_length=4, modality="PA")
    sets = [ToyMotion(6, new_length=4, fixed=True), ToyMotion(6, new_length=1, fixed=True),
            ToyMotion(6, new_length=4, fixed=True)]
    cfg = EvalConfig(progress="off", out_dir=str(tmp_path / "en"), batch_size=4, coeffs=(1.0, 2.0, 1.0), num_workers=0)
    res = evaluate([lite, rgb, pa], cfg, datasets=sets, num_classes=3)
    singles = [evaluate([m], EvalConfig(progress="off", num_workers=0), datasets=[d], num_classes=3, write=False)
               for m, d in zip((lite, rgb, pa), sets)]
    expected = (singles[0].scores + 2 * singles[1].scores + singles[2].scores) / 3
    np.testing.assert_allclose(res.scores, expected, rtol=1e-5, atol=1e-6)
    assert res.model == "PAN_En" and [m["new_length"] for m in res.members] == [4, 1, 4]
    rec = res.record
    assert rec["kind"] == "eval" and rec["modality"] == "En" and rec["status"] == "completed"
    assert rec["metrics"]["top1"] == res.top1 and len(rec["members"]) == 3
    saved = load_scores(tmp_path / "en" / "scores.npz")
    assert saved["video_ids"] == sorted(saved["video_ids"]) and saved["scores"].shape == (6, 3)
    assert (tmp_path / "en" / "confusion.npy").is_file() and (tmp_path / "en" / "per_class.csv").is_file()
    assert ensemble_name(["RGB", "PA"]) == ("PAN_Full", "Full")


def test_metrics_top5_per_class_confusion_and_unlabeled():
    scores = torch.tensor([[3., 2, 1, 0, 0, 0], [0, 3, 2, 1, 0, 0], [5, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 1.]])
    labels = torch.tensor([0, 2, 5, -1])
    m = classification_metrics(scores, labels, 6)
    assert m["num_videos"] == 3 and m["top1"] == pytest.approx(100 / 3) and m["top5"] == pytest.approx(100.0)
    assert m["per_class"][0] == 100 and m["per_class"][2] == 0 and m["per_class"][1] is None
    assert m["confusion"][5, 0] == 1 and int(m["confusion"].sum()) == 3
    assert m["mean_class_acc"] == pytest.approx(100 / 3)
    assert combine_members([torch.ones(2, 2), 3 * torch.ones(2, 2)]).tolist() == [[2, 2], [2, 2]]


def test_train_then_evaluate_checkpoint_and_export_official(tmp_path):
    from pan_lib.checkpoints import load_checkpoint
    from pan_lib.engine import TrainConfig, export_official, train
    from pan_lib.models import build_model

    torch.manual_seed(0)
    model = build_model("PA", 3, num_segments=4, backbone="resnet_tiny", dropout=0.0)
    cfg = TrainConfig(modality="PA", backbone="resnet_tiny", num_segments=4, epochs=1, batch_size=4, lr=0.001,
                      dropout=0.0, input_size=32, scale_size=32, dataset="embedded", run_dir=str(tmp_path / "run"),
                      device="cpu", amp="off", num_workers=0, progress="off", tensorboard=False,
                      save_every_minutes=0.0, resume=False)
    res = train(cfg, model=model, train_set=ToyMotion(8, new_length=4), val_set=ToyMotion(4, new_length=4),
                num_classes=3)
    ev = evaluate([res.best_checkpoint], EvalConfig(progress="off", num_workers=0), datasets=[ToyMotion(4, new_length=4)],
                  num_classes=3)
    assert ev.record_path.parent == tmp_path / "run" / "eval" / "PAN_PA_val_1crop_1clip_centre"
    assert ev.record["members"][0]["run_record"].endswith("record.json")
    assert ev.record["gflops_per_view"] > 0
    path = export_official(res.best_checkpoint)
    assert path.name == "PAN_PA_embedded_resnet_tiny_shift8_blockres_avg_segment4_e1.pth.tar"
    raw = torch.load(path, weights_only=True)
    assert set(raw) >= {"epoch", "arch", "state_dict", "optimizer", "best_prec1"}
    assert all(k.startswith("module.") for k in raw["state_dict"])
    loaded = load_checkpoint(path)
    ours = torch.load(res.best_checkpoint, weights_only=True)["model"]
    for k, v in loaded.model.state_dict().items():
        assert torch.equal(v, ours[k]), k


@pytest.mark.parametrize("views_per_forward", [1, 4, 7])
def test_views_go_through_the_network_in_bounded_chunks(views_per_forward):
    """3 crops x 10 dense clips = 30 views a video: no forward (nor loader batch) holds more than K views,
    and the scores equal one forward per video."""
    torch.manual_seed(0)
    net = _CountingNet(new_length=4).eval()
    data = ToyMotion(5, new_length=4, views=30, fixed=True)
    cfg = EvalConfig(crops=3, dense_sample=True, batch_size=8, device="cpu", progress="off", num_workers=0)
    assert cfg.views == 30
    res = evaluate([net], cfg.replace(views_per_forward=views_per_forward), datasets=[data], num_classes=3,
                   write=False)
    assert max(s[0] for s in net.inputs) <= views_per_forward and sum(s[0] for s in net.inputs) == 5 * 30
    with torch.no_grad():
        whole = torch.stack([net(data[i][0].view(30, -1, 32, 32)).mean(0) for i in range(5)])  # (V, C) -> (C,)
    np.testing.assert_allclose(res.scores, whole.numpy()[np.argsort(data.video_ids)], rtol=1e-5, atol=1e-6)


def test_loader_batch_holds_at_most_views_per_forward_views():
    from pan_lib.engine.evaluate import videos_per_batch

    assert videos_per_batch(8, 30, 32) == 1      # one whole video when V > K (its views then go in chunks)
    assert videos_per_batch(8, 3, 32) == 8       # batch_size caps
    assert videos_per_batch(8, 10, 32) == 3
    assert videos_per_batch(8, 100, 32) == 1


def test_empty_shard_gives_an_empty_prediction_with_classes():
    """A rank without videos (fewer videos than ranks): [0, C] logits that join the others in torch.cat."""
    from torch.utils.data import DataLoader

    from pan_lib.engine.distributed import ShardSampler
    from pan_lib.engine.evaluate import gather_predictions, predict

    net = TinyNet()
    data = ToyMotion(1)
    empty = predict(net, DataLoader(data, sampler=ShardSampler(len(data), rank=1, world_size=2)), views=1)
    full = predict(net, DataLoader(data, sampler=ShardSampler(len(data), rank=0, world_size=2)), views=1)
    assert empty["logits"].shape == (0, 3) and full["logits"].shape == (1, 3)
    assert torch.cat([full["logits"], empty["logits"]]).shape == (1, 3)
    assert gather_predictions(empty)["logits"].shape == (0, 3)  # one process: its own (empty) output back
