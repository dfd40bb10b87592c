"""Training checkpoints that cannot be lost: atomic writes and everything needed to resume exactly.

`last.pt` / `best.pt` hold (all plain tensors and containers, so `torch.load(weights_only=True)`
reads them):

    format        "pan-workbook/train-checkpoint/1"
    model         state_dict of the bare model (no `module.` prefix)
    model_meta    the network's ModelConfig fields (pan_lib.models; rebuilt from them) + new_length,
                  input_size, scale_size
    optimizer     SGD state_dict (groups carry lr_mult / decay_mult / name, as officially)
    scaler        GradScaler state_dict (fp16) or None
    epoch         epochs completed; step_in_epoch: batches done in the current epoch (mid-epoch save)
    global_step   optimiser steps so far; best_top1, best_epoch
    epoch_stats   running sums of the current epoch (loss, correct, clips), for a mid-epoch resume
    rng           torch / numpy / python generator states (+ "cuda": the state of this process's own GPU,
                  "cuda_device": its index; files from before held every visible GPU's state)
    history       per-epoch metrics so far
    config        the TrainConfig as a dict

A save writes `<name>.tmp-<pid>`, fsyncs it, renames it over `<name>` and fsyncs the folder: a
process killed during a save leaves the previous file intact (the rename is atomic on POSIX).
"""
from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pan_lib.checkpoints import read_checkpoint  # weights_only, with a clear refusal of unsafe pickles

log = logging.getLogger(__name__)

FORMAT = "pan-workbook/train-checkpoint/1"


def atomic_save(obj: Any, path: Path | str) -> Path:
    """`torch.save(obj)` to a temporary file, fsync, atomic rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temporaries(folder: Path | str) -> list[Path]:
    """Delete `*.tmp-<pid>` files left by saves that were killed (they are never valid)."""
    removed = []
    for tmp in Path(folder).glob("*.tmp-*"):
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    if removed:
        log.info("removed %d unfinished checkpoint file(s) from an interrupted save", len(removed))
    return removed


def load_train_checkpoint(path: Path | str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a training checkpoint safely (weights_only) and check its format."""
    ckpt = read_checkpoint(path, map_location=map_location)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path} is not a pan-workbook training checkpoint (format {FORMAT}); "
                         "official checkpoints load with pan_lib.checkpoints.load_checkpoint")
    return ckpt


# -- random number generator states (as tensors/ints, so weights_only loading works)
def capture_rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": _py_state_to_list(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        # this process's GPU only: reading every GPU's state would make a CUDA context on each of them
        # in every process, and a resume on a machine with fewer GPUs could not use them anyway
        device = torch.cuda.current_device()
        state["cuda"] = [torch.cuda.get_rng_state(device)]
        state["cuda_device"] = device
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    random.setstate(_py_state_from_list(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        _restore_cuda_rng(state)


def _restore_cuda_rng(state: dict[str, Any]) -> None:
    """The saved CUDA generator states, on devices that exist here.

    New files hold the saving process's own GPU: it goes to this process's current GPU (the same
    rank's device on a resume with the same layout). Older files hold one state per GPU the saving
    machine had: those of devices this machine lacks are skipped with a warning."""
    states = list(state["cuda"])
    if "cuda_device" in state:
        torch.cuda.set_rng_state(states[0], torch.cuda.current_device())
        return
    available = torch.cuda.device_count()
    for index, rng in enumerate(states[:available]):
        torch.cuda.set_rng_state(rng, index)
    if len(states) > available:
        log.warning("the checkpoint holds CUDA RNG states of %d GPUs, this machine has %d: restored the first "
                    "%d (dropout on the others continues from fresh states)", len(states), available, available)


def _py_state_to_list(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _py_state_from_list(state: list) -> tuple:
    version, internal, gauss = state
    return (version, tuple(internal), gauss)
