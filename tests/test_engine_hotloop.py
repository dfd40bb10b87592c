"""The GPU path imitated on the CPU: collectives under a CUDA-only group, host syncs per step, amp
'auto', devices under torchrun, CUDA RNG states on resume, save-and-stop on SIGTERM/SIGUSR1."""
from __future__ import annotations

import importlib
import logging
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest
import torch

from pan_lib.engine import TrainConfig, train
from pan_lib.engine import checkpointing as C
from pan_lib.engine import distributed as D
from pan_lib.engine import speed
from pan_lib.engine.checkpointing import load_train_checkpoint
from pan_lib.engine.records import load_record
from test_engine_toys import TinyNet, ToyMotion

T = importlib.import_module("pan_lib.engine.train")  # the module (pan_lib.engine.train is also the function)
TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
QUIET = dict(modality="RGB", num_segments=4, batch_size=4, lr=0.05, lr_type="cos", lr_steps=(), dropout=0.0,
             device="cpu", amp="off", num_workers=0, progress="off", tensorboard=False, count_flops=False,
             save_every_minutes=0.0, resume=False, threads=1)


# ------------------------------------------------------------ 1. collectives under a CUDA-only group
_CUDA_ONLY_SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    import torch, torch.distributed as dist
    torch.set_num_threads(1)
    # what NCCL does to CPU tensors, on the CPU: a default group whose only backend is for CUDA
    dist.init_process_group(backend="cuda:gloo")
    rank = dist.get_rank()
    try:
        dist.all_reduce(torch.zeros(1))  # what the old epoch-end reduction did
        raise SystemExit("a CPU tensor went through a CUDA-only group")
    except RuntimeError as err:
        assert "No backend type associated with device type cpu" in str(err), err
    from pan_lib.engine import distributed as D
    from pan_lib.engine import TrainConfig
    from pan_lib.engine.train import _Trainer
    from test_engine_toys import TinyNet, ToyMotion
    assert D.all_reduce_sum([rank + 1.0, 2.0]).tolist() == [3.0, 4.0]
    assert D.all_gather_objects(rank) == [0, 1] and D.broadcast_object(f"r{{rank}}") == "r0"
    D.barrier()
    cfg = TrainConfig(modality="RGB", num_segments=4, epochs=1, batch_size=4, lr=0.05, run_dir=sys.argv[1],
                      device="cpu", amp="off", num_workers=0, progress="off", tensorboard=False, count_flops=False,
                      save_every_minutes=0.0, resume=False, seed=1)
    trainer = _Trainer(cfg, TinyNet(), ToyMotion(16), ToyMotion(6, seed=1), 3, None)
    trainer.session_start = trainer.last_save_time = time.perf_counter()
    assert trainer.prepare_run_dir() == "fresh"
    x, y, _ = ToyMotion(2)[0]
    logits = trainer.model(x[None])
    trainer.meter.add(torch.nn.functional.cross_entropy(logits, torch.tensor([y])), logits, torch.tensor([y]))
    trainer.epoch_seconds, trainer.speed_summary = 1.0, {{}}
    trainer.end_epoch()  # finite check, statistics, bad inputs, validation gather, save_last, record
    row = trainer.history[-1]
    assert row["val_num_videos"] == 6 and row["train_loss"] > 0, row
    D.shutdown_distributed()  # a gloo group alive at interpreter exit sometimes aborts the process
    print("OK", rank, row["train_loss"])
""")


@pytest.mark.slow
def test_epoch_end_reductions_work_under_a_cuda_only_backend(tmp_path):
    """Issue 14: every NCCL run crashed at the end of epoch 1 (CPU tensors through NCCL)."""
    script = tmp_path / "cuda_only.py"
    script.write_text(_CUDA_ONLY_SCRIPT.format(tests=str(TESTS)))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          str(script), str(tmp_path / "run")], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    losses = {line.split()[1]: line.split()[2] for line in out.stdout.splitlines() if line.startswith("OK")}
    assert set(losses) == {"0", "1"} and len(set(losses.values())) == 1  # reduced: the same on both ranks
    assert load_train_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 1


# --------------------------------------------------------------------------- 2. host syncs per step
class _SyncCounter:
    """Counts what blocks the host on a GPU: synchronize, to_host, collectives, and tensor-to-Python
    reads (item, float, int, bool, tolist) made by the training loop's own code (engine/train.py)."""

    READS = ("item", "__float__", "__int__", "__bool__", "tolist")

    def __init__(self, monkeypatch) -> None:
        self.counts: Counter[str] = Counter()
        for name in ("synchronize", "to_host"):
            self._wrap(monkeypatch, speed, name)
        for name in ("all_reduce_sum", "all_gather_objects", "broadcast_object", "barrier"):
            self._wrap(monkeypatch, D, name)
        for name in self.READS:
            real = getattr(torch.Tensor, name)

            def read(tensor, *args, _real=real, _name=name):
                if sys._getframe(1).f_code.co_filename.endswith(os.path.join("engine", "train.py")):
                    self.counts[f"Tensor.{_name}"] += 1
                return _real(tensor, *args)
            monkeypatch.setattr(torch.Tensor, name, read)

    def _wrap(self, monkeypatch, module, name) -> None:
        real = getattr(module, name)

        def counted(*args, **kwargs):
            self.counts[name] += 1
            return real(*args, **kwargs)
        monkeypatch.setattr(module, name, counted)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def test_hot_loop_has_few_host_syncs_per_step(tmp_path, monkeypatch):
    """Issue 14: 6 synchronize per step in the speed monitor + ~10 reads/collectives per micro-batch."""
    counter = _SyncCounter(monkeypatch)
    epochs, steps = 2, 40
    res = train(TrainConfig(**QUIET, epochs=epochs, run_dir=str(tmp_path / "run")), model=TinyNet(),
                train_set=ToyMotion(4 * steps), val_set=None, num_classes=3)
    assert res.status == "completed" and len(res.metrics) == epochs
    per_step = counter.total / (epochs * steps)
    # sampled timing (6 syncs every TIMING_SAMPLE_EVERY steps) + one read every CHECK_EVERY + a few per epoch
    assert per_step <= 1.0, (per_step, counter.counts)
    assert counter.counts["synchronize"] <= epochs * (6 * (steps // T.TIMING_SAMPLE_EVERY + 1) + 2), counter.counts
    assert counter.counts["to_host"] <= epochs * (steps // T.CHECK_EVERY + 4), counter.counts
    assert not any(k.startswith("Tensor.") for k in counter.counts), counter.counts  # no stray float(loss) etc.
    assert res.metrics[-1]["train_clips_per_s"] > 0 and res.metrics[-1]["train_forward_ms_per_step"] > 0


def test_nan_is_found_at_the_next_check_and_never_saved(tmp_path):
    class NaNFrom(TinyNet):
        calls = 0

        def forward(self, x):
            NaNFrom.calls += self.training
            out = super().forward(x)
            return out * float("nan") if NaNFrom.calls == 30 else out  # one bad micro-batch, mid-epoch 2

    cfg = TrainConfig(**{**QUIET, "save_every_minutes": 0.0}, epochs=3, save_every_steps=4,
                      run_dir=str(tmp_path / "run"))
    with pytest.raises(T.NonFiniteLossError, match="non-finite loss.*epoch 2.*last good checkpoint"):
        train(cfg, model=NaNFrom(), train_set=ToyMotion(4 * 16), val_set=None, num_classes=3)
    ckpt = load_train_checkpoint(tmp_path / "run" / "last.pt")  # saved at batch 12 of epoch 2, before the NaN
    assert (ckpt["epoch"], ckpt["step_in_epoch"]) == (1, 12)
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())


# ------------------------------------------------------------------------------------ 3. amp auto
@pytest.mark.parametrize("native,expected", [(True, torch.bfloat16), (False, torch.float16)])
def test_amp_auto_is_fp16_where_bf16_is_only_emulated(monkeypatch, native, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: native or including_emulation)
    assert D.resolve_amp("auto", torch.device("cuda:0")) == expected
    assert D.resolve_amp("auto", torch.device("cpu")) is None and D.resolve_amp("bf16", torch.device("cuda")) == torch.bfloat16


@pytest.mark.parametrize("capability,expected", [((7, 0), torch.float16), ((7, 5), torch.float16),
                                                 ((8, 0), torch.bfloat16), ((9, 0), torch.bfloat16)])
def test_amp_auto_by_compute_capability_on_older_torch(monkeypatch, capability, expected):
    def old_signature():  # torch < 2.3: no including_emulation keyword
        return True
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", old_signature)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert D.resolve_amp("auto", torch.device("cuda:0")) == expected


# ------------------------------------------------------------------------------------ 4. edge cases
def test_explicit_cuda_index_under_torchrun_follows_local_rank(monkeypatch, caplog):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with caplog.at_level(logging.WARNING, logger="pan_lib.engine.distributed"):
        assert D.resolve_device("cuda:1", local_rank=0, world_size=2) == torch.device("cuda:0")
        assert D.resolve_device("cuda:1", local_rank=3, world_size=4) == torch.device("cuda:3")
    assert "LOCAL_RANK" in caplog.text and "cuda:1" in caplog.text
    caplog.clear()
    assert D.resolve_device("cuda:1", local_rank=1, world_size=2) == torch.device("cuda:1")
    assert D.resolve_device("cuda:1") == torch.device("cuda:1")  # one process: as asked
    assert D.resolve_device("cuda", local_rank=2, world_size=4) == torch.device("cuda:2")
    assert not caplog.text


def test_resume_restores_cuda_rng_only_for_devices_that_exist(monkeypatch, caplog):
    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device="cuda": calls.append((device, state)))
    saved = C.capture_rng_state()  # CPU generators (CUDA not initialised here)
    four_gpus = [torch.full((8,), i, dtype=torch.uint8) for i in range(4)]
    with caplog.at_level(logging.WARNING, logger="pan_lib.engine.checkpointing"):
        C.restore_rng_state({**saved, "cuda": four_gpus})  # a file from a 4-GPU machine, older layout
    assert [d for d, _ in calls] == [0] and torch.equal(calls[0][1], four_gpus[0])
    assert "4 GPUs" in caplog.text
    calls.clear()
    C.restore_rng_state({**saved, "cuda": [four_gpus[3]], "cuda_device": 3})  # new layout: the rank's own GPU
    assert [d for d, _ in calls] == [0] and torch.equal(calls[0][1], four_gpus[3])


# ------------------------------------------------------------------------- 5. SIGTERM / SIGUSR1
@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGTERM])
def test_signal_saves_at_the_step_boundary_and_stops_resumably(tmp_path, sig):
    class SignalAt(ToyMotion):
        calls, at = 0, 4 * 16 + 4 * 5 + 2  # epoch 2, inside micro-batch 6

        def __getitem__(self, i):
            SignalAt.calls += 1
            if SignalAt.calls == self.at:
                os.kill(os.getpid(), sig)
            return super().__getitem__(i)

    def run(run_dir, data, resume):
        torch.manual_seed(0)
        cfg = TrainConfig(**{**QUIET, "resume": resume, "dropout": 0.3}, epochs=3, run_dir=str(run_dir))
        return train(cfg, model=TinyNet(dropout=0.3), train_set=data, val_set=ToyMotion(8, seed=1, fixed=True),
                     num_classes=3)

    previous = signal.getsignal(sig)
    stopped = run(tmp_path / "run", SignalAt(64, fixed=True), False)
    assert signal.getsignal(sig) == previous  # handlers restored
    assert stopped.status == "stopped"
    rec = load_record(stopped.record_path)
    assert rec["status"] == "stopped" and sig.name in rec["message"], rec["message"]
    mid = load_train_checkpoint(stopped.last_checkpoint)
    assert (mid["epoch"], mid["step_in_epoch"]) == (1, 6)  # the step the signal arrived in, completed
    resumed = run(tmp_path / "run", ToyMotion(64, fixed=True), "auto")
    reference = run(tmp_path / "ref", ToyMotion(64, fixed=True), False)
    assert resumed.status == reference.status == "completed"
    a, b = (load_train_checkpoint(r.last_checkpoint)["model"] for r in (resumed, reference))
    assert all(torch.equal(a[k], b[k]) for k in a)  # the stop cost nothing


# ------------------------------------------------------------------------ 6. persistent workers
def test_persistent_workers_follow_the_epoch(tmp_path):
    """Workers live across epochs; each epoch's clips still come from (seed, epoch, index)."""
    runs = {}
    for workers in (0, 1):
        torch.manual_seed(0)
        cfg = TrainConfig(**{**QUIET, "num_workers": workers}, epochs=3, run_dir=str(tmp_path / f"w{workers}"))
        res = train(cfg, model=TinyNet(), train_set=ToyMotion(32), val_set=ToyMotion(8, seed=1, fixed=True),
                    num_classes=3)
        runs[workers] = load_train_checkpoint(res.last_checkpoint)
    assert all(torch.equal(runs[0]["model"][k], runs[1]["model"][k]) for k in runs[0]["model"])
    assert [r["train_loss"] for r in runs[0]["history"]] == [r["train_loss"] for r in runs[1]["history"]]
