# Figures and the report (input functions in common.smk).


rule figures_kspace:
    """chi_FL and chi_DL vs Fermi energy: k-space Kubo-Bastin against semiclassics (Fig. 2b / 4)."""
    input:
        unpack(kspace_figure_inputs),
    output:
        png=f"{RES}/figures/kspace_{{case}}.png",
        pdf=f"{RES}/figures/kspace_{{case}}.pdf",
    params:
        case=lambda w: CASES[w.case],
        parts=PARTS,
    log:
        f"{RES}/logs/figures/kspace_{{case}}.log",
    script:
        "../scripts/figure_kspace.py"


rule figures_disorder:
    """Pristine vs disordered torques and peak ratios vs W with error bars (Fig. 3a/b)."""
    input:
        torques=expand(f"{RES}/realspace/W{{W}}/torques/total.csv", W=list(W_VALUES)),
    output:
        png=f"{RES}/figures/disorder.png",
        pdf=f"{RES}/figures/disorder.pdf",
        ratios_png=f"{RES}/figures/peak_ratios.png",
        ratios_pdf=f"{RES}/figures/peak_ratios.pdf",
        peaks=f"{RES}/peaks.json",
    params:
        W=W_VALUES,
        window=RS["peak_window"] if RS_ON else None,
    log:
        f"{RES}/logs/figures/disorder.log",
    script:
        "../scripts/figure_disorder.py"


rule report:
    input:
        unpack(report_inputs),
    output:
        md=f"{RES}/report.md",
        summary=f"{RES}/summary.json",
    params:
        # the configuration without the one key that may hold an absolute path (moving the checkout reruns nothing)
        config={key: value for key, value in config.items() if key != "gpukpm"},
        W=W_VALUES,
        cases=list(CASES),
        part=MAIN_PART,
        mags=MAG_LABELS,
        chunks=CHUNKS,
        sets=PIPE.result_sets(),
        matched=MATCHED,
        sweep_num_moments=PIPE.sweep_num_moments,
    log:
        f"{RES}/logs/report.log",
    script:
        "../scripts/report.py"
