"""pan_lib.notebook: an evaluation is reused only when everything that decides it is unchanged.

`evaluate_or_load` keys the cache on the whole `EvalConfig`, each checkpoint's sha256 and the data
fingerprint. The first tests use a stand-in engine (fast, one protocol field at a time); the last
one runs the real engine on the tiny embedded set, so the key read back from a real record matches.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from pan_lib import notebook as nbu
from pan_lib.checkpoints import save_official_checkpoint
from pan_lib.data.registry import get_prepared
from pan_lib.engine import TrainConfig
from pan_lib.models import build_model
from pan_lib.notebook import runs
from pan_lib.provenance import file_sha256

FIELDS = dict(dataset="embedded", data_root="/nowhere", device="cpu", num_workers=0, progress="off")


@pytest.fixture()
def engine(monkeypatch):
    """A stand-in for `pan_lib.engine.evaluate` that writes a record the way the engine does."""
    state = SimpleNamespace(calls=0, fingerprint="fp-1")

    def fake_evaluate(checkpoints, cfg):
        state.calls += 1
        out = Path(cfg.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        record = {"status": "completed", "config": cfg.to_dict(), "data": {"fingerprint": state.fingerprint},
                  "members": [{"checkpoint": c, "checkpoint_sha256": file_sha256(c)} for c in checkpoints]}
        (out / "record.json").write_text(json.dumps(record))
        return SimpleNamespace(record_path=out / "record.json")

    monkeypatch.setattr(runs, "evaluate", fake_evaluate)
    monkeypatch.setattr(runs, "get_prepared", lambda *a, **k: SimpleNamespace(fingerprint=state.fingerprint))
    return state


@pytest.fixture()
def checkpoint(tmp_path):
    path = tmp_path / "run" / "last.pt"
    path.parent.mkdir()
    path.write_bytes(b"weights v1")
    return path


def _older(path: Path) -> None:
    """Back-date a file: a cache keyed on modification times would (wrongly) keep its record."""
    os.utime(path, (1_000_000_000, 1_000_000_000))


def test_same_everything_loads_the_record(engine, checkpoint, tmp_path):
    first = nbu.evaluate_or_load("e", [checkpoint], out_dir=tmp_path / "eval", **FIELDS)
    again = nbu.evaluate_or_load("e", [checkpoint], out_dir=tmp_path / "eval", **FIELDS)
    assert engine.calls == 1 and again == first


@pytest.mark.parametrize("change", [
    dict(crops=3), dict(full_res=True), dict(twice_sample=True), dict(dense_sample=True), dict(input_size=64),
    dict(scale_size=64), dict(split="test"), dict(coeffs=(2.0,)), dict(softmax=True), dict(max_videos=2),
    dict(source="video"), dict(batch_size=4), dict(amp="off"),
], ids=lambda d: next(iter(d)))
def test_any_protocol_field_evaluates_again(engine, checkpoint, tmp_path, change):
    nbu.evaluate_or_load("e", [checkpoint], out_dir=tmp_path / "eval", **FIELDS)
    nbu.evaluate_or_load("e", [checkpoint], out_dir=tmp_path / "eval", **{**FIELDS, **change})
    assert engine.calls == 2


def test_new_checkpoint_bytes_evaluate_again(engine, checkpoint, tmp_path):
    nbu.evaluate_or_load("e", [checkpoint], out_dir=tmp_path / "eval", **FIELDS)
    checkpoint.write_bytes(b"weights v2")
    _older(checkpoint)
    nbu.evaluate_or_load("e", [checkpoint], out_dir=tmp_path / "eval", **FIELDS)
    assert engine.calls == 2


def test_other_data_or_members_evaluate_again(engine, checkpoint, tmp_path):
    nbu.evaluate_or_load("e", [checkpoint], out_dir=tmp_path / "eval", **FIELDS)
    engine.fingerprint = "fp-2"  # the prepared data changed
    nbu.evaluate_or_load("e", [checkpoint], out_dir=tmp_path / "eval", **FIELDS)
    assert engine.calls == 2
    nbu.evaluate_or_load("e", [checkpoint, checkpoint], out_dir=tmp_path / "eval", **FIELDS)
    assert engine.calls == 3


def test_unfinished_or_unreadable_record_evaluates_again(engine, checkpoint, tmp_path):
    record = tmp_path / "eval" / "record.json"
    nbu.evaluate_or_load("e", [checkpoint], out_dir=tmp_path / "eval", **FIELDS)
    record.write_text(json.dumps({**json.loads(record.read_text()), "status": "failed"}))
    nbu.evaluate_or_load("e", [checkpoint], out_dir=tmp_path / "eval", **FIELDS)
    record.write_text("{not json")
    nbu.evaluate_or_load("e", [checkpoint], out_dir=tmp_path / "eval", **FIELDS)
    assert engine.calls == 3


@pytest.mark.slow
def test_real_engine_record_round_trip(tmp_path, capsys):
    """The key read back from a record the real engine wrote equals the key computed now."""
    prepared = get_prepared("embedded", tmp_path / "data", size="tiny", progress="off")
    ckpt = tmp_path / "run" / "TSN.pth.tar"
    torch.manual_seed(0)
    net = build_model("TSN", prepared.num_classes, num_segments=2, backbone="resnet_tiny")
    save_official_checkpoint(net, ckpt, epoch=1, best_prec1=0.0)
    fields = dict(dataset="embedded", data_root=str(prepared.root), device="cpu", num_workers=0, progress="off",
                  input_size=32, scale_size=40, max_videos=4)
    first = nbu.evaluate_or_load("TSN_val", [ckpt], out_dir=tmp_path / "eval", **fields)
    again = nbu.evaluate_or_load("TSN_val", [ckpt], out_dir=tmp_path / "eval", **fields)
    printed = capsys.readouterr().out
    assert "evaluating: TSN_val" in printed and "loading evaluation: TSN_val" in printed
    assert again == first and first["members"][0]["checkpoint_sha256"] == file_sha256(ckpt)
    torch.manual_seed(1)
    save_official_checkpoint(build_model("TSN", prepared.num_classes, num_segments=2, backbone="resnet_tiny"),
                             ckpt, epoch=1, best_prec1=0.0)
    nbu.evaluate_or_load("TSN_val", [ckpt], out_dir=tmp_path / "eval", **fields)
    assert capsys.readouterr().out.count("evaluating: TSN_val") == 1


# ------------------------------------------------------------------------- the torchrun launcher
_FAKE_TORCHRUN = textwrap.dedent("""
    # stands in for `python -m torch.distributed.run ... -m pan_lib.train --config RUN.yaml`
    import json, os, signal, subprocess, sys, time
    from pathlib import Path
    mode, run_dir = os.environ["FAKE_MODE"], Path(sys.argv[sys.argv.index("--config") + 1]).parent
    if mode == "stopped":  # a run that stopped on max_minutes: last.pt + a 'stopped' record
        (run_dir / "last.pt").write_bytes(b"ckpt")
        (run_dir / "record.json").write_text(json.dumps({"schema": "pan-workbook/run-record/1", "status": "stopped",
                                                        "message": "max_minutes=1 reached",
                                                        "history": [{"epoch": 1, "val_top1": 50.0}]}))
        print("rank 0: stopped", flush=True)
        sys.exit(0)
    ignore = "signal.signal(signal.SIGTERM, signal.SIG_IGN); " if mode == "stubborn" else ""
    worker = subprocess.Popen([sys.executable, "-c", ignore + "import time; time.sleep(300)"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    (run_dir / "pids.json").write_text(json.dumps([os.getpid(), worker.pid]))
    print("ready", flush=True)
    if mode == "fail":
        sys.exit(3)  # the launcher fails, its worker is left behind
    time.sleep(300)
""")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


@pytest.fixture()
def fake_torchrun(tmp_path, monkeypatch):
    script = tmp_path / "fake_torchrun.py"
    script.write_text(_FAKE_TORCHRUN)
    monkeypatch.setattr(runs, "TORCHRUN", (sys.executable, str(script)))
    monkeypatch.setattr(runs, "STOP_GRACE_SECONDS", 2.0)

    def configure(mode: str):
        monkeypatch.setenv("FAKE_MODE", mode)
        return TrainConfig(run_dir=str(tmp_path / "run"), device="cpu", progress="off")
    return configure


def _pids_when_ready(run_dir: Path) -> list[int]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            return json.loads((run_dir / "pids.json").read_text())
        except (OSError, ValueError):
            time.sleep(0.05)
    raise TimeoutError("the fake torchrun did not start")


@pytest.mark.parametrize("mode", ["hang", "stubborn"])
def test_interrupted_cell_kills_the_whole_torchrun_group(fake_torchrun, mode):
    cfg = fake_torchrun(mode)

    def interrupt():  # what Jupyter's "interrupt kernel" does: SIGINT to the kernel
        _pids_when_ready(cfg.resolved_run_dir)
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        runs.torchrun_train(cfg, 2)
    pids = _pids_when_ready(cfg.resolved_run_dir)
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids), "torchrun or a worker survived the interrupt"


def test_failed_torchrun_leaves_no_worker(fake_torchrun):
    cfg = fake_torchrun("fail")
    with pytest.raises(RuntimeError, match="torchrun exited with 3"):
        runs.torchrun_train(cfg, 2)
    pids = _pids_when_ready(cfg.resolved_run_dir)
    assert not any(_alive(p) for p in pids)


def test_distributed_run_is_never_finished_in_the_kernel(fake_torchrun, monkeypatch, capsys):
    """A torchrun run that stopped on max_minutes stays stopped; the kernel trains nothing, touches no GPU."""
    cfg = fake_torchrun("stopped")

    def forbidden(*args, **kwargs):
        raise AssertionError("called in the kernel on the torchrun path")

    monkeypatch.setattr(runs, "train", forbidden)
    for name in ("is_available", "device_count", "init", "_lazy_init", "set_device", "synchronize"):
        monkeypatch.setattr(torch.cuda, name, forbidden)
    [result] = runs.train_or_load([cfg], nproc_per_node=2)
    assert result.status == "stopped" and result.metrics == [{"epoch": 1, "val_top1": 50.0}]
    assert result.last_checkpoint == cfg.resolved_run_dir / "last.pt" and result.best_checkpoint is None
    out = capsys.readouterr().out
    assert "max_minutes=1 reached" in out and "Re-run this cell" in out and "to resume" in out
