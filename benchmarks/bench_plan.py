"""`gpukpm plan` of one job of the paper's Fig. 3 (config/paper.yaml): 1024² honeycomb, W = 2.7 eV, N = 1867.

Memory, SpMV count and GEMM flops of the job (the engine's cost model), its time on this CPU from a
calibration measured in this run (`--recalibrate`), and on H100 / H200 / A100 by the roofline of their
nominal figures (gpukpm/run/planning.py).  With `--pilot FILE` the samples and device-hours for
`--target-rel-error`.  Writes `results/plan_paper_<backend>.json` with the machine.

    python benchmarks/bench_plan.py [--L 1024] [--W 2.7] [--trace 1] [--pilot F.h5]
"""
import argparse
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from gpukpm.engine.backend import get_backend  # noqa: E402
from gpukpm.engine.spectrum import sweep_rescaling  # noqa: E402
from gpukpm.run.config import build_model  # noqa: E402
from gpukpm.run.planning import format_plan, plan_job  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--L", type=int, default=1024)
    p.add_argument("--W", type=float, default=2.7)
    p.add_argument("--trace", type=int, default=1)
    p.add_argument("--pilot")
    p.add_argument("--target-rel-error", type=float, default=0.05)
    p.add_argument("--calibration", default=None, help="cache path (default: a fresh one in results/)")
    p.add_argument("--output", default=None)
    args = p.parse_args()
    paper = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())["realspace"]
    model_cfg = dict(paper["model"], magnetization=[0.0, 0.0, 1.0])
    scaling, N = sweep_rescaling(build_model(model_cfg), paper["disorder"], num_moments=paper["num_moments"])
    cfg = {"model": model_cfg, "system": {"shape": [args.L, args.L], "disorder": args.W, "realisations": [0]},
           "kpm": {"num_moments": N, "trace": args.trace, "seed": paper["seed"], "left": ["sx", "sy", "sz"],
                   "right": "jx", "bounds": [scaling.emin, scaling.emax]},
           "response": {"energies": paper["energies"]}, "backend": "cpu"}
    calibration = args.calibration or str(common.RESULTS_DIR / "plan_calibration_cpu.json")
    t0 = time.perf_counter()
    record = plan_job(cfg, target_rel_error=args.target_rel_error, pilot=args.pilot, calibration=calibration,
                      recalibrate=args.calibration is None)
    print(format_plan(record))
    payload = dict(benchmark="bench_plan", date=common.now(), machine=common.machine_info(get_backend("cpu")),
                   job=cfg, plan=record, wall_s=time.perf_counter() - t0, load_at_end=common.load())
    path = common.write_json("plan_paper", "cpu", payload, args.output)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
