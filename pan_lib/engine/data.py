"""Datasets and loaders as the engine uses them: reproducible per clip, resumable, sharded.

`EpochSeeded` makes every clip's random choices (segment offsets, crop, flip) a function of
(seed, epoch, index) alone — not of worker count, worker assignment, batch size, the number of
processes or where a resumed run starts — which is what makes exact resume and the DDP
equivalence hold.
"""
from __future__ import annotations

import logging
import random
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Dataset

from pan_lib.data import registry
from pan_lib.data.flow import flow_dataset_kwargs, flow_fingerprint
from pan_lib.data.prepared import PreparedDataset
from pan_lib.engine import distributed as D
from pan_lib.engine.config import TrainConfig
from pan_lib.models import frames_per_segment

log = logging.getLogger(__name__)


def clip_seed(seed: int, epoch: int, index: int) -> int:
    """A 32-bit seed for one clip of one epoch."""
    return int(np.random.SeedSequence([seed & 0xFFFFFFFF, epoch, index]).generate_state(1)[0])


class EpochSeeded(Dataset):
    """Wrap a dataset so item `i` of epoch `e` is drawn with RNGs seeded from (seed, e, i).

    Datasets that draw from their own generator (they define `set_clip_seed(seed)`, as
    `VideoClipDataset` does) get the clip's seed that way and nothing else is touched. For any other
    dataset, python `random`, numpy's global RNG and torch's CPU RNG are seeded around the inner
    `__getitem__` and restored afterwards, so the training loop's own random stream — dropout — is not
    disturbed when loading happens in the main process (77 us a clip, hence not for our own datasets).
    """

    def __init__(self, dataset: Dataset, seed: int = 0) -> None:
        self.dataset, self.seed, self.epoch = dataset, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Any:  # expose records, classes, ... of the inner dataset
        if name in ("dataset", "seed", "epoch"):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, index: int):
        s = clip_seed(self.seed, self.epoch, int(index))
        setter = getattr(self.dataset, "set_clip_seed", None)
        if setter is not None:  # the dataset draws from its own generator only: the global RNGs stay untouched
            setter(s)
            return self.dataset[index]
        py_state, np_state, torch_state = random.getstate(), np.random.get_state(), torch.get_rng_state()
        try:
            random.seed(s)
            np.random.seed(s)
            # the CPU generator only: torch.manual_seed would also queue a lazy CUDA/XPU/MTIA
            # seeding with a formatted stack trace per clip (slow, and the queue never shrinks)
            torch.default_generator.manual_seed(s)
            return self.dataset[index]
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
            torch.set_rng_state(torch_state)


def unpack_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(clip, label, index) from a batch of `(clip, label, index)` or `(clip, label)` items."""
    if isinstance(batch, (list, tuple)):
        if len(batch) >= 3:
            return batch[0], batch[1], batch[2]
        if len(batch) == 2:
            return batch[0], batch[1], None
    raise ValueError("dataset items must be (clip, label, index) or (clip, label) tuples")


@dataclass
class DataBundle:
    """What the engine needs to know about a data set split."""

    dataset: Dataset
    num_classes: int
    fingerprint: str | None
    classes: list[str] | None
    source: str | None
    root: str | None


def _video_ids(dataset: Dataset) -> list[str] | None:
    """Per-item video ids (folder / file names) when the dataset exposes them."""
    for attr in ("video_ids", "names"):
        ids = getattr(dataset, attr, None)
        if ids is not None:
            return [str(x) for x in (ids() if callable(ids) else ids)]
    records = getattr(dataset, "records", None)
    if records is not None:
        out = []
        for r in records:
            for attr in ("video_id", "path", "name"):
                if hasattr(r, attr):
                    out.append(str(getattr(r, attr)))
                    break
            else:
                return None
        return out
    return None


@contextmanager
def rank0_first() -> Iterator[None]:
    """Run the body on rank 0 first, then on the other ranks (a barrier between): shared preparation
    (generating the embedded data set, downloading ImageNet weights) happens once, the others then
    read what rank 0 wrote. A plain body for a single process or outside a process group."""
    grouped = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    first = not grouped or dist.get_rank() == 0
    if not first:
        D.barrier()  # wait for rank 0 to finish the body
    try:
        yield
    finally:
        if grouped and first:
            D.barrier()  # release the other ranks


def split_fingerprint(prepared: PreparedDataset, modality: str, flow_method: str | None = None) -> str | None:
    """The data fingerprint a `modality` run or evaluation reads: the prepared data's (videos + frame
    source, `X+s56`), plus the flow method and frame size for Flow (`X+s56+flow_dis_s56`: the part
    `pan_lib.data.flow.flow_fingerprint` adds to the videos' fingerprint)."""
    if modality != "Flow":
        return prepared.fingerprint
    flow_part = flow_fingerprint(prepared, flow_method).removeprefix(str(prepared.manifest.get("fingerprint", "")))
    return f"{prepared.fingerprint or ''}{flow_part}"


def merge_fingerprints(fingerprints: Sequence[str | None]) -> str | None:
    """One fingerprint for the data of several members (an RGB + Flow ensemble reads the videos and the
    flow): the shared one, else the videos' fingerprint followed by each member's extra part
    (`X+s56` + `X+s56+flow_dis_s56` -> `X+s56+flow_dis_s56`), else all of them joined by ` | `."""
    unique = list(dict.fromkeys(f for f in fingerprints if f))
    if len(unique) <= 1:
        return unique[0] if unique else None
    base = min(unique, key=len)
    if all(f.startswith(base) for f in unique):
        return base + "".join(f[len(base):] for f in unique if f != base)
    return " | ".join(unique)


def build_split(dataset_name: str, data_root: str | None, split: str, *, modality: str, num_segments: int,
                input_size: int, scale_size: int, source: str = "auto", test_crops: int = 1,
                full_res: bool = False, twice_sample: bool = False, dense_sample: bool = False,
                mode: str | None = None, flow_method: str | None = None) -> DataBundle:
    """A `VideoClipDataset` for one split of a prepared data set (`pan_lib.data.registry`).

    mode defaults to "train" for the train split and "val" otherwise (1 clip, centre crop: the
    official in-training validation); evaluation asks for "test" with its crops/clips. The data set
    comes from `pan_lib.data.registry.get_prepared` (the embedded one is generated on first use).
    A Flow split reads the stored flow of `flow_method` (`python -m data_prep flow`; None: "dis", else
    the only method computed); a missing one raises `DatasetNotPreparedError` with that command. The
    bundle's fingerprint is `split_fingerprint`'s (for Flow it names the flow method).
    """
    with rank0_first():  # under torchrun only rank 0 generates a missing embedded set
        prepared = registry.get_prepared(dataset_name, data_root, source=source, progress="off")
    mode = mode or ("train" if split == "train" else "val")
    extra: dict[str, Any] = dict(flow_dataset_kwargs(prepared, modality, flow_method))  # modality (+ flow_root)
    if mode == "test":
        extra.update(test_crops=test_crops, full_res=full_res, twice_sample=twice_sample)
    if dense_sample:
        extra["dense_sample"] = True
    dataset = registry.build_dataset(prepared, split, num_segments=num_segments,
                                     new_length=frames_per_segment(modality), mode=mode, input_size=input_size,
                                     scale_size=scale_size, **extra)
    return DataBundle(dataset=dataset, num_classes=prepared.num_classes,
                      fingerprint=split_fingerprint(prepared, modality, flow_method),
                      classes=list(prepared.classes), source=prepared.source, root=str(prepared.root))


def train_val_splits(cfg: TrainConfig) -> tuple[DataBundle, DataBundle]:
    """The train and val bundles of a run (its flow method included): what training reads."""
    common = dict(modality=cfg.modality, num_segments=cfg.num_segments, input_size=cfg.input_size,
                  scale_size=cfg.scale_size, source=cfg.source, dense_sample=cfg.dense_sample,
                  flow_method=cfg.flow_method)
    return (build_split(cfg.dataset, cfg.data_root, "train", **common),
            build_split(cfg.dataset, cfg.data_root, "val", **common))
