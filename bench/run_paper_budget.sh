#!/usr/bin/env bash
# The paper's MNIST budget on GPUs: `omasgan reproduce --budget paper` (bench/configs/mnist_paper.yaml:
# every normal training image at 32x32, the 256-channel ResNet, 500 epochs in every task) on one GPU
# machine or on a `ray up cluster.yaml` cluster, then its claims table.
#
# UNMEASURED: no GPU was lent to the session that wrote this script, so it has not run on one, and
# its GPU-hours are an ESTIMATE from CPU step costs (bench/paper_budget.py, BENCHMARKS.md "The paper's
# budget: an estimate"), printed first.  Measured here: the config loads and the preflight and the
# estimate run (--dry-run).
#
#   bench/run_paper_budget.sh --data-root /data                                  # one GPU machine
#   bench/run_paper_budget.sh --data-root /data --cluster --storage s3://BUCKET/omasgan   # a ray up cluster
#   bench/run_paper_budget.sh --data-root /data --resume                         # continue after a stop
#   bench/run_paper_budget.sh --data-root /data --dry-run                        # the estimate and the checks only
#
# Options (defaults in brackets):
#   --data-root DIR         a folder with MNIST/raw/ (torchvision's layout) on every node [required]
#   --storage DIR|URI       where the studies are written; a cluster needs a URI every node reaches [./studies]
#   --name NAME             the reproduction's folder under --storage [reproduce-paper]
#   --cluster               join the running Ray cluster (--address auto); default: an embedded Ray here
#   --digits SPEC           held-out digits [0-9]
#   --seeds SPEC            training seeds [the budget's]
#   --gpus-per-unit N       GPUs of one (digit, seed) unit [1]
#   --cpus-per-unit N       CPUs of one unit [4]
#   --cache DIR|URI         the stage cache [<storage>/<name>/cache]
#   --resume                continue the reproduction --name
#   --measure               re-measure the step costs on this machine's CPU first (about 1 CPU-hour)
#   --dry-run               print the estimate, run the preflight, print the command; train nothing
set -euo pipefail

cd "$(dirname "$0")/.."
data_root="" storage="studies" name="reproduce-paper" cluster=0 digits="0-9" seeds="" gpus=1 cpus=4
cache="" resume=0 measure=0 dry_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    --data-root) data_root="$2"; shift 2 ;;
    --storage) storage="$2"; shift 2 ;;
    --name) name="$2"; shift 2 ;;
    --cluster) cluster=1; shift ;;
    --digits) digits="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --gpus-per-unit) gpus="$2"; shift 2 ;;
    --cpus-per-unit) cpus="$2"; shift 2 ;;
    --cache) cache="$2"; shift 2 ;;
    --resume) resume=1; shift ;;
    --measure) measure=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "run_paper_budget.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$data_root" ]; then
  echo "run_paper_budget.sh: --data-root DIR is required (a folder with MNIST/raw/)" >&2
  exit 2
fi
if [ "$cluster" = 1 ] && [ "${storage#*://}" = "$storage" ]; then
  echo "run_paper_budget.sh: --cluster needs a --storage URI every node reaches (e.g. s3://BUCKET/omasgan); got $storage" >&2
  exit 2
fi

# 1. The estimate (GPU-hours are an ESTIMATE: unmeasured on any GPU).
echo "== the paper budget's cost: an ESTIMATE from CPU step costs (no GPU has run it)"
if [ "$measure" = 1 ]; then
  python bench/paper_budget.py --data-root "$data_root"
fi
python bench/paper_budget.py --show --digits-spec "$digits" ${seeds:+--seeds-spec "$seeds"}

# 2. Preflight: the config, the data on every node, the GPUs, the storage.
echo "== preflight"
python - "$data_root" <<'EOF'
import sys
from omasgan.config import OMASGANConfig
from omasgan.run import validate_run
config = OMASGANConfig.load("bench/configs/mnist_paper.yaml").with_overrides({"data.data_root": sys.argv[1]})
validate_run(config)  # the MNIST files, data.image_size = 32 and the resnet's shape: one error line if not
print(f"config: bench/configs/mnist_paper.yaml loads; {config.network.kind} at {config.data.image_size}x"
      f"{config.data.image_size}, {config.task1.epochs} epochs per task")
EOF
address=()
[ "$cluster" = 1 ] && address=(--address auto)
omasgan doctor "${address[@]}" --storage "$storage" --data-root "$data_root" --dataset mnist

# 3. The reproduction (resumable: rerun with --resume after a stop, a preemption or a failed node).
command=(omasgan reproduce --budget paper --data-root "$data_root" --storage "$storage" --name "$name"
         --digits "$digits" --gpus-per-unit "$gpus" --cpus-per-unit "$cpus" "${address[@]}")
[ -n "$seeds" ] && command+=(--seeds "$seeds")
[ -n "$cache" ] && command+=(--cache "$cache")
[ "$resume" = 1 ] && command+=(--resume)
echo "== ${command[*]}"
if [ "$dry_run" = 1 ]; then
  echo "(--dry-run: nothing trained)"
  exit 0
fi
"${command[@]}"
