"""Helpers shared by the figure and report scripts: peaks, ratios and sample counts of torque tables."""
from __future__ import annotations

import json
import math
import sys

import numpy as np

from gpukpm.run import io


def read_fit(path) -> dict[str, np.ndarray]:
    """A torque CSV of ``gpukpm torques --csv`` as {column: array} (:func:`gpukpm.run.io.load_torques_csv`)."""
    return io.load_torques_csv(path)


def peak(fit: dict, key: str, window=None) -> dict:
    """Largest |χ| over the energies (inside ``window``): signed value, its standard error, energy."""
    e = fit["energy"]
    mask = np.ones_like(e, dtype=bool) if window is None else (e >= window[0]) & (e <= window[1])
    if not mask.any():
        raise ValueError(f"peak window {window} contains none of the energies {e.min()}..{e.max()}")
    values = np.where(mask, np.abs(fit[key]), -np.inf)
    return _entry(fit, key, int(np.argmax(values)))


def at_energy(fit: dict, key: str, energy: float) -> dict:
    """Value, standard error and one-sample std of ``key`` at the tabulated energy nearest ``energy``."""
    return _entry(fit, key, int(np.argmin(np.abs(fit["energy"] - energy))))


def _entry(fit: dict, key: str, i: int) -> dict:
    """``{value, stderr, std, energy}`` of ``key`` at row ``i`` (NaN for a column the table lacks)."""
    def column(name):
        return float(fit[name][i]) if name in fit else float("nan")

    return {"value": column(key), "stderr": column(f"{key}_stderr"), "std": column(f"{key}_std"),
            "energy": float(fit["energy"][i])}


def samples_needed(p: dict, target_rel_error: float, num_independent: int) -> float:
    """Independent samples for a relative standard error ``target`` on a peak, ``n σ²/(target |value|)²``.

    ``σ = stderr`` of the peak from ``num_independent`` samples (realisations, each with its vectors;
    or the vectors of one realisation), so the result counts samples of the same kind.
    """
    if not (math.isfinite(p["stderr"]) and p["value"] != 0):
        return float("nan")
    return math.ceil(num_independent * (p["stderr"] / (target_rel_error * abs(p["value"]))) ** 2)


def ratio(p: dict, ref: dict) -> dict:
    """|p|/|ref| of two peaks with first-order propagated error."""
    r = abs(p["value"]) / abs(ref["value"])
    rel = math.hypot(p["stderr"] / p["value"], ref["stderr"] / ref["value"])
    return {"value": r, "stderr": r * rel}


def peaks_by_w(fits: dict, window=None) -> dict:
    """{W label: {chi_FL: peak, chi_DL: peak, ratio_FL, ratio_DL}} with W = min(W) as reference."""
    ref_label = min(fits, key=lambda k: fits[k][0])
    out = {}
    for label, (w, fit) in sorted(fits.items(), key=lambda kv: kv[1][0]):
        entry = {"W": w, "chi_FL": peak(fit, "chi_FL", window), "chi_DL": peak(fit, "chi_DL", window)}
        out[label] = entry
    for label, entry in out.items():
        entry["ratio_FL"] = ratio(entry["chi_FL"], out[ref_label]["chi_FL"])
        entry["ratio_DL"] = ratio(entry["chi_DL"], out[ref_label]["chi_DL"])
        entry["reference_W"] = out[ref_label]["W"]
    return out


def dump(path, obj) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    io.atomic_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def log_to_file(path) -> None:
    """Send what the script prints (stdout and stderr, warnings included) to the rule's log file."""
    sys.stdout = sys.stderr = open(path, "w", buffering=1)


def setup_matplotlib():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 120, "savefig.bbox": "tight", "font.size": 9})
    return plt
