#!/usr/bin/env bash
# SLURM: one training run over NODES x GPUS_PER_NODE GPUs with torchrun + DDP, which saves and
# requeues itself before the time limit.
#   cd <repository> && sbatch scripts/slurm_train.sh run.yaml
#   sbatch --nodes=4 --time=48:00:00 scripts/slurm_train.sh run.yaml
# run.yaml holds TrainConfig fields (python -m pan_lib.train --recipe sthv2/Lite --print-config > run.yaml).
# batch_size in run.yaml is the GLOBAL batch (split over all processes); lr: null scales it linearly;
# resume: auto (the default) continues from <run_dir>/last.pt.
#
# Log: <submit dir>/pan-train-<job id>.out -- a folder that exists at submission (logs/ would not:
# SLURM opens the log before the script runs); a requeued job keeps its id and appends to it.
# Time limit: 10 minutes before it SLURM sends USR1 to this script (--signal=B:USR1@600), which
# passes it to every training process (they save last.pt at the next step and stop as "stopped"),
# waits for them, and requeues the job; the requeued job resumes from last.pt. A second guard:
# max_minutes = the job's time left minus MARGIN_MINUTES (15), should the signal not arrive.
# Environment: PYTHON (.venv/bin/python), GPUS_PER_NODE (nvidia-smi -L), PORT (a free one near
# 20000 + job id % 10000 on the head node), NUM_WORKERS (the config's), MARGIN_MINUTES.
#SBATCH --job-name=pan-train
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1            # one torchrun launcher per node; it starts one process per GPU
#SBATCH --gres=gpu:8
#SBATCH --cpus-per-task=64
#SBATCH --time=24:00:00
#SBATCH --output=%x-%j.out             # in the submit dir (exists at submission)
#SBATCH --open-mode=append             # a requeued job appends to its log instead of overwriting it
#SBATCH --requeue                      # preempted or requeued jobs come back and resume from last.pt
#SBATCH --signal=B:USR1@600            # USR1 to this script 10 minutes before the time limit
set -euo pipefail

CONFIG=${1:?usage: sbatch scripts/slurm_train.sh run.yaml}
cd "${SLURM_SUBMIT_DIR:-.}"
PYTHON=${PYTHON:-.venv/bin/python}
GPUS_PER_NODE=${GPUS_PER_NODE:-$(nvidia-smi -L | wc -l)}
HEAD_NODE=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | sed -n 1p)  # sed reads all: no SIGPIPE under pipefail
MARGIN_MINUTES=${MARGIN_MINUTES:-15}
say() { echo "[slurm_train.sh $(date +%FT%T)] $*"; }

# A free TCP port on this host -- the batch script runs on the head node, where torchrun's c10d
# rendezvous listens: the first free one from 20000 + job id % 10000, so two jobs sharing a head
# node do not collide.
free_port() {
    "$PYTHON" - "$SLURM_JOB_ID" <<'EOF'
import socket, sys
base = 20000 + int(sys.argv[1]) % 10000
for port in range(base, base + 500):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("", port))
        except OSError:
            continue
        print(port)
        break
else:
    sys.exit(f"no free port in {base}..{base + 499}")
EOF
}

# Minutes left before the job's time limit (squeue %L: [D-]HH:MM:SS, MM:SS, UNLIMITED); empty if unknown.
minutes_left() {
    local left days=0 h=0 m=0 s=0
    left=$(squeue -h -j "$SLURM_JOB_ID" -o %L 2>/dev/null | sed -n 1p) || return 0
    [[ $left =~ ^([0-9]+-)?([0-9]+:){0,2}[0-9]+$ ]] || return 0
    if [[ $left == *-* ]]; then days=${left%%-*}; left=${left#*-}; fi
    IFS=: read -r -a parts <<< "$left"
    case ${#parts[@]} in
        3) h=${parts[0]}; m=${parts[1]}; s=${parts[2]} ;;
        2) m=${parts[0]}; s=${parts[1]} ;;
        1) s=${parts[0]} ;;
    esac
    echo $(( (10#$days * 24 + 10#$h) * 60 + 10#$m + 10#$s / 60 ))
}

PORT=${PORT:-$(free_port)}
EXTRA=()
LEFT=$(minutes_left)
if [[ -n $LEFT ]] && (( LEFT > MARGIN_MINUTES )); then
    EXTRA+=(--set "max_minutes=$(( LEFT - MARGIN_MINUTES ))")
fi
if [[ -n ${NUM_WORKERS:-} ]]; then
    EXTRA+=(--set "num_workers=$NUM_WORKERS")
fi
RUN_DIR=$("$PYTHON" -c 'import sys; from pan_lib.engine.config import TrainConfig
print(TrainConfig.from_yaml(sys.argv[1]).resolved_run_dir)' "$CONFIG")
say "job $SLURM_JOB_ID (restart ${SLURM_RESTART_COUNT:-0}): $SLURM_JOB_NUM_NODES nodes x $GPUS_PER_NODE GPUs," \
    "rendezvous $HEAD_NODE:$PORT, run $RUN_DIR ${EXTRA[*]}"

# What runs on each node: torchrun with USR1 ignored (it would end it, killing its workers unsaved;
# the workers install their own handler), and USR1 / TERM reaching this wrapper passed on to the
# trainers (torchrun's children) / to torchrun (which sends TERM to them: save and stop too).
# shellcheck disable=SC2016  # expanded on each node by bash -c, not here
NODE_MAIN='trap "" USR1
"$@" &
torchrun=$!
trap "pkill -USR1 -P $torchrun" USR1
trap "kill -TERM $torchrun 2>/dev/null" TERM
while kill -0 "$torchrun" 2>/dev/null; do wait "$torchrun" || true; done
wait "$torchrun"'

# shellcheck disable=SC2317  # called by the trap
on_usr1() {
    say "USR1: the time limit is near; the trainers save last.pt and stop, then the job is requeued"
    kill -USR1 "$SRUN_PID" 2>/dev/null || true   # srun passes it to every node's task
}
trap on_usr1 USR1

# every node runs the same command; torchrun's c10d rendezvous on the head node assigns ranks.
# In the background: bash runs a trap only between commands, and `wait` returns when a signal comes.
srun --kill-on-bad-exit=1 bash -c "$NODE_MAIN" node-main \
    "$PYTHON" -m torch.distributed.run \
    --nnodes="$SLURM_JOB_NUM_NODES" --nproc-per-node="$GPUS_PER_NODE" \
    --rdzv-id="$SLURM_JOB_ID" --rdzv-backend=c10d --rdzv-endpoint="$HEAD_NODE:$PORT" \
    -m pan_lib.train --config "$CONFIG" "${EXTRA[@]}" &
SRUN_PID=$!
while kill -0 "$SRUN_PID" 2>/dev/null; do wait "$SRUN_PID" || true; done
rc=0
wait "$SRUN_PID" || rc=$?

STATUS=$("$PYTHON" -c 'import json, sys
try:
    print(json.load(open(sys.argv[1])).get("status", "unknown"))
except (OSError, ValueError):
    print("unknown")' "$RUN_DIR/record.json")
say "training exited with $rc; run status: $STATUS"
if [[ $rc -eq 0 && $STATUS == stopped ]]; then   # saved on USR1 / max_minutes: continue in a new job
    say "requeueing job $SLURM_JOB_ID; it resumes from $RUN_DIR/last.pt"
    scontrol requeue "$SLURM_JOB_ID"
fi
exit "$rc"
