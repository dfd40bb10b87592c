"""Distributed evaluation is exact: 2 gloo processes under torchrun give the 1-process result.

On the tiny embedded set (the real data path: decoded clips, test crops, dense sampling), for several
protocols and an ensemble: every video is scored exactly once (also with fewer videos than ranks),
every rank returns the whole result, only rank 0 writes, and scores / metrics equal one process.
The CLI (`torchrun -m pan_lib.evaluate ...`) is checked the same way.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from pan_lib.checkpoints import save_official_checkpoint
from pan_lib.data.registry import get_prepared
from pan_lib.engine.evaluate import load_scores
from pan_lib.engine.records import load_record
from pan_lib.models import build_model

REPO = Path(__file__).resolve().parents[1]
SMALL = dict(input_size=32, scale_size=40)

PROTOCOLS = {
    "1crop": dict(members=["Lite"]),
    "3crop_2clip": dict(members=["Lite"], crops=3, twice_sample=True, full_res=True),
    "dense_10clip": dict(members=["RGB"], dense_sample=True),
    "ensemble": dict(members=["Lite", "RGB"], crops=3, coeffs=[1.0, 2.0]),
    "one_video": dict(members=["Lite"], max_videos=1),  # fewer videos than ranks
}

_SCRIPT = textwrap.dedent("""
    import importlib, json, sys
    import torch
    torch.set_num_threads(1)
    from pan_lib.engine import EvalConfig, evaluate
    E = importlib.import_module("pan_lib.engine.evaluate")  # the module (pan_lib.engine.evaluate is the function)
    from pan_lib.engine.distributed import env_from_os, shutdown_distributed

    data_root, ckpt_dir, out, protocols = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    env = env_from_os()
    seen = []
    real_predict = E.predict
    def recording_predict(*args, **kwargs):  # the dataset indices this rank scored
        result = real_predict(*args, **kwargs)
        seen.append(result["indices"].tolist())
        return result
    E.predict = recording_predict
    for name, fields in protocols.items():
        fields = dict(fields)
        ckpts = [f"{ckpt_dir}/{m}.pth.tar" for m in fields.pop("members")]
        seen.clear()
        cfg = EvalConfig(dataset="embedded", data_root=data_root, device="cpu", num_workers=0, progress="off",
                         input_size=32, scale_size=40, batch_size=2, views_per_forward=4,
                         out_dir=f"{out}/{name}", **fields)
        res = evaluate(ckpts, cfg)
        report = {"rank": env.rank, "videos": len(res.video_ids), "seen": seen,
                  "wrote": res.record_path is not None, "top1": res.top1}
        with open(f"{out}/{name}.rank{env.rank}.json", "w") as f:
            json.dump(report, f)
    shutdown_distributed()
""")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny embedded set and two resnet_tiny checkpoints (Lite, RGB) trained on nothing."""
    root = tmp_path_factory.mktemp("ddp_eval")
    prepared = get_prepared("embedded", root / "data", size="tiny", progress="off")
    for k, modality in enumerate(("Lite", "RGB")):
        torch.manual_seed(k)
        net = build_model(modality, prepared.num_classes, num_segments=2, backbone="resnet_tiny")
        save_official_checkpoint(net, root / "ckpt" / f"{modality}.pth.tar", epoch=1, best_prec1=0.0)
    return root, prepared


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def _torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", *args]


@pytest.mark.slow
def test_two_processes_equal_one_process_for_every_protocol(tiny, tmp_path):
    root, prepared = tiny
    script = tmp_path / "eval.py"
    script.write_text(_SCRIPT)
    args = [str(prepared.root), str(root / "ckpt")]
    for name, launcher in (("one", [sys.executable]), ("two", _torchrun())):
        (tmp_path / name).mkdir()
        run = subprocess.run([*launcher, str(script), *args, str(tmp_path / name), json.dumps(PROTOCOLS)],
                             capture_output=True, text=True, env=_env(), timeout=600, cwd=REPO)
        assert run.returncode == 0, run.stderr[-4000:]
    n_val = len(Path(prepared.list_for("val")).read_text().splitlines())
    for protocol, fields in PROTOCOLS.items():
        expected_videos = fields.get("max_videos", n_val)
        one, two = tmp_path / "one" / protocol, tmp_path / "two" / protocol
        a, b = load_scores(one / "scores.npz"), load_scores(two / "scores.npz")
        assert a["video_ids"] == b["video_ids"] and len(a["video_ids"]) == expected_videos, protocol
        np.testing.assert_array_equal(a["labels"], b["labels"])
        np.testing.assert_allclose(a["scores"], b["scores"], rtol=1e-5, atol=1e-5, err_msg=protocol)
        ra, rb = load_record(one / "record.json"), load_record(two / "record.json")
        assert ra["metrics"] == rb["metrics"] and rb["metrics"]["num_videos"] == expected_videos, protocol
        assert ra["views"] == rb["views"] and [m["top1"] for m in ra["members"]] == [m["top1"] for m in rb["members"]]
        ranks = [json.loads((tmp_path / "two" / f"{protocol}.rank{r}.json").read_text()) for r in (0, 1)]
        # every rank returns the whole result; only rank 0 writes
        assert [r["videos"] for r in ranks] == [expected_videos] * 2 and [r["wrote"] for r in ranks] == [True, False]
        assert ranks[0]["top1"] == ranks[1]["top1"] == ra["metrics"]["top1"]
        # each member: every video scored exactly once over the two ranks (rank 1 may have none)
        for member in range(len(fields["members"])):
            scored = ranks[0]["seen"][member] + ranks[1]["seen"][member]
            assert sorted(scored) == list(range(expected_videos)), (protocol, member)
    assert ranks[1]["seen"] == [[]]  # the last protocol: one video, two ranks -> an empty shard


@pytest.mark.slow
def test_torchrun_cli_equals_one_process(tiny, tmp_path):
    """`torchrun --standalone --nproc-per-node 2 -m pan_lib.evaluate CKPT --dataset embedded --split val ...`."""
    root, prepared = tiny
    common = [str(root / "ckpt" / "Lite.pth.tar"), "--dataset", "embedded", "--data-root", str(prepared.root),
              "--split", "val", "--crops", "3", "--twice-sample", "--input-size", "32", "--scale-size", "40",
              "--device", "cpu", "--num-workers", "0", "--set", "progress=off", "--set", "amp=off"]
    outputs = {}
    for name, launcher in (("one", [sys.executable, "-m", "pan_lib.evaluate"]),
                           ("two", _torchrun("-m", "pan_lib.evaluate"))):
        run = subprocess.run([*launcher, *common, "--out-dir", str(tmp_path / name)], capture_output=True, text=True,
                             env=_env(), timeout=600, cwd=REPO)
        assert run.returncode == 0, run.stderr[-4000:]
        outputs[name] = json.loads(run.stdout[run.stdout.index("{"):])
    n_val = len(Path(prepared.list_for("val")).read_text().splitlines())
    assert outputs["one"]["videos"] == outputs["two"]["videos"] == n_val
    assert outputs["one"]["top1"] == outputs["two"]["top1"] and outputs["one"]["views"] == 6
    a, b = (load_scores(tmp_path / n / "scores.npz") for n in ("one", "two"))
    assert a["video_ids"] == b["video_ids"]
    np.testing.assert_allclose(a["scores"], b["scores"], rtol=1e-5, atol=1e-5)


def test_uint8_clips_normalised_on_the_device_equal_float_clips(tiny, monkeypatch):
    """The engine reads uint8 clips and normalises them after the copy: the scores of the float pipeline
    (up to the rounding of resized pixels to uint8, which the float pipeline does not do)."""
    from pan_lib.engine import EvalConfig, evaluate
    from pan_lib.engine.data import build_split

    inputs = sys.modules["pan_lib.engine.inputs"]
    root, prepared = tiny
    seen = []
    real = inputs.normalize_clip
    monkeypatch.setattr(inputs, "normalize_clip", lambda clips, *a: seen.append(clips.dtype) or real(clips, *a))
    cfg = EvalConfig(dataset="embedded", data_root=str(prepared.root), crops=3, max_videos=5, device="cpu",
                     num_workers=0, progress="off", **SMALL)
    ckpt = root / "ckpt" / "Lite.pth.tar"
    engine = evaluate([ckpt], cfg, write=False)
    assert seen and set(seen) == {torch.uint8}
    floats = build_split("embedded", str(prepared.root), "val", modality="Lite", num_segments=2, mode="test",
                         test_crops=3, **SMALL).dataset
    assert floats.output == "float"
    reference = evaluate([ckpt], cfg, datasets=[torch.utils.data.Subset(floats, range(5))],
                         num_classes=prepared.num_classes, write=False)
    scale = np.abs(reference.scores).max()
    np.testing.assert_allclose(engine.scores, reference.scores, rtol=0, atol=0.02 * scale)
    assert engine.video_ids == reference.video_ids
