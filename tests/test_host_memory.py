"""engine.host_memory: glibc keeps freed blocks for CPU runs unless the user says otherwise."""
from __future__ import annotations

import importlib
import platform

import pytest

from pan_lib.engine import TrainConfig, host_memory, train
from test_engine_hotloop import QUIET
from test_engine_toys import TinyNet, ToyMotion

engine_train = importlib.import_module("pan_lib.engine.train")  # the module (the package binds the function)


@pytest.fixture(autouse=True)
def fresh_setting(monkeypatch):
    for name in (*host_memory.MALLOC_ENV, host_memory.OPT_OUT):
        monkeypatch.delenv(name, raising=False)
    host_memory.keep_freed_memory.cache_clear()
    yield
    host_memory.keep_freed_memory.cache_clear()


def test_applied_once_on_glibc():
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert host_memory.keep_freed_memory() is glibc
    assert host_memory.keep_freed_memory() is glibc  # cached: mallopt runs once per process


def test_opt_out(monkeypatch):
    monkeypatch.setenv(host_memory.OPT_OUT, "0")
    assert host_memory.keep_freed_memory() is False


@pytest.mark.parametrize("name", host_memory.MALLOC_ENV)
def test_malloc_settings_from_the_environment_win(monkeypatch, caplog, name):
    monkeypatch.setenv(name, "1")
    with caplog.at_level("INFO", logger="pan_lib.engine.host_memory"):
        assert host_memory.keep_freed_memory() is False
    assert name in caplog.text


def test_cpu_training_applies_it(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(engine_train, "keep_freed_memory", lambda: calls.append("train") or True)
    cfg = TrainConfig(**QUIET, epochs=1, run_dir=str(tmp_path / "run"))
    train(cfg, model=TinyNet(), train_set=ToyMotion(8), val_set=None, num_classes=3)
    assert calls == ["train"]
