# Reconstruction (kernel, energies, temperature only) and the torque fit.


rule response:
    """Kubo-Bastin spin density of one moments file: total, Fermi sea and Fermi surface (one gpukpm call)."""
    input:
        response_input,
    output:
        h5=[f"{RES}/{{set}}/response/m{{m}}/{p}.h5" for p in PARTS],
        csv=[f"{RES}/{{set}}/response/m{{m}}/{p}.csv" for p in PARTS],
    params:
        energies=lambda w: set_energies(w.set),
        kernel=config["response"]["kernel"],
        temperature=config["response"]["temperature"],
        parts=",".join(PARTS),
        prefix=lambda w: f"{RES}/{w.set}/response/m{w.m}",
    log:
        f"{RES}/logs/response/{{set}}_m{{m}}.log",
    shell:
        "gpukpm response {input} --parts {params.parts} --energies={params.energies} --kernel {params.kernel} "
        "--temperature {params.temperature} -o '{params.prefix}/{{part}}.h5' --csv '{params.prefix}/{{part}}.csv' "
        "> {log} 2>&1"


rule torque_fit:
    """Fit of the six torque parameters over the magnetisations (one per set and part)."""
    input:
        lambda w: expand(f"{RES}/{w.set}/response/m{{m}}/{w.part}.h5", m=MAG_LABELS),
    output:
        h5=f"{RES}/{{set}}/torques/{{part}}.h5",
        csv=f"{RES}/{{set}}/torques/{{part}}.csv",
    log:
        f"{RES}/logs/torques/{{set}}_{{part}}.log",
    shell:
        "gpukpm torques {input} -o {output.h5} --csv {output.csv} > {log} 2>&1"
