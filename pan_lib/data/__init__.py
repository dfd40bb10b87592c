"""Data: the dataset catalog, prepared folders, sampling, readers, transforms, the clip dataset, the
embedded dataset.

Cheap names (no torch) are imported eagerly; the torch-based ones load on first use.
"""
from __future__ import annotations

from pan_lib._lazy import lazy_getattr
from pan_lib.data.catalog import DATASETS, DatasetInfo, default_data_root, get_dataset_info
from pan_lib.data.lists import AnnotationError, VideoRecord, read_list_file, write_list_file
from pan_lib.data.prepared import DatasetNotPreparedError, PreparedDataset, find_prepared
from pan_lib.data.sampling import clip_frame_indices, dense_offsets, segment_offsets

# public name -> module that defines it (imported on first use: these import torch)
_LAZY = {
    "get_prepared": "pan_lib.data.registry",
    "prepare_embedded": "pan_lib.data.registry",
    "build_dataset": "pan_lib.data.registry",
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
    "decode_videos": "pan_lib.data.decoded",
    "bag_of_frames_baseline": "pan_lib.data.baseline",
}

__all__ = sorted(["AnnotationError", "VideoRecord", "read_list_file", "write_list_file", "DATASETS",
                  "DatasetInfo", "DatasetNotPreparedError", "PreparedDataset", "default_data_root",
                  "find_prepared", "get_dataset_info", "clip_frame_indices", "dense_offsets", "segment_offsets",
                  *_LAZY])

__getattr__ = lazy_getattr(__name__, _LAZY)
