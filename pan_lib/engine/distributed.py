"""torchrun / DDP helpers and the machine: one process per device, rank-0-only I/O, samplers that
shard exactly, and the device / autocast dtype / memory format a config's "auto" values resolve to.

`python -m pan_lib.train --config run.yaml` runs as one process; under
`torchrun --nproc-per-node N -m pan_lib.train ...` each process reads RANK / LOCAL_RANK / WORLD_SIZE
from the environment (set by torchrun, also for multi-node rendezvous) and joins the process group:
NCCL on CUDA, gloo on the CPU.

Host values and device tensors travel apart. NCCL takes CUDA tensors only, so a CPU tensor sent
through an NCCL group fails (`No backend type associated with device type cpu`). The engine's own
small collectives -- epoch statistics, bad-input counts, save/stop decisions, gathered predictions,
pickled objects -- are host values: `all_reduce_sum`, `all_gather_objects` and `broadcast_object`
send them through `host_group()`, the default group when its backend serves the CPU (gloo) and
otherwise a gloo group made once beside it. That costs no device synchronisation (a CUDA tensor
would have to be read back for the value anyway) and works whatever the default backend serves,
which a CPU-only test imitates with `init_process_group(backend="cuda:gloo")`. DDP's gradient
all-reduce and SyncBatchNorm use the default group (NCCL) with CUDA tensors as before.
"""
from __future__ import annotations

import datetime as _dt
import logging
import os
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------ the machine
def resolve_device(device: str, local_rank: int = 0, world_size: int = 1) -> torch.device:
    """'auto' -> this process's GPU (``cuda:<local_rank>``) when CUDA is available, else the CPU.

    Under torchrun (`world_size` > 1) LOCAL_RANK decides the GPU: an explicit ``cuda:<i>`` would put
    every process on one GPU, so it is replaced by ``cuda:<local_rank>`` with a warning."""
    if device == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError("device='cuda' but CUDA is not available; use device='auto' or 'cpu'")
        if ":" in device and world_size > 1 and torch.device(device).index != local_rank:
            log.warning("device=%r names one GPU, but each of the %d torchrun processes uses the GPU of its "
                        "LOCAL_RANK: this one uses cuda:%d (choose GPUs with CUDA_VISIBLE_DEVICES; "
                        "use device='cuda' or 'auto')", device, world_size, local_rank)
            return torch.device(f"cuda:{local_rank}")
        return torch.device(device if ":" in device else f"cuda:{local_rank}")
    return torch.device(device)


def native_bf16(device: torch.device) -> bool:
    """True when `device` computes bf16 in hardware (CUDA compute capability >= 8.0: Ampere and later).

    `torch.cuda.is_bf16_supported()` alone also says yes where bf16 is only emulated (V100, T4),
    where it is slower than fp16 + a GradScaler."""
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # torch < 2.3: no including_emulation keyword
        return torch.cuda.get_device_capability(device)[0] >= 8


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype: 'auto' is bf16 on GPUs that compute it natively, else fp16 (with a GradScaler,
    which the engine enables for fp16); off on the CPU."""
    if amp == "off":
        return None
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if native_bf16(device) else torch.float16
    return None


def resolve_channels_last(value: Any, device: torch.device) -> bool:
    """'auto' -> channels_last on CUDA only."""
    return device.type == "cuda" if value == "auto" else bool(value)


def autocast_context(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` for `dtype`, or a no-op context when it is None."""
    return torch.autocast(device_type=device.type, dtype=dtype) if dtype is not None else nullcontext()


# ------------------------------------------------------------------------------------ processes
@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def env_from_os() -> DistEnv:
    """Rank layout from torchrun's environment variables (one process when they are absent)."""
    return DistEnv(rank=int(os.environ.get("RANK", 0)), local_rank=int(os.environ.get("LOCAL_RANK", 0)),
                   world_size=int(os.environ.get("WORLD_SIZE", 1)))


def init_distributed(device_type: str, timeout_minutes: float = 30.0) -> DistEnv:
    """Join the process group when launched by torchrun; a no-op for a single process."""
    env = env_from_os()
    if not env.distributed:
        return env
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(env.local_rank)
        dist.init_process_group(backend=backend, timeout=_dt.timedelta(minutes=timeout_minutes))
        log.info("rank %d/%d joined the %s process group", env.rank, env.world_size, backend)
    return env


def shutdown_distributed() -> None:
    global _HOST_GROUP
    if dist.is_available() and dist.is_initialized():
        if _HOST_GROUP is not None:
            dist.destroy_process_group(_HOST_GROUP)
        dist.destroy_process_group()
    _HOST_GROUP = None


_HOST_GROUP: Any = None  # the gloo group beside a default group that cannot take CPU tensors


def _grouped() -> bool:
    return dist.is_available() and dist.is_initialized()


def host_group() -> Any:
    """The group for host (CPU) values: None (= the default group) when its backend serves the CPU,
    else a gloo group over the same ranks, made on the first call (a collective: every rank makes it
    at the same point, which the engine's collectives guarantee)."""
    global _HOST_GROUP
    if "cpu:" in str(dist.get_backend_config()):
        return None
    if _HOST_GROUP is None:
        _HOST_GROUP = dist.new_group(backend="gloo")
        log.debug("made a gloo group for host values beside the %s default group", dist.get_backend_config())
    return _HOST_GROUP


def barrier() -> None:
    if _grouped():
        dist.barrier(group=host_group())  # a host-side barrier: no device work is waited for


def all_reduce_sum(values: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Sum a small vector of host statistics over processes (float64 on the CPU, so counts stay exact).

    A device tensor is read back first (one synchronisation): call it at epoch ends, not per step."""
    t = torch.as_tensor(values, dtype=torch.float64).detach().to("cpu", copy=True)
    if _grouped():
        dist.all_reduce(t, group=host_group())
    return t


def all_gather_objects(obj: Any) -> list[Any]:
    """Every process's `obj` (picklable; tensors on the CPU), in rank order (just `[obj]` for one process)."""
    if not _grouped():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj, group=host_group())
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank `src`'s `obj` on every process (picklable; through the host group)."""
    if not _grouped():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src, group=host_group())
    return box[0]


class EpochShuffleSampler(Sampler[int]):
    """Training sampler: a seeded permutation per epoch, sharded over ranks, resumable mid-epoch.

    The permutation depends only on (seed, epoch) — like `DistributedSampler` with `set_epoch` —
    so rank r takes `perm[r::world_size]` (after dropping the tail that does not fill a global
    batch when `drop_last`). `skip(n)` drops the first n samples of this rank for the current
    epoch: a resumed run continues exactly where the interrupted one stopped, without reading the
    skipped clips.
    """

    def __init__(self, size: int, *, seed: int = 0, rank: int = 0, world_size: int = 1,
                 shuffle: bool = True, global_batch: int | None = None) -> None:
        self.size, self.seed, self.rank, self.world_size = size, seed, rank, world_size
        self.shuffle = shuffle
        # drop the tail that would not fill a whole global batch (official drop_last=True)
        usable = size if global_batch is None else (size // global_batch) * global_batch
        self.per_rank = usable // world_size
        self.epoch = 0
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self._skip = 0

    def skip(self, num_samples: int) -> None:
        self._skip = num_samples

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed * 100003 + self.epoch)
            order = torch.randperm(self.size, generator=g).tolist()
        else:
            order = list(range(self.size))
        mine = order[: self.per_rank * self.world_size][self.rank::self.world_size]
        return iter(mine[self._skip:])

    def __len__(self) -> int:
        return self.per_rank - self._skip


class ShardSampler(Sampler[int]):
    """Evaluation sampler: rank r reads indices r, r + W, ... — no padding, no duplicates."""

    def __init__(self, size: int, rank: int = 0, world_size: int = 1) -> None:
        self.indices = list(range(rank, size, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
