# Real-space moments (MPI inside one job) and the merge of realisation chunks.


rule moments:
    """One W × magnetisation × realisation chunk.  Launch: {resources.mpi} -n {resources.tasks}
    (srun on SLURM, the venv's mpiexec locally); GPUs per rank come from the profile."""
    input:
        pilot_plan_input,  # [] unless realspace.pilot (rules/pilot.smk)
    output:
        h5=f"{RES}/realspace/W{{W}}/moments/m{{m}}/c{{c}}.h5",
        cfg=f"{RES}/realspace/W{{W}}/moments/m{{m}}/c{{c}}.yaml",
    params:
        cfg=lambda w: quoted_json(moments_config(w.W, w.m, w.c)),
        pilot=pilot_args(),
    log:
        f"{RES}/logs/moments/W{{W}}_m{{m}}_c{{c}}.log",
    threads: 1
    resources:
        tasks=1,
        mpi=DEFAULT_MPI,
    shell:
        "export PATH={VENV_BIN:q}:$PATH OMP_NUM_THREADS=$(( {threads} / {resources.tasks} > 0 ? "
        "{threads} / {resources.tasks} : 1 )); export NUMBA_NUM_THREADS=$OMP_NUM_THREADS; "
        "{PYTHON} {SCRIPTS}/job_config.py {params.cfg} {input} {params.pilot} > {output.cfg}; "
        "{resources.mpi} -n {resources.tasks} {GPUKPM} moments {output.cfg} -o {output.h5} "
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
        "{GPUKPM} aggregate {input} -o {output} > {log} 2>&1"
