"""Helpers the notebooks share, so that no logic lives only in a notebook (layer 8: above viz).

    from pan_lib import notebook as nbu
    prepared = nbu.ensure_dataset("embedded", small=True)
    results = nbu.train_or_load(nbu.train_configs("embedded", ["Lite"], [0], small=True))

Submodules, one concern each: `environment` (headless or Jupyter, progress, device, repository
paths, seeds, logging set-up), `datasets` (getting the prepared dataset, its statistics and sample
videos), `runs` (configs from recipes, train or load, evaluate or load with a complete cache key,
summaries), `figures` (sampling and training-curve figures, saving them under results/) and
`motion_inputs` (notebook 06: flow per method, extraction and network costs, PA beside flow; imported
as a module: `from pan_lib.notebook import motion_inputs`).
The names below are imported on first use.
"""
from __future__ import annotations

from pan_lib._lazy import lazy_getattr

_EXPORTS = {
    **dict.fromkeys(("HEADLESS_ENV", "is_headless", "resolve_progress", "repo_path", "as_seeds", "pick_device",
                     "setup_notebook"), "pan_lib.notebook.environment"),
    **dict.fromkeys(("embedded_size", "resolve_data_root", "ensure_dataset", "prepare_real", "dataset_statistics",
                     "class_counts", "sample_videos"), "pan_lib.notebook.datasets"),
    **dict.fromkeys(("SMALL_EPOCHS", "SMOKE_BUDGET", "train_configs", "run_status", "train_or_load", "torchrun_train", "load_run",
                     "evaluation_key", "recorded_key", "evaluate_or_load", "record_summary"),
                    "pan_lib.notebook.runs"),
    **dict.fromkeys(("sampling_figure", "history_figure", "save_figure"), "pan_lib.notebook.figures"),
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
