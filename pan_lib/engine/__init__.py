"""Training and evaluation engine: configs, official recipes, train(), evaluate(), run records.

    from pan_lib.engine import TrainConfig, EvalConfig, train, evaluate
    result = train(TrainConfig.from_recipe("embedded", "Lite", seed=1))
    ev = evaluate([result.best_checkpoint], EvalConfig(dataset="embedded"))

`train` and `evaluate` are both functions and submodules; they are imported here so that the
package attributes are the functions (`pan_lib.engine.train.train` stays reachable through
`import pan_lib.engine.train`/`sys.modules`). The rest is imported lazily.
"""
from __future__ import annotations

from pan_lib._lazy import lazy_getattr

from pan_lib.engine.evaluate import EvalResult, evaluate  # noqa: E402  (binds the function over the submodule)
from pan_lib.engine.train import NonFiniteLossError, RunResult, train  # noqa: E402

_EXPORTS = {
    "TrainConfig": "pan_lib.engine.config",
    "EvalConfig": "pan_lib.engine.config",
    "ConfigError": "pan_lib.engine.config",
    "RENAMED_FIELDS": "pan_lib.engine.config",
    "get_recipe": "pan_lib.engine.recipes",
    "RECIPES": "pan_lib.engine.recipes",
    "recipe_table": "pan_lib.engine.recipes",
    "train": "pan_lib.engine.train",
    "RunResult": "pan_lib.engine.train",
    "NonFiniteLossError": "pan_lib.engine.train",
    "evaluate": "pan_lib.engine.evaluate",
    "EvalResult": "pan_lib.engine.evaluate",
    "load_scores": "pan_lib.engine.evaluate",
    "official_param_groups": "pan_lib.engine.optim",
    "build_optimizer": "pan_lib.engine.optim",
    "lr_factor": "pan_lib.engine.optim",
    "SpeedMonitor": "pan_lib.engine.speed",
    "find_records": "pan_lib.engine.records",
    "load_record": "pan_lib.engine.records",
    "build_record": "pan_lib.engine.records",
    "resolve_device": "pan_lib.engine.distributed",
    "keep_freed_memory": "pan_lib.engine.host_memory",
    "export_official": "pan_lib.engine.export",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)


def __dir__():
    return sorted(list(globals()) + __all__)
