#!/usr/bin/env bash
# The prepared device check: one command, at most ≈ 9 minutes on one H100/H200, failing softly.
#
#   bash benchmarks/gpu_check.sh               on the GPU machine, from anywhere in the checkout
#   bash benchmarks/gpu_check.sh --dry-run     anywhere: the same steps on the CPU, tiny sizes, no install,
#                                              device-only steps skipped (tests/test_gpu_check_script.py)
#   bash benchmarks/gpu_check.sh --dry-run --emulate
#                                              the device steps on the CUDA emulator (tests/cuda_emulator)
#
# Steps (each logged with its exit status and time; a failed step never stops the next):
#   1. device     nvidia-smi, the driver's CUDA version
#   2. install    a venv with the system's packages (.venv-gpucheck); gpukpm from this checkout, plus
#                 CuPy with its CUDA libraries only if no working CuPy is there already: extra `gpu`
#                 (cupy-cuda12x[ctk]) or `gpu-cuda13` by the driver's CUDA major; pytest if missing
#   3. info       `gpukpm info --backend gpu` (names a missing CUDA library)
#   4. gpu tests  `pytest -m gpu`: device-only tests (syevjBatched workspace vs the k-space model, fused
#                 CSR kernel, strided cuBLAS GEMM and dotc, stencil kernel, GPU = CPU moments)
#   5. bench      Chebyshev step (CSR fused kernel and stencil) vs copy bandwidth, short
#   6. bench      the GPU target: 1024², N = 1867, sx sy sz, one vector
#   7. bench      k space (Fig. 2 job) — only if time is left
# Results: benchmarks/results/gpu_check.json (steps, exit codes, times, device) and gpu_check.log,
# the benchmarks' own *_gpu.json; copied to $OUT when set.  Exit status: 0 when every step that ran
# passed, 1 otherwise (after all steps ran).  GPU_CHECK_BUDGET_S (default 510) bounds the whole run:
# a step gets at most the time left, and is skipped when less than its minimum is left.
# GPU_CHECK_RESULTS moves the results folder (the tests use a temporary one); PYTHON picks the interpreter.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DRY=0
EMULATE=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY=1 ;;
    --emulate) EMULATE=1 ;;
    *) echo "usage: bash benchmarks/gpu_check.sh [--dry-run [--emulate]]" >&2; exit 2 ;;
  esac
done
RESULTS=${GPU_CHECK_RESULTS:-$ROOT/benchmarks/results}
BUDGET=${GPU_CHECK_BUDGET_S:-510}
mkdir -p "$RESULTS"
LOG=$RESULTS/gpu_check.log
STEPS=$RESULTS/gpu_check.steps.tsv
: > "$STEPS"
exec > >(tee "$LOG") 2>&1
START=$(date +%s)
export PYTHONUNBUFFERED=1 GPUKPM_QUIET=1 MPLBACKEND=Agg
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
BACKEND=gpu
if [ "$DRY" = 1 ]; then
  BACKEND=cpu
  if [ "$EMULATE" = 1 ]; then
    BACKEND=gpu
    export PYTHONPATH="$ROOT/tests/cuda_emulator:$PYTHONPATH"
  fi
fi

# step NAME MIN_S MAX_S [--gpu|--hardware] -- COMMAND...: run with timeout min(MAX_S, time left); record it.
# --gpu: skipped in a dry run unless --emulate; --hardware (nvidia-smi): skipped in every dry run.
step() {
  local name=$1 min=$2 max=$3 device=0
  shift 3
  if [ "${1:-}" = "--gpu" ]; then device=1; shift; fi
  if [ "${1:-}" = "--hardware" ]; then device=2; shift; fi
  [ "${1:-}" = "--" ] && shift
  local left=$(( BUDGET - ($(date +%s) - START) ))
  echo
  echo "=== $(date -u +%H:%M:%S) [$name] (${left}s left) $*"
  if [ "$DRY" = 1 ] && { [ "$device" = 2 ] || { [ "$device" = 1 ] && [ "$EMULATE" = 0 ]; }; }; then
    echo "--- skipped: needs a device (dry run)"
    printf '%s\tskipped\t0\tdry run\n' "$name" >> "$STEPS"
    return 0
  fi
  if [ "$left" -lt "$min" ]; then
    echo "--- skipped: ${left}s left, needs ${min}s"
    printf '%s\tskipped\t0\tout of time\n' "$name" >> "$STEPS"
    return 0
  fi
  local limit=$(( max < left ? max : left ))
  local t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@"
  local rc=$?
  local took=$(( $(date +%s) - t0 ))
  echo "--- [$name] exit $rc after ${took}s (limit ${limit}s)"
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$took" "limit ${limit}s" >> "$STEPS"
  return 0
}

# ---------------------------------------------------------------------------------------------- 1
driver_cuda() { nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9]*\).*/\1/p' | head -1; }
step device 1 20 --hardware -- nvidia-smi --query-gpu=name,memory.total,driver_version,compute_mode --format=csv
echo "driver CUDA major: $(driver_cuda)"

# ---------------------------------------------------------------------------------------------- 2
install() {
  if [ "$DRY" = 1 ]; then echo "dry run: using $PY as it is"; return 0; fi
  "$PY" -m venv --system-site-packages "$ROOT/.venv-gpucheck" || return 1
  local venv_py="$ROOT/.venv-gpucheck/bin/python" pip=(--quiet --disable-pip-version-check)
  if "$venv_py" -c "import cupy; cupy.zeros(1).sum()" 2>/dev/null; then
    echo "CuPy works here already: gpukpm only (no second CuPy next to it)"
    "$venv_py" -m pip install "${pip[@]}" --no-deps -e "$ROOT" || return 1
  else
    local extra=gpu
    [ "$(driver_cuda)" = 13 ] && extra=gpu-cuda13
    echo "pip install -e .[$extra]"
    "$venv_py" -m pip install "${pip[@]}" -e "$ROOT[$extra]" || return 1
  fi
  "$venv_py" -c "import pytest" 2>/dev/null || "$venv_py" -m pip install "${pip[@]}" pytest
}
export DRY ROOT PY
export -f install driver_cuda
step install 30 180 -- bash -c install
if [ "$DRY" = 0 ] && [ -x "$ROOT/.venv-gpucheck/bin/python" ]; then PY="$ROOT/.venv-gpucheck/bin/python"; fi
"$PY" -c "import numpy, scipy; print('python', __import__('sys').version.split()[0], 'numpy', numpy.__version__)" || true

# ---------------------------------------------------------------------------------------------- 3
step info 5 60 -- "$PY" -m gpukpm info --backend "$BACKEND"

# ---------------------------------------------------------------------------------------------- 4
# device-only tests (they skip themselves without a device; on the emulator the real-device ones skip)
step gpu-tests 30 150 --gpu -- "$PY" -m pytest -q -rs -m gpu -p no:cacheprovider tests/test_gpu_device.py \
  tests/test_gpu_kernels.py tests/test_backend_dos.py tests/test_stencil.py

# ---------------------------------------------------------------------------------------------- 5-7
if [ "$DRY" = 1 ]; then
  CHEB=(--sizes 12 --widths 1 2 --min-time 0.01 --copy-bytes 100000)
  KUBO=(--sizes 8 --moments 16 --sigma-L 8 --sigma-N 16 --sigma-energies 5)
  KSPACE=(--grid 60 --reference-grid 30 --num-moments 16)
else
  CHEB=(--sizes 512 1024 --widths 1 4 --min-time 0.3)
  KUBO=(--gpu-target)
  KSPACE=()
fi
step bench-chebyshev 20 90 -- "$PY" benchmarks/bench_chebyshev.py --backend "$BACKEND" "${CHEB[@]}" \
  --output "$RESULTS/chebyshev_${BACKEND}_check.json"
step bench-kubo 30 150 -- "$PY" benchmarks/bench_kubo.py --backend "$BACKEND" "${KUBO[@]}" \
  --output "$RESULTS/kubo_${BACKEND}_check.json"
step bench-kspace 60 120 -- "$PY" benchmarks/bench_kspace.py --backend "$BACKEND" "${KSPACE[@]}" \
  --output "$RESULTS/kspace_${BACKEND}_check.json"

# ---------------------------------------------------------------------------------------------- summary
"$PY" - "$STEPS" "$RESULTS/gpu_check.json" "$DRY" "$EMULATE" "$START" <<'EOF'
import json, subprocess, sys, time
steps_file, out, dry, emulate, start = sys.argv[1:]
steps = []
for line in open(steps_file):
    name, status, seconds, note = line.rstrip("\n").split("\t")
    steps.append({"name": name, "status": status if status == "skipped" else ("ok" if status == "0" else "failed"),
                  "exit": None if status == "skipped" else int(status), "seconds": int(seconds), "note": note})
try:
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True, timeout=20).stdout.strip()
except Exception:
    smi = None
summary = {"dry_run": dry == "1", "emulated": emulate == "1", "device": smi, "steps": steps,
           "failed": [s["name"] for s in steps if s["status"] == "failed"],
           "wall_s": round(time.time() - int(start), 1)}
json.dump(summary, open(out, "w"), indent=2)
print(json.dumps({k: summary[k] for k in ("failed", "wall_s")}))
EOF
rm -f "$STEPS"
if [ -n "${OUT:-}" ]; then cp "$RESULTS"/gpu_check.json "$RESULTS"/gpu_check.log "$RESULTS"/*_check.json "$OUT"/ 2>/dev/null; fi
"$PY" -c "import json, sys; sys.exit(1 if json.load(open('$RESULTS/gpu_check.json'))['failed'] else 0)"
