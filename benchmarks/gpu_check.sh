#!/usr/bin/env bash
# One prepared GPU session (at most ≈ 9 minutes on one H200, inside one 600 s device command):
# check correctness against the CPU, time everything, then run the engine suites on the GPU.
# Run from the repository root on the GPU machine:
#   bash benchmarks/gpu_check.sh            (results under benchmarks/results/, copied to $OUT if set)
#
# The device machine reaches no package registry: this script installs nothing. It uses the
# image's python3, which has CuPy (cuda13x), NumPy, SciPy, h5py, Numba, PyYAML and pytest — all
# gpukpm needs at run time — and imports gpukpm from the checkout (PYTHONPATH). Elsewhere, with a
# network, `pip install -e ".[test,gpu]"` first and the same commands run.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 GPUKPM_QUIET=1 MPLBACKEND=Agg
PY=${PYTHON:-python3}
LOG=${OUT:-benchmarks/results}/gpu_check.log
mkdir -p "$(dirname "$LOG")"
exec > >(tee "$LOG") 2>&1
step() { echo; echo "=== $(date -u +%H:%M:%S) $*"; }
step "device"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv || true
"$PY" -c "import cupy, numpy, scipy, numba; print('cupy', cupy.__version__, 'numpy', numpy.__version__, 'numba', numba.__version__)"
"$PY" -m gpukpm info --backend gpu
# 1. correctness first, briefly: the CUDA stencil kernel against CSR (nvcc build, device, self-check)
#    and GPU = CPU moments (those tests skip themselves without a device). Every GPU branch has
#    already run on the CUDA emulator in CI (tests/test_cuda_emulator.py); this checks the device.
step "tests: kernels and GPU = CPU"
timeout 75 "$PY" -m pytest -q -rs -p no:cacheprovider tests/test_gpu_kernels.py tests/test_stencil.py \
  tests/test_backend_dos.py
# 2. throughput, each against its ceiling measured in the same run
step "chebyshev step (CSR and stencil) vs copy bandwidth"
timeout 80 "$PY" benchmarks/bench_chebyshev.py --backend gpu --sizes 256 512 1024 --widths 1 4 16 --min-time 0.5
step "GPU target: 1024², N = 1867, sx sy sz, one vector (< 15 s)"
timeout 120 "$PY" benchmarks/bench_kubo.py --backend gpu --gpu-target
step "k space: the Fig. 2 job (14691², N = 581, bound-selected k points, GEMM on the GPU) vs a 1469² select=all reference"
timeout 120 "$PY" benchmarks/bench_kspace.py --backend gpu
step "one pipeline job on the GPU, time split (512², N = 512, 1001 energies)"
timeout 45 "$PY" benchmarks/bench_job.py --backend gpu --L 512 --N 512 --energies 1001
# 3. the engine suites with the GPU as default backend, stencil route on and off
step "tests: engine on the GPU backend (stencils)"
GPUKPM_BACKEND=gpu timeout 70 "$PY" -m pytest -q -x -p no:cacheprovider tests/test_kubo_engine.py \
  tests/test_kspace.py -k "not lorentzian"
step "tests: engine on the GPU backend (CSR)"
GPUKPM_BACKEND=gpu GPUKPM_GPU_STENCIL=0 timeout 40 "$PY" -m pytest -q -x -p no:cacheprovider tests/test_kubo_engine.py
step "done"
if [ -n "${OUT:-}" ]; then cp benchmarks/results/*gpu*.json "$OUT"/ 2>/dev/null; fi
