"""`python -m pan_lib.train --config run.yaml [--set key=value ...]` — one training run.

The same command runs alone or under torchrun (one process per GPU, any number of nodes):

    python -m pan_lib.train --config run.yaml
    torchrun --standalone --nproc-per-node 8 -m pan_lib.train --config run.yaml
    python -m pan_lib.train --recipe sthv2/Lite --set data_root=/data/sthv2 --set batch_size=128

`--set` values are Python literals or YAML where only true/false are booleans
(`--set lr_steps=[20,40]`, `--set amp=off`, `--set progress=off`, `--set resume=false`,
`--set lr=1e-3`): `pan_lib.engine.config.parse_value`, the reader shared with `pan_lib.evaluate`
and the workbook. Unknown keys are an error listing the valid ones. Prints the run directory and
final metrics.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

from pan_lib.backbones import build_backbone, imagenet_weights_file
from pan_lib.engine import train
from pan_lib.engine.config import ConfigError, TrainConfig, load_yaml_text, parse_overrides
from pan_lib.engine.data import rank0_first
from pan_lib.engine.distributed import DistEnv, env_from_os, init_distributed, resolve_device, shutdown_distributed
from pan_lib.engine.recipes import get_recipe
from pan_lib.models import rename_fields


def fetch_weights_rank0_first(cfg: TrainConfig, env: DistEnv) -> None:
    """Under torchrun, join the group and let rank 0 alone download missing ImageNet weights into
    torch's hub cache while the other ranks wait; they then load the file (no simultaneous
    downloads of one file). The engine does the same for a missing embedded data set."""
    if not (env.distributed and cfg.pretrained):
        return
    init_distributed(resolve_device(cfg.device, env.local_rank).type)  # train() reuses the group
    with rank0_first():
        if env.is_main and not imagenet_weights_file(cfg.backbone).is_file():
            build_backbone(cfg.backbone, pretrained=True, progress=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pan_lib.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML file of TrainConfig fields")
    parser.add_argument("--recipe", help="DATASET/MODALITY, e.g. sthv2/Lite or embedded/PA (applied first)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a field")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    args = parser.parse_args(argv)
    env = env_from_os()
    logging.basicConfig(level=logging.INFO if env.is_main else logging.WARNING,
                        format=f"%(asctime)s [rank {env.rank}] %(levelname)s %(name)s: %(message)s")
    try:
        values: dict = {}
        if args.recipe:
            dataset, _, modality = args.recipe.partition("/")
            values.update(get_recipe(dataset, modality))
        if args.config:
            with open(args.config) as f:
                loaded = load_yaml_text(f.read()) or {}
            if not isinstance(loaded, dict):
                raise ConfigError(f"{args.config}: expected a mapping of TrainConfig fields")
            values.update(rename_fields(loaded, args.config))  # each layer's old names first: later layers win
        values.update(rename_fields(parse_overrides(args.set), "--set"))
        cfg = TrainConfig.from_dict(values)
    except ValueError as err:  # ConfigError, or an unknown recipe modality
        parser.error(str(err))
    if args.print_config:
        print(cfg.to_yaml(), end="")
        return 0
    try:
        fetch_weights_rank0_first(cfg, env)
        result = train(cfg)
    finally:
        shutdown_distributed()
    if env.is_main:
        last = result.metrics[-1] if result.metrics else {}
        print(json.dumps({"run_dir": str(result.run_dir), "status": result.status, "record": str(result.record_path),
                          "best_top1": result.best_top1, "final_top1": last.get("val_top1"),
                          "epochs": len(result.metrics)}, indent=1))
    return 0 if result.status in ("completed", "stopped") else 1


if __name__ == "__main__":
    sys.exit(main())
