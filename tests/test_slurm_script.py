"""scripts/slurm_train.sh run with stand-ins for SLURM's commands (srun, scontrol, squeue, nvidia-smi)
and for torchrun + one trainer: the log folder exists at submission, logs are appended across
requeues, the rendezvous port is a free one, USR1 before the time limit reaches the trainer (not
torchrun), and a run that stopped -- on USR1 or on max_minutes -- requeues the job; a finished one does not.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "slurm_train.sh"
JOB_ID = 1234

_STUBS = {
    "scontrol": """
        if [ "$1 $2" = "show hostnames" ]; then printf 'node-a\\nnode-b\\n'; exit 0; fi
        echo "$*" >> "$STUB_LOG/scontrol"
    """,
    "squeue": """echo "$FAKE_TIME_LEFT" """,
    "nvidia-smi": """printf 'GPU 0: H100\\nGPU 1: H100\\n'""",
    # srun: drop its own options, run the task (this process then stands for srun: signals reach the task)
    "srun": """
        printf '%s\\n' "$@" > "$STUB_LOG/srun_args"
        while [ "${1#--}" != "$1" ]; do shift; done
        exec "$@"
    """,
    # the interpreter: "-m torch.distributed.run ..." plays torchrun (one trainer child); the rest is real python
    "fake-python": """
        if [ "$1 $2" = "-m torch.distributed.run" ]; then
            printf '%s\\n' "$@" > "$STUB_LOG/torchrun_args"
            "$REAL_PYTHON" "$STUB_DIR/trainer.py" &
            wait $!
            exit $?
        fi
        exec "$REAL_PYTHON" "$@"
    """,
}

_TRAINER = """
    import json, os, signal, time
    from pathlib import Path
    got = []
    signal.signal(signal.SIGUSR1, lambda *_: got.append("USR1"))  # the engine's StopSignals does this
    log, mode = Path(os.environ["STUB_LOG"]), os.environ["FAKE_MODE"]
    (log / "trainer_started").write_text(str(os.getpid()))
    if mode == "usr1":
        deadline = time.time() + 60
        while not got and time.time() < deadline:
            time.sleep(0.05)
    status = {"complete": "completed", "max_minutes": "stopped", "usr1": "stopped" if got else "no signal"}[mode]
    (log / "trainer_signals").write_text(json.dumps(got))
    Path(os.environ["FAKE_RUN_DIR"], "record.json").write_text(json.dumps({"status": status}))
"""


def _sbatch_options() -> dict[str, str]:
    options = {}
    for line in SCRIPT.read_text().splitlines():
        match = re.match(r"#SBATCH\s+--([\w-]+)(?:=(\S+))?", line)
        if match:
            options[match.group(1)] = match.group(2) or ""
    return options


def test_sbatch_header_first_submission_and_requeue():
    options = _sbatch_options()
    assert "/" not in options["output"]  # the submit dir: no folder that must exist before submission
    assert options["open-mode"] == "append" and "requeue" in options
    assert re.fullmatch(r"B:USR1@\d+", options["signal"])  # to the batch script, which forwards it


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_shellcheck_is_clean():
    result = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.fixture()
def cluster(tmp_path):
    stubs, log, run_dir = tmp_path / "bin", tmp_path / "log", tmp_path / "run"
    for folder in (stubs, log, run_dir):
        folder.mkdir()
    for name, body in _STUBS.items():
        (stubs / name).write_text("#!/usr/bin/env bash\n" + textwrap.dedent(body))
        (stubs / name).chmod(0o755)
    (stubs / "trainer.py").write_text(textwrap.dedent(_TRAINER))
    config = tmp_path / "run.yaml"
    config.write_text(f"run_dir: {run_dir}\n")
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}", "PYTHON": str(stubs / "fake-python"),
           "REAL_PYTHON": sys.executable, "PYTHONPATH": str(REPO), "STUB_DIR": str(stubs), "STUB_LOG": str(log),
           "FAKE_RUN_DIR": str(run_dir), "SLURM_JOB_ID": str(JOB_ID), "SLURM_JOB_NODELIST": "node-[a-b]",
           "SLURM_JOB_NUM_NODES": "2", "SLURM_SUBMIT_DIR": str(tmp_path)}
    env.pop("PORT", None)
    return env, config, log


def _run(env: dict, config: Path, log: Path, *, usr1: bool) -> int:
    proc = subprocess.Popen(["bash", str(SCRIPT), str(config)], env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    if usr1:  # what --signal=B:USR1@600 does ten minutes before the limit
        deadline = time.monotonic() + 120
        while not (log / "trainer_started").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
            time.sleep(0.05)
        proc.send_signal(signal.SIGUSR1)
    out, _ = proc.communicate(timeout=120)
    (log / "batch.out").write_text(out)
    return proc.returncode


def test_usr1_before_the_limit_reaches_the_trainer_and_requeues(cluster):
    env, config, log = cluster
    env.update(FAKE_MODE="usr1", FAKE_TIME_LEFT="1-00:00:00")
    base = 20000 + JOB_ID % 10000
    with socket.socket() as busy:  # another job's rendezvous on the head node
        busy.bind(("", base))
        busy.listen()
        rc = _run(env, config, log, usr1=True)
    out = (log / "batch.out").read_text()
    assert rc == 0, out
    assert json.loads((log / "trainer_signals").read_text()) == ["USR1"]  # torchrun survived and passed it on
    assert (log / "scontrol").read_text().split("\n")[0] == f"requeue {JOB_ID}"
    args = (log / "torchrun_args").read_text().split("\n")
    endpoint = next(a for a in args if a.startswith("--rdzv-endpoint="))
    host, port = endpoint.split("=", 1)[1].split(":")
    assert host == "node-a" and base < int(port) < base + 500  # the busy port was skipped
    assert "--nproc-per-node=2" in args and "--nnodes=2" in args and f"--rdzv-id={JOB_ID}" in args
    assert args[args.index("--set") + 1] == f"max_minutes={24 * 60 - 15}"  # the second guard
    assert "requeueing job" in out


@pytest.mark.parametrize("mode,requeued", [("max_minutes", True), ("complete", False)])
def test_requeue_only_a_stopped_run(cluster, mode, requeued):
    env, config, log = cluster
    env.update(FAKE_MODE=mode, FAKE_TIME_LEFT="UNLIMITED")
    assert _run(env, config, log, usr1=False) == 0, (log / "batch.out").read_text()
    assert (log / "scontrol").exists() == requeued
    assert "max_minutes" not in (log / "torchrun_args").read_text()  # no limit known: no guard
