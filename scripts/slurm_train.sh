#!/usr/bin/env bash
# SLURM template: one training run over NODES x GPUS_PER_NODE GPUs with torchrun + DDP.
#   sbatch --nodes=2 --gres=gpu:8 scripts/slurm_train.sh run.yaml
# run.yaml holds TrainConfig fields (python -m pan_lib.train --recipe sthv2/Lite --print-config > run.yaml).
# batch_size in run.yaml is the GLOBAL batch (split over all processes); lr=null scales it linearly.
# Re-submitting the same job resumes from <run_dir>/last.pt (resume: auto).
#SBATCH --job-name=pan-train
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1            # one torchrun launcher per node; it starts one process per GPU
#SBATCH --gres=gpu:8
#SBATCH --cpus-per-task=64
#SBATCH --time=24:00:00
#SBATCH --output=logs/%x-%j.out
#SBATCH --requeue                      # preempted jobs come back and resume from last.pt
set -euo pipefail

CONFIG=${1:?usage: sbatch scripts/slurm_train.sh run.yaml}
GPUS_PER_NODE=${GPUS_PER_NODE:-$(nvidia-smi -L | wc -l)}
HEAD_NODE=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
PORT=${PORT:-29400}
mkdir -p logs
cd "${SLURM_SUBMIT_DIR:-.}"
PYTHON=${PYTHON:-.venv/bin/python}

# every node runs the same command; torchrun's c10d rendezvous on the head node assigns ranks
srun --kill-on-bad-exit=1 "$PYTHON" -m torch.distributed.run \
    --nnodes="$SLURM_JOB_NUM_NODES" --nproc-per-node="$GPUS_PER_NODE" \
    --rdzv-id="$SLURM_JOB_ID" --rdzv-backend=c10d --rdzv-endpoint="$HEAD_NODE:$PORT" \
    -m pan_lib.train --config "$CONFIG" --set num_workers="${NUM_WORKERS:-8}"
