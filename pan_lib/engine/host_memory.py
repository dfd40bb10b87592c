"""Host memory of CPU runs: keep freed blocks in the process instead of handing them back to the OS.

glibc's malloc serves every block above its mmap threshold (128 KiB at start, raised on its own up to
32 MiB) with a fresh ``mmap`` and returns it with ``munmap`` when it is freed; memory freed at the top of
the heap beyond the trim threshold goes back too. A CPU forward or training step allocates and frees
the same few-MB tensors every step, so each step faults their pages in again: the kernel zeroes every
4 KiB page on first touch, which on the 2-core VMs this workbook is measured on costs as much as the
arithmetic on the tensor.

`keep_freed_memory()` raises glibc's mmap threshold to its maximum (32 MiB on 64-bit systems) and the trim
threshold to 2 GiB with ``mallopt``, so blocks up to 32 MiB come from the heap and are reused from step
to step. ``python -m pan_lib.bench cpu_tuning`` times it against glibc's default and against PyTorch's
transparent huge pages, each in a process of its own (results/bench/cpu_tuning.md). The price: the process keeps up to 2 GiB of freed
heap (its resident size stays near its peak). Values computed are unchanged.

It is skipped when malloc is not glibc's, when the environment already tunes malloc
(``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, ``GLIBC_TUNABLES``: your settings win), and when
``PAN_KEEP_FREED_MEMORY=0``.
"""
from __future__ import annotations

import ctypes
import functools
import logging
import os
import platform

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD_BYTES = 32 * 2**20  # the largest mmap threshold glibc accepts on 64-bit systems
TRIM_THRESHOLD_BYTES = 2**31 - 1  # freed heap kept before trimming (mallopt takes an int)
OPT_OUT = "PAN_KEEP_FREED_MEMORY"  # "0": leave malloc as it is
MALLOC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


@functools.cache
def keep_freed_memory() -> bool:
    """Apply the setting once per process (module docstring); True when it is in effect."""
    if os.environ.get(OPT_OUT, "1") == "0":
        log.info("malloc left as it is (%s=0)", OPT_OUT)
        return False
    tuned = [name for name in MALLOC_ENV if name in os.environ]
    if tuned:
        log.info("malloc left as the environment sets it (%s)", ", ".join(tuned))
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)  # the C library this process already runs on
        applied = (libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
                   and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1)
    except (OSError, AttributeError) as exc:  # no mallopt in this C library
        log.info("malloc left as it is: %s", exc)
        return False
    if applied:
        log.debug("glibc malloc keeps freed blocks up to %d MiB (trim threshold %d MiB)",
                  MMAP_THRESHOLD_BYTES // 2**20, TRIM_THRESHOLD_BYTES // 2**20)
    return applied
