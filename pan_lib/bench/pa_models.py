"""PA throughput and model forward cost, in one run: ``python -m pan_lib.bench pa_models [--quick]``.

Writes ``results/bench/pa_models.{csv,md,json}`` (provenance included). Sections:

* ``PA``: frame pairs per second at 224x224 for 1 clip (8 segments x 4 frames = 24 pairs) and 8
  clips per call, fp32 and bf16 autocast: our PA (differences convolved first, channels-last,
  chunked) beside the official-style loop (:func:`pan_lib.modules.pa.pa_reference_loop`, NCHW).
* ``forward``: one clip through TSM-R50, PAN RGB-R50, PA-R50 and Lite-R50 at 224x224 (eval,
  inference mode), fp32 and bf16 autocast, channels-last; PA's share of the Lite forward.
* ``train_step``: forward + backward + SGD step per clip of the tiny CPU backbone
  (``resnet_tiny``, 8 segments, 64x64, batch 8), the configuration the embedded workbook trains.
* ``target``: the issue's targets, computed from the rows above (same run): our fp32 PA >= 5x the
  naive loop; a Lite forward <= 1.15x an RGB forward (FLOPs say 1.09x).

Timing: warm-up call(s) excluded, then calls until ``min_seconds`` have passed (at least
``min_repeats``), median per call. Models that are compared (Lite vs RGB) are timed round-robin
(A, B, A, B, ...) so that load from other processes hits both alike. Random inputs: the cost does
not depend on the content. CPU threads: torch's current setting, or ``--threads N`` (then written to
``pa_models_threads<N>.*``); the 1-minute load average before/after is recorded, because on a machine
shared with other jobs two competing threads per process distort times far more than one thread does.
"""
from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import torch

from pan_lib.bench import with_overrides
from pan_lib.engine.speed import synchronize
from pan_lib.flops import count_flops
from pan_lib.models import build_model
from pan_lib.modules.pa import PA, pa_reference_loop
from pan_lib.provenance import provenance, write_table

log = logging.getLogger(__name__)

NAME = "pa_models"
SIZE = 224
NUM_SEGMENTS, FRAMES = 8, 4
PAIRS_PER_CLIP = NUM_SEGMENTS * (FRAMES - 1)


@dataclass
class PAModelsBenchConfig:
    quick: bool = False
    device: str = "cpu"
    size: int = SIZE
    min_seconds: float = 3.0
    min_repeats: int = 3
    warmup: int = 2
    tiny_size: int = 64
    tiny_batch: int = 8
    threads: int = 0  # 0: torch's current setting; >0: set for the run (results go to pa_models_threads<N>.*)

    @classmethod
    def for_mode(cls, quick: bool, **overrides) -> PAModelsBenchConfig:
        return with_overrides(cls(quick=True, min_seconds=0.3, min_repeats=1, warmup=1) if quick else cls(), overrides)


def time_round_robin(fns: Sequence[Callable[[], object]], cfg: PAModelsBenchConfig) -> list[tuple[float, int]]:
    """Median seconds per call of each function, timed alternately; returns [(median, repeats)]."""
    sync = partial(synchronize, cfg.device)
    for fn in fns:
        for _ in range(cfg.warmup):
            fn()
        sync()
    times: list[list[float]] = [[] for _ in fns]
    start_all = time.perf_counter()
    while len(times[0]) < cfg.min_repeats or time.perf_counter() - start_all < cfg.min_seconds * len(fns):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            sync()
            times[i].append(time.perf_counter() - start)
        if len(times[0]) >= 200:
            break
    return [(statistics.median(t), len(t)) for t in times]


def _row(section: str, name: str, precision: str, layout: str, clips: int, size: int, repeats: int,
         seconds: float, **extra) -> dict:
    row = dict(section=section, name=name, precision=precision, layout=layout, clips_per_call=clips, size=size,
               repeats=repeats, ms_per_call=seconds * 1e3, rate=None, unit="", ratio=None, ratio_meaning="",
               gmacs=None)
    row.update(extra)
    return row


def _autocast(device: str, bf16: bool):
    return torch.autocast("cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16, enabled=bf16)


def pa_rows(cfg: PAModelsBenchConfig) -> list[dict]:
    torch.manual_seed(0)
    pa = PA(FRAMES).to(cfg.device).eval()
    w, b = pa.shallow_conv.weight, pa.shallow_conv.bias
    clip = torch.randn(NUM_SEGMENTS * FRAMES, 3, cfg.size, cfg.size, device=cfg.device)  # (T*m, 3, H, W)
    variants = [  # (implementation, precision, clips per call)
        ("official-style loop", "fp32", 1), ("ours", "fp32", 1), ("official-style loop", "bf16", 1),
        ("ours", "bf16", 1), ("official-style loop", "fp32", 8), ("ours", "fp32", 8), ("ours", "bf16", 8),
    ]
    if cfg.quick:
        variants = [v for v in variants if v[2] == 1 or v[0] == "ours"]
    rows = []
    for impl, precision, clips in variants:
        x = clip.repeat(clips, 1, 1, 1)  # (clips*T*m, 3, H, W)
        if impl == "ours":
            x = x.contiguous(memory_format=torch.channels_last)
        bf16 = precision == "bf16"

        def call(x=x, impl=impl, bf16=bf16):
            with torch.inference_mode(), _autocast(cfg.device, bf16):
                if impl == "ours":
                    return pa(x)
                return pa_reference_loop(x, w, b, FRAMES)

        log.info("PA %s %s, %d clip(s)", impl, precision, clips)
        (seconds, repeats), = time_round_robin([call], cfg)
        pairs = PAIRS_PER_CLIP * clips
        rows.append(_row("PA", f"PA, {impl}", precision, "channels_last" if impl == "ours" else "NCHW", clips,
                         cfg.size, repeats, seconds, rate=pairs / seconds, unit="pairs/s"))
    naive = {r["clips_per_call"]: r["rate"] for r in rows if "loop" in r["name"] and r["precision"] == "fp32"}
    for r in rows:
        if r["clips_per_call"] in naive:
            r["ratio"] = r["rate"] / naive[r["clips_per_call"]]
            r["ratio_meaning"] = "pairs/s / official-style loop fp32 (same clips per call)"
    return rows


def forward_rows(cfg: PAModelsBenchConfig) -> list[dict]:
    torch.manual_seed(0)
    models = {name: build_model(mod, 174, num_segments=NUM_SEGMENTS, backbone="resnet50").eval()
              .to(cfg.device, memory_format=torch.channels_last)
              for name, mod in (("TSM-R50", "TSM"), ("PAN RGB-R50", "RGB"), ("PAN PA-R50", "PA"), ("PAN Lite-R50", "Lite"))}
    clips = {name: torch.randn(1, NUM_SEGMENTS * m.new_length * 3, cfg.size, cfg.size, device=cfg.device)
             .contiguous(memory_format=torch.channels_last) for name, m in models.items()}
    gmacs = {name: count_flops(m, cfg.size)["gmacs"] for name, m in models.items()}
    rows = []
    for precision in ("fp32", "bf16"):
        bf16 = precision == "bf16"
        names = list(models)
        calls = []
        for name in names:
            def call(m=models[name], x=clips[name], bf16=bf16):
                with torch.inference_mode(), _autocast(cfg.device, bf16):
                    return m(x)
            calls.append(call)
        lite = models["PAN Lite-R50"]
        lite_clip = clips["PAN Lite-R50"]

        def pa_only(bf16=bf16):
            with torch.inference_mode(), _autocast(cfg.device, bf16):
                return lite.PA(lite_clip)

        log.info("forward R50 models, %s (round-robin)", precision)
        timed = time_round_robin(calls + [pa_only], cfg)
        by_name = dict(zip(names + ["PA only"], timed))
        rgb_s = by_name["PAN RGB-R50"][0]
        for name in names:
            seconds, repeats = by_name[name]
            rows.append(_row("forward", name, precision, "channels_last", 1, cfg.size, repeats, seconds,
                             rate=1 / seconds, unit="clips/s", ratio=seconds / rgb_s,
                             ratio_meaning=f"time / PAN RGB-R50 time (GMACs ratio {gmacs[name] / gmacs['PAN RGB-R50']:.3f})",
                             gmacs=gmacs[name]))
        pa_s, repeats = by_name["PA only"]
        rows.append(_row("forward", "PA inside Lite-R50", precision, "channels_last", 1, cfg.size, repeats, pa_s,
                         rate=PAIRS_PER_CLIP / pa_s, unit="pairs/s", ratio=pa_s / by_name["PAN Lite-R50"][0],
                         ratio_meaning="share of the Lite-R50 forward time"))
    return rows


def train_step_rows(cfg: PAModelsBenchConfig) -> list[dict]:
    rows = []
    for modality in ("TSM", "RGB", "PA", "Lite"):
        torch.manual_seed(0)
        model = build_model(modality, 10, num_segments=NUM_SEGMENTS, backbone="resnet_tiny").to(cfg.device).train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = torch.randn(cfg.tiny_batch, NUM_SEGMENTS * model.new_length * 3, cfg.tiny_size, cfg.tiny_size, device=cfg.device)
        y = torch.randint(0, 10, (cfg.tiny_batch,), device=cfg.device)

        def step(model=model, opt=opt, x=x, y=y):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        log.info("train step %s-resnet_tiny", modality)
        (seconds, repeats), = time_round_robin([step], cfg)
        rows.append(_row("train_step", f"{modality}-resnet_tiny", "fp32", "NCHW", cfg.tiny_batch, cfg.tiny_size,
                         repeats, seconds, rate=cfg.tiny_batch / seconds, unit="clips/s",
                         ratio=seconds * 1e3 / cfg.tiny_batch, ratio_meaning="ms per clip (forward+backward+SGD)"))
    return rows


def target_rows(rows: list[dict]) -> list[dict]:
    """The issue's two targets, from this run's rows."""
    out = []
    for r in rows:
        if r["section"] == "PA" and r["name"] == "PA, ours" and r["precision"] == "fp32" and r.get("ratio"):
            out.append(dict(section="target", name=f"our fp32 PA vs official-style loop ({r['clips_per_call']} clip(s))",
                            ratio=r["ratio"], ratio_meaning="pairs/s ratio", target=">= 5", met=r["ratio"] >= 5))
        if r["section"] == "forward" and r["name"] == "PAN Lite-R50":
            out.append(dict(section="target", name=f"Lite-R50 / RGB-R50 forward time ({r['precision']})",
                            ratio=r["ratio"], ratio_meaning=r["ratio_meaning"], target="<= 1.15",
                            met=r["ratio"] <= 1.15))
    return out


def measure(cfg: PAModelsBenchConfig) -> list[dict]:
    rows = pa_rows(cfg) + forward_rows(cfg) + train_step_rows(cfg)
    return rows + target_rows(rows)


def run(out_dir: Path, quick: bool = False, **overrides) -> list[Path]:
    """Measure and write ``<out_dir>/pa_models.{csv,md,json}`` (``pa_models_threads<N>.*`` with ``threads=N``)."""
    cfg = PAModelsBenchConfig.for_mode(quick, **overrides)
    previous_threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _run(cfg, Path(out_dir), quick)
    finally:
        torch.set_num_threads(previous_threads)


def _run(cfg: PAModelsBenchConfig, out_dir: Path, quick: bool) -> list[Path]:
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    rows = measure(cfg)
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    # the 1-minute load average tells readers whether other processes competed for the cores
    meta = provenance({**asdict(cfg), "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                       "load_avg_1min_before": load_before, "load_avg_1min_after": load_after}, device=cfg.device)
    command = (f"python -m pan_lib.bench.pa_models --threads {cfg.threads}" if cfg.threads
               else f"python -m pan_lib.bench {NAME}") + (" --quick" if quick else "")
    title = (f"PA throughput and PAN model forward cost ({cfg.device}, {torch.get_num_threads()} threads, "
             f"load average {load_before:.1f} -> {load_after:.1f} on {os.cpu_count()} cores)"
             if load_before is not None else f"PA throughput and PAN model forward cost ({cfg.device})")
    stem = f"{NAME}_threads{cfg.threads}" if cfg.threads else NAME
    return write_table(rows, out_dir / stem, title=title, meta=meta, command=command)


def main(argv: list[str] | None = None) -> int:
    """``python -m pan_lib.bench.pa_models [--quick] [--threads N] [--out results/bench]``.

    ``--threads 1`` gives stable ratios on a machine shared with other jobs (two threads that compete
    with other processes for two cores spend their time waiting for each other).
    """
    parser = argparse.ArgumentParser(prog="python -m pan_lib.bench.pa_models", description=main.__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: keep the current setting)")
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for path in run(args.out, quick=args.quick, threads=args.threads):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
