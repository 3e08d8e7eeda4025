# Pilot (realspace.pilot): per W a short moments job whose per-vector variance sizes the production trace.
#   realspace/W{W}/pilot/moments.h5   pilot moments (realisation 0, the first magnetisation, pilot.trace vectors)
#   realspace/W{W}/pilot/plan.json    `gpukpm plan --pilot`: samples for target_rel_error, device-hours
# pilot_plan is a checkpoint: once it has run, the moments jobs of that W are built with
# kpm.trace = gpukpm.run.planning.production_trace(plan, ...) (Pipeline.moments_job(..., trace=)).

if PILOT:

    rule pilot_moments:
        """The pilot of one W (same rescaling and N as the sweep)."""
        output:
            h5=f"{RES}/realspace/W{{W}}/pilot/moments.h5",
            cfg=f"{RES}/realspace/W{{W}}/pilot/moments.yaml",
        params:
            cfg=lambda w: quoted_json(PIPE.pilot_job(w.W)),
        log:
            f"{RES}/logs/pilot/W{{W}}_moments.log",
        shell:
            "printf '%s\\n' {params.cfg} > {output.cfg}; gpukpm moments {output.cfg} -o {output.h5} > {log} 2>&1"

    checkpoint pilot_plan:
        """`gpukpm plan` of a production job with the pilot's variance: the samples the target needs."""
        input:
            f"{RES}/realspace/W{{W}}/pilot/moments.h5",
        output:
            json=f"{RES}/realspace/W{{W}}/pilot/plan.json",
            cfg=f"{RES}/realspace/W{{W}}/pilot/production.yaml",
        params:
            cfg=lambda w: quoted_json(PIPE.plan_job(w.W)),
            window="" if RS["peak_window"] is None else f"--peak-window={RS['peak_window'][0]},{RS['peak_window'][1]}",
            target=RS["target_rel_error"],
            calibration=f"{RES}/pilot_calibration.json",  # this CPU's, measured once (seconds), shared by every W
        log:
            f"{RES}/logs/pilot/W{{W}}_plan.log",
        shell:
            "printf '%s\\n' {params.cfg} > {output.cfg}; gpukpm plan {output.cfg} --pilot {input} "
            "--target-rel-error {params.target} {params.window} --json {output.json} "
            "--calibration {params.calibration} > {log} 2>&1"
