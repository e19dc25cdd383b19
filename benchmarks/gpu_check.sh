#!/usr/bin/env bash
# The one command for a machine with an NVIDIA GPU: installs CuPy for the CUDA version found,
# runs the GPU tests and the cupy backend's test suite on the real device (not the CPU
# emulation), then times bench_conv, bench_models and bench_train on CUDA beside PyTorch on
# CUDA. Writes benchmarks/results/cuda-{conv,models,train}.json and cuda-check.json (what
# ran, how long, pass/fail) and the full log in benchmarks/results/cuda-check.log.
# Fits in 10 minutes: each step has a time limit; a failing step does not stop the others,
# and the exit status is 1 if any failed.
#
#   benchmarks/gpu_check.sh
#
# Python: $PYTHON (default python3) when it already imports CuPy and a CUDA build of
# PyTorch that see the GPU (nothing is installed then); otherwise a virtual environment,
# $GPU_CHECK_VENV (default ~/.cache/minicnn-gpu-venv, created with the system's packages
# visible), gets `pip install -e ".[gpu,test]"` (or gpu-cuda13). minicnn is always this
# checkout (PYTHONPATH).
set -uo pipefail
cd "$(dirname "$0")/.."
results=benchmarks/results
mkdir -p "$results"
log="$results/cuda-check.log"
: >"$log"
python=${PYTHON:-python3}
export MINICNN_CUPY_EMULATION=0  # the real CuPy, never the tests' CPU emulation
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
steps_json=""
failed=0

say() { echo "== $*" | tee -a "$log"; }

# step NAME LIMIT_SECONDS COMMAND...: run, log, time, record the outcome
step() {
    local name=$1 limit=$2
    shift 2
    say "$name: $* (limit ${limit}s)"
    local start=$SECONDS
    timeout --signal=INT --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$log"
    local rc=${PIPESTATUS[0]}
    local took=$((SECONDS - start))
    say "$name: exit $rc after ${took}s"
    [ "$rc" -ne 0 ] && failed=1
    steps_json+="${steps_json:+,}{\"step\": \"$name\", \"exit\": $rc, \"seconds\": $took}"
}

# ---- a GPU, and its CUDA version: the driver's (nvidia-smi), else the toolkit's (nvcc)
if ! nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu_check.sh: nvidia-smi finds no NVIDIA GPU; run this on a machine with one" >&2
    exit 2
fi
cuda=$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9]*\).*/\1/p' | head -1)
if [ -z "$cuda" ]; then
    cuda=$(nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9]*\)\..*/\1/p' | head -1)
fi
case "$cuda" in
    12) extra=gpu ;;
    13 | 14) extra=gpu-cuda13 ;;
    *)
        echo "gpu_check.sh: no CUDA 12 or 13 found (nvidia-smi and nvcc report '${cuda:-nothing}');" \
            "this needs an NVIDIA GPU with a CUDA 12 or 13 driver" >&2
        exit 2
        ;;
esac
say "CUDA $cuda: the \"$extra\" extra"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee -a "$log"

# ---- install, unless CuPy and a CUDA PyTorch already work here
ready='import cupy, torch; assert cupy.cuda.runtime.getDeviceCount() > 0; assert torch.cuda.is_available()'
if "$python" -c "$ready" 2>/dev/null; then
    say "using $python's CuPy and PyTorch"
else
    venv=${GPU_CHECK_VENV:-$HOME/.cache/minicnn-gpu-venv}
    [ -x "$venv/bin/python" ] || "$python" -m venv --system-site-packages "$venv" ||
        { say "could not create the virtual environment $venv"; exit 1; }
    python="$venv/bin/python"
    step install 300 "$python" -m pip install --quiet -e ".[$extra,test]"
fi
"$python" -c "$ready" 2>&1 | tee -a "$log" || { say "CuPy or PyTorch cannot see the GPU"; exit 1; }
"$python" -c 'import cupy, torch; print("cupy", cupy.__version__, "torch", torch.__version__,
torch.cuda.get_device_name(0))' 2>&1 | tee -a "$log"

# ---- tests on the device: the GPU-marked tests, then every cupy case of the suite
step "pytest -m gpu" 120 "$python" -m pytest -q -p no:cacheprovider -m gpu -rs
step "pytest cupy backend" 240 "$python" -m pytest -q -p no:cacheprovider -x -k cupy \
    tests/backend tests/nn tests/autograd tests/optim tests/ops

# ---- benchmarks: minicnn's cupy backend beside PyTorch, both on the GPU
step bench_conv 90 "$python" benchmarks/bench_conv.py --device cuda --rounds 5
step bench_models 180 "$python" benchmarks/bench_models.py --device cuda --rounds 1 \
    --steps 5 --only resnet20,resnet18-224,mobilenet_v2,resnet50
step bench_train 90 "$python" benchmarks/bench_train.py --device cuda --rounds 1

gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
cat >"$results/cuda-check.json" <<EOF
{"benchmark": "gpu_check", "gpu": "$gpu", "cuda": "$cuda", "extra": "$extra",
 "date": "$(date -u +%Y-%m-%d)", "failed": $failed, "steps": [$steps_json]}
EOF
say "done in ${SECONDS}s; failed: $failed (see $log and $results/cuda-*.json)"
exit $failed
