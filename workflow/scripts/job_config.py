"""Print a moments job's gpukpm configuration (JSON); with a pilot plan, kpm.trace from its sizing.

    job_config.py CONFIG_JSON [PLAN_JSON --realisations R [--min-trace a] [--max-trace b]]

kpm.trace = clip(⌈samples / R⌉, a, b), samples from `gpukpm plan --pilot` (sizing.samples) and R the
realisations of the whole ensemble (the target error is on the ensemble mean).
"""
import argparse
import json
import math

p = argparse.ArgumentParser()
p.add_argument("config")
p.add_argument("plan", nargs="?")
p.add_argument("--realisations", type=int, default=1)
p.add_argument("--min-trace", type=int, default=1)
p.add_argument("--max-trace", type=int, default=None)
args = p.parse_args()
cfg = json.loads(args.config)
if args.plan:
    with open(args.plan) as fh:
        samples = json.load(fh)["sizing"]["samples"]
if args.plan and samples is not None:  # None: the pilot's peaks are zero; keep the configured trace
    trace = max(args.min_trace, math.ceil(samples / args.realisations))
    if args.max_trace:
        trace = min(trace, args.max_trace)
    cfg["kpm"]["trace"] = int(trace)
print(json.dumps(cfg, sort_keys=True))
