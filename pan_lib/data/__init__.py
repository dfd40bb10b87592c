"""Data: sampling, the dataset registry, readers, transforms, the clip dataset, the embedded dataset.

Cheap names (numpy only) are imported eagerly; torch-based ones load on first use.
"""
from __future__ import annotations

import importlib

from pan_lib.data.lists import AnnotationError, VideoRecord, read_list_file, write_list_file
from pan_lib.data.registry import (DATASETS, DatasetInfo, DatasetNotPreparedError, PreparedDataset,
                                   build_dataset, default_data_root, find_prepared, get_dataset_info,
                                   prepare_embedded)
from pan_lib.data.sampling import clip_frame_indices, dense_offsets, segment_offsets

_LAZY = {
    "VideoClipDataset": "pan_lib.data.dataset",
    "BadInputReport": "pan_lib.data.dataset",
    "ClipTransform": "pan_lib.data.transforms",
    "build_transform": "pan_lib.data.transforms",
    "IMAGENET_MEAN": "pan_lib.data.transforms",
    "IMAGENET_STD": "pan_lib.data.transforms",
    "VideoReadError": "pan_lib.data.video",
    "read_video_frames": "pan_lib.data.video",
    "read_frame_folder": "pan_lib.data.video",
    "probe": "pan_lib.data.video",
    "SyntheticConfig": "pan_lib.data.synthetic",
    "bag_of_frames_baseline": "pan_lib.data.synthetic",
}

__all__ = sorted(["AnnotationError", "VideoRecord", "read_list_file", "write_list_file", "DATASETS",
                  "DatasetInfo", "DatasetNotPreparedError", "PreparedDataset", "build_dataset",
                  "default_data_root", "find_prepared", "get_dataset_info", "prepare_embedded",
                  "clip_frame_indices", "dense_offsets", "segment_offsets", *_LAZY])


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pan_lib.data' has no attribute {name!r}")
