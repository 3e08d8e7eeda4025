#!/usr/bin/env bash
# One prepared GPU session (≈ 10 minutes on one H200): install, check correctness against the CPU,
# then time everything. Run from the repository root on the GPU machine:
#   bash benchmarks/gpu_check.sh            (results under benchmarks/results/ and $OUT if set)
set -uo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-gpu && . .venv-gpu/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e ".[test,gpu]" || python -m pip install -q -e ".[test]" "cupy-cuda12x[ctk]"
export GPUKPM_QUIET=1 MPLBACKEND=Agg
gpukpm info --backend gpu
# 1. correctness: the CUDA stencil kernel against CSR (host build, nvcc build, device), GPU = CPU moments
#    (tests skip themselves without a device), then the engine suites on the GPU (stencil route on)
python -m pytest -q -rs tests/test_gpu_kernels.py tests/test_backend_dos.py tests/test_kubo_engine.py \
  tests/test_kspace.py -k "not lorentzian" 2>&1 | tail -5
GPUKPM_BACKEND=gpu python -m pytest -q -x tests/test_kubo_engine.py tests/test_stencil.py tests/test_engine_tiles.py \
  tests/test_kspace.py -k "not lorentzian" 2>&1 | tail -3
GPUKPM_BACKEND=gpu GPUKPM_GPU_STENCIL=0 python -m pytest -q -x tests/test_kubo_engine.py 2>&1 | tail -2
# 2. throughput
timeout 150 python benchmarks/bench_chebyshev.py --backend gpu --sizes 256 512 1024 --widths 1 4 16 --min-time 1
timeout 240 python benchmarks/bench_kubo.py --backend gpu --gpu-target
timeout 120 python benchmarks/bench_kspace.py --backend gpu
if [ -n "${OUT:-}" ]; then cp benchmarks/results/*gpu*.json "$OUT"/ 2>/dev/null; fi
