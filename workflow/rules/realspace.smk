# Real-space moments (MPI inside one job) and the merge of realisation chunks.


rule moments:
    """One W × magnetisation × realisation chunk.  Launch: {resources.mpi} -n {resources.tasks}
    (srun on SLURM, mpiexec from PATH locally).  tasks (ranks) = gpu = the job's gpukpm tasks (at most
    a node's GPUs), runtime and mem_mb from the job's size: moments_resources (common.smk: gpukpm.run.planning.job_resources)."""
    input:
        pilot_plan_input,  # [] unless realspace.pilot (rules/pilot.smk)
    output:
        h5=f"{RES}/realspace/W{{W}}/moments/m{{m}}/c{{c}}.h5",
        cfg=f"{RES}/realspace/W{{W}}/moments/m{{m}}/c{{c}}.yaml",
    params:
        cfg=lambda w: quoted_json(production_job(w)),
    log:
        f"{RES}/logs/moments/W{{W}}_m{{m}}_c{{c}}.log",
    threads: 1
    resources:
        tasks=lambda w: moments_resources(w.c)["tasks"],
        gpu=lambda w: moments_resources(w.c)["gpu"],
        runtime=lambda w: moments_resources(w.c)["runtime"],
        mem_mb=lambda w: moments_resources(w.c)["mem_mb"],
        mpi="mpiexec",
    shell:
        "export OMP_NUM_THREADS=$(( {threads} / {resources.tasks} > 0 ? "
        "{threads} / {resources.tasks} : 1 )); export NUMBA_NUM_THREADS=$OMP_NUM_THREADS; "
        "printf '%s\\n' {params.cfg} > {output.cfg}; "
        "{resources.mpi} -n {resources.tasks} gpukpm moments {output.cfg} -o {output.h5} "
        "> {log} 2>&1"


rule aggregate:
    """Realisation chunks of one W × magnetisation → one ensemble file."""
    input:
        lambda w: expand(f"{RES}/realspace/W{w.W}/moments/m{w.m}/c{{c}}.h5", c=list(CHUNKS)),
    output:
        f"{RES}/realspace/W{{W}}/ensemble/m{{m}}.h5",
    log:
        f"{RES}/logs/aggregate/W{{W}}_m{{m}}.log",
    shell:
        "gpukpm aggregate {input} -o {output} > {log} 2>&1"
