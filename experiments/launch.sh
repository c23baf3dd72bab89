#!/usr/bin/env bash
# Runs one experiments.train command in every process of a multi-host run.
#
#   experiments/launch.sh tpu <tpu-name> <zone> [train flags...]
#       every worker of a TPU pod slice, through gcloud ssh (the checkout must sit at the
#       same path on every worker, here the current directory; --workdir on a shared
#       bucket or filesystem). JAX finds the pod itself.
#   experiments/launch.sh slurm [train flags...]
#       every task of the current SLURM allocation (inside sbatch/salloc), through srun.
#       JAX reads the coordinator from SLURM's environment.
#   experiments/launch.sh local <num_processes> [train flags...]
#       N processes on this machine with an explicit coordinator on localhost; on CPU give
#       each fake devices with XLA_FLAGS=--xla_force_host_platform_device_count=<n>.
#
# All processes get the same flags, so they share one --workdir. The script exits non-zero
# as soon as one process fails (the others are stopped), never leaving orphans behind.
set -euo pipefail

usage() {
  sed -n '2,16p' "$0" >&2
  exit 2
}

[[ $# -ge 1 ]] || usage
mode=$1
shift
python=${PYTHON:-python}

case "$mode" in
  tpu)
    [[ $# -ge 2 ]] || usage
    name=$1 zone=$2
    shift 2
    cmd="cd $(printf %q "$PWD") && $python -m experiments.train --distributed $(printf '%q ' "$@")"
    exec gcloud compute tpus tpu-vm ssh "$name" --zone="$zone" --worker=all --command="$cmd"
    ;;
  slurm)
    [[ -n "${SLURM_JOB_ID:-}" ]] || { echo "error: slurm mode runs inside an sbatch/salloc allocation (SLURM_JOB_ID is not set)" >&2; exit 2; }
    exec srun "$python" -m experiments.train --distributed "$@"
    ;;
  local)
    [[ $# -ge 1 && "$1" =~ ^[1-9][0-9]*$ ]] || { echo "error: local mode needs a process count >= 1, got '${1:-}'" >&2; exit 2; }
    n=$1
    shift
    port=${LEWM_COORDINATOR_PORT:-$($python -c 'import socket; s = socket.socket(); s.bind(("localhost", 0)); print(s.getsockname()[1])')}
    pids=()
    cleanup() { kill "${pids[@]}" 2>/dev/null || true; }
    trap cleanup EXIT INT TERM
    for ((i = 0; i < n; i++)); do
      "$python" -m experiments.train "$@" --coordinator_address="localhost:$port" \
        --num_processes="$n" --process_id="$i" &
      pids+=($!)
    done
    status=0
    for ((k = 0; k < n; k++)); do
      if ! wait -n; then
        status=1
        break
      fi
    done
    exit $status
    ;;
  *)
    usage
    ;;
esac
