"""Validation inputs read once: `pan_lib.engine.loader.CachedBatches` and the trainer's use of it."""
from __future__ import annotations

import torch

from pan_lib.engine import TrainConfig, train
from pan_lib.engine.loader import CachedBatches
from test_engine_toys import TinyNet, ToyMotion


class CountingLoader:
    """A list of (clips uint8, labels, index) batches that counts how often it is iterated."""

    def __init__(self, n_batches: int = 3) -> None:
        g = torch.Generator().manual_seed(0)
        self.batches = [(torch.randint(0, 256, (2, 6, 4, 4), generator=g, dtype=torch.uint8), torch.tensor([0, 1]),
                         torch.tensor([2 * b, 2 * b + 1])) for b in range(n_batches)]
        self.passes = 0

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        self.passes += 1
        return iter(self.batches)


def prepare(clips: torch.Tensor) -> torch.Tensor:
    return clips.float() / 255


def test_second_pass_reuses_the_prepared_batches_without_reading():
    loader = CountingLoader()
    cached = CachedBatches(loader, prepare, budget_mb=1)
    first = list(cached)
    second = list(cached)
    assert loader.passes == 1 and len(cached) == 3
    for (a, la, ia), (b, lb, ib), (raw, lr, ir) in zip(first, second, loader.batches):
        assert a is b and torch.equal(a, prepare(raw)) and torch.equal(la, lr) and torch.equal(ia, ir)


def test_interrupted_pass_keeps_nothing():
    loader = CountingLoader()
    cached = CachedBatches(loader, prepare, budget_mb=1)
    for i, _ in enumerate(cached):  # a caller that stops early (max_val_batches)
        if i == 1:
            break
    assert cached.batches is None
    assert len(list(cached)) == 3 and loader.passes == 2  # read again, in full
    list(cached)
    assert loader.passes == 2  # ...and kept after that complete pass


def test_over_budget_reads_the_loader_every_time():
    loader = CountingLoader()
    one_batch_mb = 2 * 6 * 4 * 4 * 4 / 2**20  # float32 bytes of one prepared batch
    cached = CachedBatches(loader, prepare, budget_mb=2.5 * one_batch_mb)
    assert len(list(cached)) == 3 and len(list(cached)) == 3 and len(list(cached)) == 3
    assert loader.passes == 3 and cached.batches is None and cached.too_big


class ValToy(ToyMotion):
    """ToyMotion with the `mode` attribute a `VideoClipDataset` has: the trainer caches "val" sets."""

    def __init__(self, *args, mode: str = "val", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.mode = mode
        self.reads = 0

    def __getitem__(self, i: int):
        self.reads += 1
        return super().__getitem__(i)


QUIET = dict(lr=0.05, batch_size=4, progress="off", tensorboard=False, device="cpu", count_flops=False,
             num_workers=0, amp="off")


def test_trainer_reads_a_val_set_once_and_validates_the_same(tmp_path):
    runs = {}
    for mode in ("val", "train"):  # "train": not deterministic, so read every epoch
        torch.manual_seed(0)
        val_set = ValToy(8, seed=1, fixed=True, mode=mode)
        cfg = TrainConfig(**QUIET, epochs=3, run_dir=str(tmp_path / mode))
        res = train(cfg, model=TinyNet(), train_set=ToyMotion(16), val_set=val_set, num_classes=3)
        runs[mode] = (val_set.reads, [m["val_top1"] for m in res.metrics], [m["val_loss"] for m in res.metrics])
    assert runs["val"][0] == 8 and runs["train"][0] == 3 * 8
    assert runs["val"][1:] == runs["train"][1:]  # same clips, same model: same validation
