# Pilot (realspace.pilot): per W a short moments job whose per-vector variance sizes the production trace.
#   realspace/W{W}/pilot/moments.h5   pilot moments (realisation 0, the first magnetisation, pilot.trace vectors)
#   realspace/W{W}/pilot/plan.json    `gpukpm plan --pilot`: vectors × realisations for target_rel_error, device-hours
# The moments jobs of that W then take kpm.trace = ⌈samples / realisations⌉ (scripts/job_config.py).

PILOT = RS.get("pilot") if RS_ON else None


def pilot_config(W):
    cfg = moments_config(W, MAG_LABELS[0], next(iter(CHUNKS)))
    cfg["kpm"]["trace"] = PILOT["trace"]
    cfg["kpm"].pop("vectors_per_task", None)
    cfg["system"]["realisations"] = [0]
    if PILOT.get("shape"):
        cfg["system"]["shape"] = list(PILOT["shape"])
    return cfg


def production_config(W):
    """The configuration `gpukpm plan` sizes (a production job, with the reconstruction energies)."""
    cfg = moments_config(W, MAG_LABELS[0], next(iter(CHUNKS)))
    cfg["response"] = {"energies": dict(RS["energies"]), "kernel": config["response"]["kernel"]}
    return cfg


def pilot_plan_input(w):
    return [f"{RES}/realspace/W{w.W}/pilot/plan.json"] if PILOT else []


def pilot_args():
    if not PILOT:
        return ""
    args = f"--realisations {RS['realisations']} --min-trace {PILOT['min_trace']}"
    return args + (f" --max-trace {PILOT['max_trace']}" if PILOT.get("max_trace") else "")


if PILOT:

    rule pilot_moments:
        """The pilot of one W (same rescaling and N as the sweep)."""
        output:
            h5=f"{RES}/realspace/W{{W}}/pilot/moments.h5",
            cfg=f"{RES}/realspace/W{{W}}/pilot/moments.yaml",
        params:
            cfg=lambda w: quoted_json(pilot_config(w.W)),
        log:
            f"{RES}/logs/pilot/W{{W}}_moments.log",
        shell:
            "printf '%s\\n' {params.cfg} > {output.cfg}; {GPUKPM} moments {output.cfg} -o {output.h5} > {log} 2>&1"

    rule pilot_plan:
        """`gpukpm plan` of a production job with the pilot's variance: the samples the target needs."""
        input:
            f"{RES}/realspace/W{{W}}/pilot/moments.h5",
        output:
            json=f"{RES}/realspace/W{{W}}/pilot/plan.json",
            cfg=f"{RES}/realspace/W{{W}}/pilot/production.yaml",
        params:
            cfg=lambda w: quoted_json(production_config(w.W)),
            window="" if RS["peak_window"] is None else f"--peak-window={RS['peak_window'][0]},{RS['peak_window'][1]}",
            target=RS["target_rel_error"],
        log:
            f"{RES}/logs/pilot/W{{W}}_plan.log",
        shell:
            "printf '%s\\n' {params.cfg} > {output.cfg}; {GPUKPM} plan {output.cfg} --pilot {input} "
            "--target-rel-error {params.target} {params.window} --json {output.json} "
            "--calibration {RES}/pilot_calibration.json > {log} 2>&1"
