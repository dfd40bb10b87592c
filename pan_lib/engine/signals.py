"""Stop requests by signal: SIGTERM or SIGUSR1 -> save `last.pt` at the next step boundary and stop.

A batch scheduler warns a job before its time limit (SLURM: `--signal=USR1@600`, or the job script
forwarding it to the training processes) and sends SIGTERM on preemption; torchrun forwards SIGTERM
to its workers. The handler only records the signal; the training loop looks at `received` between
steps, saves and returns status "stopped" (resumable, like the `max_minutes` guard). Handlers are
installed in the main thread only (Python's rule) and the previous ones restored on exit.
"""
from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class StopSignals:
    """Context manager: while inside, STOP_SIGNALS set `received` (the signal's name) instead of killing."""

    def __init__(self, signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> None:
        self.signals = signals
        self.received: str | None = None
        self._previous: dict[signal.Signals, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = signal.Signals(signum).name
        log.warning("%s received: saving last.pt at the next step boundary, then stopping", self.received)

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        else:
            log.info("not the main thread: SIGTERM/SIGUSR1 keep their handlers (no save-and-stop on signal)")
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def ignore_in_worker(_worker_id: int) -> None:
    """DataLoader `worker_init_fn`: STOP_SIGNALS sent to the whole process group (a scheduler, a
    terminal) must not kill the loader workers before the trainer has saved; the trainer handles them,
    and the workers end with it (they exit when their parent is gone)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
