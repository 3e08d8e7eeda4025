# Figures and the report.


def kspace_figure_inputs(w):
    """Torque tables of the case and, when m̂ = ẑ (label 00) is computed, its sea and surface responses."""
    out = {"torques": expand(f"{RES}/kspace/{w.case}/torques/{{part}}.csv", part=PARTS)}
    if "00" in MAG_LABELS and {"sea", "surface"} <= set(PARTS):
        out["sea"] = f"{RES}/kspace/{w.case}/response/m00/sea.h5"
        out["surface"] = f"{RES}/kspace/{w.case}/response/m00/surface.h5"
    return out


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
        scripts=SCRIPTS,
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
        scripts=SCRIPTS,
    script:
        "../scripts/figure_disorder.py"


MAIN_PART = "total" if "total" in PARTS else PARTS[0]


def report_inputs(w):
    out = {"kspace": expand(f"{RES}/figures/kspace_{{case}}.png", case=list(CASES)),
           "kfits": expand(f"{RES}/kspace/{{case}}/torques/{MAIN_PART}.csv", case=list(CASES)),
           "fits": expand(f"{RES}/{{s}}/torques/{{part}}.csv", s=all_sets(), part=PARTS)}
    out["responses"] = expand(f"{RES}/{{s}}/response/m{MAG_LABELS[0]}/{MAIN_PART}.h5", s=all_sets())
    if "00" in MAG_LABELS and {"sea", "surface"} <= set(PARTS):  # m̂ = ẑ: Kubo vs Boltzmann per k-space case
        out["kz_sea"] = expand(f"{RES}/kspace/{{c}}/response/m00/sea.h5", c=list(CASES))
        out["kz_surface"] = expand(f"{RES}/kspace/{{c}}/response/m00/surface.h5", c=list(CASES))
    if RS_ON:
        out["disorder"] = f"{RES}/figures/disorder.png"
        out["peaks"] = f"{RES}/peaks.json"
    return out


MATCHED = [c for c in CASES if matched_case(CASES[c])]


rule report:
    input:
        unpack(report_inputs),
    output:
        md=f"{RES}/report.md",
        summary=f"{RES}/summary.json",
    params:
        config=config,
        W=W_VALUES,
        cases=list(CASES),
        part=MAIN_PART,
        mags=MAG_LABELS,
        chunks=CHUNKS,
        sets=all_sets(),
        matched=MATCHED,
        sweep_num_moments=SWEEP_N if RS_ON else None,
        scripts=SCRIPTS,
    script:
        "../scripts/report.py"
