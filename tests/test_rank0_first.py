"""Shared preparation under torchrun happens once, on rank 0, before the other ranks read it.

Two gloo processes (torch.multiprocessing): `engine.data.rank0_first` runs rank 0's body to the end
before rank 1's starts (the embedded data set is generated inside it), and the train CLI lets only
rank 0 download missing ImageNet weights.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp


def _join(rank: int, world_size: int, folder: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size))
    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=world_size)


def _order_worker(rank: int, world_size: int, folder: str) -> None:
    from pan_lib.engine.data import rank0_first

    _join(rank, world_size, folder)
    marker = Path(folder) / "prepared"
    with rank0_first():
        seen = marker.exists()
        if rank == 0:
            time.sleep(1.0)  # a slow preparation: rank 1 must not start meanwhile
            marker.write_text("done")
    Path(folder, f"rank{rank}.json").write_text(json.dumps({"saw_prepared": seen}))
    dist.destroy_process_group()


def _weights_worker(rank: int, world_size: int, folder: str) -> None:
    import pan_lib.train as cli
    from pan_lib.engine.config import TrainConfig
    from pan_lib.engine.distributed import env_from_os

    _join(rank, world_size, folder)
    cache = Path(folder) / "resnet18-weights.pth"
    calls = Path(folder) / "downloads.txt"

    def fake_download(name, *, pretrained, progress):
        with calls.open("a") as f:
            f.write(f"{os.environ['RANK']}\n")
        time.sleep(1.0)
        cache.write_text("weights")

    cli.build_backbone = fake_download
    cli.imagenet_weights_file = lambda name: cache
    cli.fetch_weights_rank0_first(TrainConfig(backbone="resnet18", pretrained=True, device="cpu"), env_from_os())
    Path(folder, f"rank{rank}.json").write_text(json.dumps({"saw_weights": cache.is_file()}))
    dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("worker", [_order_worker, _weights_worker], ids=["rank0_first", "imagenet_weights"])
def test_rank0_prepares_first(worker, tmp_path):
    mp.spawn(worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    if worker is _order_worker:
        assert reports == [{"saw_prepared": False}, {"saw_prepared": True}]
    else:
        assert (tmp_path / "downloads.txt").read_text() == "0\n"  # only rank 0 downloaded
        assert reports == [{"saw_weights": True}, {"saw_weights": True}]
