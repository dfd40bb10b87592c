"""`pan_lib.data.registry.get_prepared`: the one way to get a prepared dataset."""
from __future__ import annotations

import pytest

from pan_lib.data import DatasetNotPreparedError, get_prepared
from pan_lib.data.registry import get_prepared as registry_get_prepared


def test_exported_from_the_package():
    assert get_prepared is registry_get_prepared


def test_unknown_name_lists_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="valid: embedded, sthv1, sthv2"):
        get_prepared("nope", tmp_path)


def test_missing_real_dataset_names_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("PAN_DATA_ROOT", str(tmp_path))
    with pytest.raises(DatasetNotPreparedError, match=r"python -m data_prep ucf101 --root .* --out "
                                                      + str(tmp_path / "ucf101")):
        get_prepared("ucf101")
    assert not (tmp_path / "ucf101").exists()


def test_missing_embedded_is_generated_once_then_used_as_is(tmp_path, monkeypatch):
    monkeypatch.setenv("PAN_DATA_ROOT", str(tmp_path))
    first = get_prepared("embedded", size="tiny")  # data_root None + tiny -> <root>/embedded_tiny
    assert first.root == (tmp_path / "embedded_tiny").resolve()
    assert first.source == "decoded" and first.num_classes == 12
    assert first.manifest["options"]["generator"]["size"] == "tiny"
    manifest = first.root / "prepared.json"
    stamp = manifest.stat().st_mtime_ns
    # another seed / size does not regenerate what is there
    again = get_prepared("embedded", tmp_path / "embedded_tiny", seed=1, size="default", source="video")
    assert again.fingerprint == first.fingerprint.split("+")[0] and again.source == "video"
    assert manifest.stat().st_mtime_ns == stamp
    # a source the folder lacks is an error with the command that creates it, not a regeneration
    with pytest.raises(DatasetNotPreparedError, match="data_prep extract-frames"):
        get_prepared("embedded", first.root, source="frames")
    assert manifest.stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="unknown size"):
        get_prepared("embedded", first.root, size="huge")
