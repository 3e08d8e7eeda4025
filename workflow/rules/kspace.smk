# Pristine k-space moments (one job per case × magnetisation).


rule kspace_moments:
    output:
        h5=f"{RES}/kspace/{{case}}/moments/m{{m}}.h5",
        cfg=f"{RES}/kspace/{{case}}/moments/m{{m}}.yaml",
    params:
        cfg=lambda w: quoted_json(PIPE.kspace_job(w.case, w.m)),
    log:
        f"{RES}/logs/kspace/{{case}}_m{{m}}.log",
    threads: 1
    resources:
        tasks=1,
        gpu=lambda w: kspace_resources(w.case)["gpu"],
        runtime=lambda w: kspace_resources(w.case)["runtime"],
        mem_mb=lambda w: kspace_resources(w.case)["mem_mb"],
    shell:
        "export OMP_NUM_THREADS={threads}; "
        "printf '%s\\n' {params.cfg} > {output.cfg}; "
        "gpukpm kspace {output.cfg} -o {output.h5} > {log} 2>&1"
