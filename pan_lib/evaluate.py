"""`python -m pan_lib.evaluate CKPT [CKPT ...] [--config eval.yaml] [--FIELD VALUE ...] [--set FIELD=VALUE ...]`
— the official test protocol.

One checkpoint evaluates a single network; several form an ensemble (mean of raw logits, like
`test_models.py --weights a,b,c`). Checkpoints are our `best.pt`/`last.pt` or official `.pth.tar` files.

    python -m pan_lib.evaluate runs/Lite_sthv2*/best.pt --dataset sthv2 --data-root /data/sthv2        # PAN_Lite
    python -m pan_lib.evaluate rgb/best.pt pa/best.pt --dataset sthv2                                 # PAN_Full
    python -m pan_lib.evaluate lite.pt rgb.pt pa.pt --dataset sthv2 --full-res --twice-sample         # PAN_En
    python -m pan_lib.evaluate lite.pt --config eval.yaml --set amp=off --set crops=3
    torchrun --standalone --nproc-per-node 8 -m pan_lib.evaluate lite.pt --dataset sthv2 --dense-sample

Every `EvalConfig` field is an option: `--FIELD VALUE` (underscores as dashes: `--batch-size 4`,
`--input-size 256`, `--source frames`, `--coeffs 1 2 1`; switches `--full-res` / `--no-full-res`),
or `--set FIELD=VALUE` (the reader shared with `pan_lib.train` and the workbook: Python literals or
YAML with only true/false as booleans, so `--set amp=off` stays 'off'). Layers apply in order:
`--config` YAML, then the options, then `--set`; an unknown field is an error listing the valid
ones. Under torchrun each process scores its share of the videos and rank 0 writes the result of
the whole set (the same as one process).

Writes record.json, scores.npz (sorted by video id), confusion.npy, per_class.csv to --out-dir
(default: <first checkpoint's run dir>/eval/<name>).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from typing import Any

from pan_lib.engine import evaluate
from pan_lib.engine.config import ConfigError, EvalConfig, load_yaml_text, parse_overrides, parse_value
from pan_lib.engine.distributed import env_from_os, shutdown_distributed
from pan_lib.models import rename_fields


def _field_option(parser: argparse.ArgumentParser, field: dataclasses.Field) -> None:
    """`--field-name` for one EvalConfig field, typed from its annotation (absent unless given)."""
    flag, annotation = "--" + field.name.replace("_", "-"), str(field.type)
    kw: dict[str, Any] = dict(dest=field.name, default=argparse.SUPPRESS,
                              help=f"EvalConfig.{field.name} (default: {field.default!r})")
    if annotation == "bool":
        kw["action"] = argparse.BooleanOptionalAction
    elif annotation.startswith("tuple[float"):
        kw.update(type=float, nargs="+", metavar="X")
    elif annotation.startswith("int"):
        kw.update(type=int, metavar="N")
    elif annotation.startswith("str"):
        kw.update(metavar="TEXT")
    else:  # Any: 'auto', true, false, ...
        kw.update(type=parse_value, metavar="VALUE")
    parser.add_argument(flag, **kw)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pan_lib.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="*", help="one checkpoint, or the members of an ensemble")
    parser.add_argument("--config", help="YAML file of EvalConfig fields (applied first)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a field (last)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    fields = parser.add_argument_group("EvalConfig fields")
    for field in dataclasses.fields(EvalConfig):
        _field_option(fields, field)
    return parser


def resolve_config(args: argparse.Namespace) -> EvalConfig:
    """--config, then the field options, then --set (old field names mapped in each layer)."""
    values: dict[str, Any] = {}
    if args.config:
        with open(args.config) as f:
            loaded = load_yaml_text(f.read()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{args.config}: expected a mapping of EvalConfig fields")
        values.update(rename_fields(loaded, args.config))
    names = {f.name for f in dataclasses.fields(EvalConfig)}
    values.update({k: v for k, v in vars(args).items() if k in names})
    values.update(rename_fields(parse_overrides(args.set), "--set"))
    return EvalConfig.from_dict(values)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    env = env_from_os()
    logging.basicConfig(level=logging.INFO if env.is_main else logging.WARNING,
                        format=f"[rank {env.rank}] %(levelname)s %(name)s: %(message)s")
    try:
        cfg = resolve_config(args)
    except ValueError as err:  # ConfigError, a bad --set pair, both spellings of a renamed field
        parser.error(str(err))
    if args.print_config:
        print(cfg.to_yaml(), end="")
        return 0
    if not args.checkpoints:
        parser.error("give at least one checkpoint")
    try:
        res = evaluate(args.checkpoints, cfg)
    finally:
        shutdown_distributed()
    if env.is_main:
        print(json.dumps({"model": res.model, "top1": res.top1, "top5": res.top5,
                          "mean_class_acc": res.mean_class_acc, "views": res.views, "videos": len(res.video_ids),
                          "record": str(res.record_path)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
