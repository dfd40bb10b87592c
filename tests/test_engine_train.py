"""train(): learning per modality, accumulation, NaN stop, exact resume after SIGKILL, atomic saves, DDP."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from pan_lib.engine import NonFiniteLossError, TrainConfig, train
from pan_lib.engine.checkpointing import atomic_save, load_train_checkpoint
from pan_lib.engine.records import load_record
from test_engine_toys import TinyNet, ToyMotion

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
QUIET = dict(device="cpu", amp="off", num_workers=0, progress="off", tensorboard=False, count_flops=False,
             save_every_minutes=0.0, resume=False, threads=1)


def _cfg(tmp_path, **kw) -> TrainConfig:
    base = dict(modality="RGB", backbone="resnet_tiny", num_segments=4, epochs=2, batch_size=8, lr=0.05, lr_type="cos",
                lr_steps=(), dropout=0.0, input_size=32, scale_size=32, run_dir=str(tmp_path / "run"), **QUIET)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.slow
@pytest.mark.parametrize("modality", ["TSN", "TSM", "RGB", "PA", "Lite"])
def test_each_modality_learns(tmp_path, modality):
    from pan_lib.models import build_model, frames_per_segment

    m = frames_per_segment(modality)
    torch.manual_seed(0)
    model = build_model(modality, 3, num_segments=4, backbone="resnet_tiny", dropout=0.0)
    cfg = _cfg(tmp_path, modality=modality, epochs=4, lr=0.005, warmup_epochs=0.5, count_flops=True, tensorboard=True)
    res = train(cfg, model=model, train_set=ToyMotion(96, new_length=m), val_set=ToyMotion(48, new_length=m, seed=1),
                num_classes=3)
    train_loss = [r["train_loss"] for r in res.metrics]
    val_loss = [r["val_loss"] for r in res.metrics]
    assert min(train_loss[1:]) < train_loss[0] and val_loss[-1] < min(val_loss[0], math.log(3)), res.metrics
    assert res.final_top1 >= 60.0, res.metrics  # chance is 33.3 %
    rec = load_record(res.record_path)
    assert rec["status"] == "completed" and rec["kind"] == "train" and rec["metrics"]["epochs_completed"] == 4
    assert rec["provenance"]["git_sha"] and rec["gflops_per_view"] > 0 and rec["params"] > 0
    assert (res.run_dir / "metrics.csv").read_text().count("\n") == 5
    assert any((res.run_dir / "tb").iterdir()) and res.best_checkpoint.is_file()


def test_accumulation_equals_the_big_batch(tmp_path):
    """batch 8 == 2 x 4 accumulated (no off-by-one: 8 steps per epoch of 64 clips either way)."""
    data = ToyMotion(64)
    runs = {}
    for name, kw in {"big": dict(batch_size=8), "acc": dict(batch_size=4, accumulate=2)}.items():
        torch.manual_seed(0)
        res = train(_cfg(tmp_path / name, clip_grad=1.0, **kw), model=TinyNet(), train_set=data, val_set=None,
                    num_classes=3)
        runs[name] = (load_train_checkpoint(res.last_checkpoint), res)
    (big, rb), (acc, ra) = runs["big"], runs["acc"]
    assert big["global_step"] == acc["global_step"] == 16
    for k in big["model"]:
        torch.testing.assert_close(big["model"][k], acc["model"][k], rtol=1e-3, atol=1e-4)
    assert rb.metrics[-1]["lr"] == pytest.approx(ra.metrics[-1]["lr"])


class _NaNAfter(TinyNet):
    def __init__(self, after: int) -> None:
        super().__init__()
        self.calls, self.after = 0, after

    def forward(self, x):
        self.calls += 1 if self.training else 0
        out = super().forward(x)
        return out * float("nan") if self.calls > self.after else out


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    cfg = _cfg(tmp_path, epochs=3)
    with pytest.raises(NonFiniteLossError, match="non-finite loss.*epoch 2.*last good checkpoint"):
        train(cfg, model=_NaNAfter(after=8 + 3), train_set=ToyMotion(64), val_set=ToyMotion(16, seed=1), num_classes=3)
    ckpt = load_train_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["epoch"] == 1 and all(torch.isfinite(v).all() for v in ckpt["model"].values())
    rec = load_record(tmp_path / "run" / "record.json")
    assert rec["status"] == "failed" and "non-finite" in rec["message"]


def test_resume_auto_returns_a_completed_run_and_refuses_a_changed_config(tmp_path):
    cfg = _cfg(tmp_path, epochs=1)
    first = train(cfg, model=TinyNet(), train_set=ToyMotion(16), val_set=ToyMotion(8), num_classes=3)
    again = train(cfg.replace(resume="auto"), model=TinyNet(), train_set=ToyMotion(16), val_set=ToyMotion(8),
                  num_classes=3)
    assert again.metrics == first.metrics and again.status == "completed"
    from pan_lib.engine.config import ConfigError

    with pytest.raises(ConfigError, match="weight_decay"):
        train(cfg.replace(resume="auto", epochs=2, weight_decay=0.1), model=TinyNet(), train_set=ToyMotion(16),
              val_set=ToyMotion(8), num_classes=3)
    train(cfg.replace(resume=False), model=TinyNet(), train_set=ToyMotion(16), val_set=None, num_classes=3)
    assert list(tmp_path.glob("run.old-*")), "resume=False moves the earlier run aside"


# ---------------------------------------------------------------------- subprocess: kill and resume
_RESUME_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    import torch
    torch.set_num_threads(1)
    from pan_lib.engine import TrainConfig, train
    from test_engine_toys import TinyNet, ToyMotion

    class KillAfter(ToyMotion):
        kill_at = int(os.environ.get("KILL_AT", "0"))
        calls = 0
        def __getitem__(self, i):
            KillAfter.calls += 1
            if self.kill_at and KillAfter.calls == self.kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return super().__getitem__(i)

    cfg = TrainConfig(modality="RGB", epochs=3, batch_size=8, lr=0.05, lr_type="step", lr_steps=(2,),
                      warmup_epochs=0.5, dropout=0.3, run_dir=sys.argv[1], device="cpu", amp="off",
                      num_workers=int(os.environ.get("WORKERS", "0")), progress="off", tensorboard=False,
                      count_flops=False, save_every_minutes=0.0, save_every_steps=2, resume="auto", seed=5)
    torch.manual_seed(0)  # the model is built here, outside train(): seed its initialisation
    res = train(cfg, model=TinyNet(dropout=0.3), train_set=KillAfter(64), val_set=ToyMotion(24, seed=1),
                num_classes=3)
    print("DONE", res.status)
""")


def _run(script: Path, run_dir: Path, **env) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **{k: str(v) for k, v in env.items()}}
    return subprocess.run([sys.executable, str(script), str(run_dir)], capture_output=True, text=True,
                          env=full_env, timeout=300)


def _comparable(history):
    return [{k: v for k, v in row.items() if not any(t in k for t in ("seconds", "per_s", "ms_per", "memory"))}
            for row in history]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_is_bitwise_identical(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(_RESUME_SCRIPT.format(tests=str(TESTS)))
    ref = _run(script, tmp_path / "ref")
    assert ref.returncode == 0, ref.stderr[-3000:]
    # epoch 2 of 3, batch 5 of 8: the last mid-epoch checkpoint is 1 step earlier (save_every_steps=2)
    killed = _run(script, tmp_path / "resumed", KILL_AT=8 * 8 + 4 * 8 + 3)
    assert killed.returncode == -signal.SIGKILL
    mid = load_train_checkpoint(tmp_path / "resumed" / "last.pt")
    assert (mid["epoch"], mid["step_in_epoch"]) == (1, 4)
    resumed = _run(script, tmp_path / "resumed")
    assert resumed.returncode == 0 and "DONE completed" in resumed.stdout, resumed.stderr[-3000:]
    a = load_train_checkpoint(tmp_path / "ref" / "last.pt")
    b = load_train_checkpoint(tmp_path / "resumed" / "last.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert _comparable(a["history"]) == _comparable(b["history"])
    ra, rb = (json.loads((tmp_path / d / "record.json").read_text()) for d in ("ref", "resumed"))
    assert ra["metrics"] == rb["metrics"]


_SAVE_SCRIPT = textwrap.dedent("""
    import io, sys, time
    import torch
    import pan_lib.engine.checkpointing as C
    path = sys.argv[1]
    C.atomic_save({"version": 1, "w": torch.arange(10.0)}, path)
    real_save = torch.save
    def slow_save(obj, f):
        buf = io.BytesIO(); real_save(obj, buf); data = buf.getvalue()
        f.write(data[: len(data) // 2]); f.flush()
        print("HALF", flush=True)
        time.sleep(60)
        f.write(data[len(data) // 2:])
    C.torch.save = slow_save
    C.atomic_save({"version": 2, "w": torch.zeros(100000)}, path)
""")


def test_kill_during_save_keeps_previous_checkpoint(tmp_path):
    script = tmp_path / "save.py"
    script.write_text(_SAVE_SCRIPT)
    path = tmp_path / "last.pt"
    proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout.readline().strip() == "HALF"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["version"] == 1 and torch.equal(ckpt["w"], torch.arange(10.0))
    from pan_lib.engine.checkpointing import remove_stale_temporaries

    assert len(remove_stale_temporaries(tmp_path)) == 1
    atomic_save({"version": 3}, path)
    assert torch.load(path, weights_only=True)["version"] == 3


# -------------------------------------------------------------------------------------------- DDP
_DDP_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import torch
    torch.set_num_threads(1)
    from pan_lib.engine import TrainConfig, train
    from pan_lib.engine.distributed import shutdown_distributed
    from test_engine_toys import TinyNet, ToyMotion
    cfg = TrainConfig(modality="RGB", epochs=2, batch_size=8, lr=0.1, lr_type="cos", lr_steps=(), clip_grad=0.5,
                      dropout=0.0, run_dir=sys.argv[1], device="cpu", amp="off", num_workers=0, progress="off",
                      tensorboard=False, count_flops=False, save_every_minutes=0.0, resume=False, seed=1)
    torch.manual_seed(0)
    res = train(cfg, model=TinyNet(), train_set=ToyMotion(36), val_set=ToyMotion(11, seed=1), num_classes=3)
    shutdown_distributed()  # as the CLI does: a gloo group alive at exit sometimes aborts the process
""")


@pytest.mark.slow
def test_ddp_two_processes_equal_one_process(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(_DDP_SCRIPT.format(tests=str(TESTS)))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, str(script), str(tmp_path / "one")], capture_output=True, text=True,
                         env=env, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          str(script), str(tmp_path / "two")], capture_output=True, text=True, env=env, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    a = load_train_checkpoint(tmp_path / "one" / "last.pt")
    b = load_train_checkpoint(tmp_path / "two" / "last.pt")
    assert a["global_step"] == b["global_step"] == 8  # 36 clips -> 4 global batches of 8 per epoch
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-5, atol=1e-6)
    ra, rb = (load_record(tmp_path / d / "record.json") for d in ("one", "two"))
    assert rb["speed"]["world_size"] == 2 and ra["metrics"]["num_videos"] == rb["metrics"]["num_videos"] == 11
    assert ra["metrics"]["top1"] == pytest.approx(rb["metrics"]["top1"])
    assert not (tmp_path / "two" / "last.pt.tmp-0").exists()
