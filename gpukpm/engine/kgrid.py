r"""k-space grids: wave vectors (nm⁻¹) with quadrature weights, generated lazily in chunks.

A grid is a finite set of wave vectors (nm⁻¹) with quadrature weights
``w_k ≈ d²k/(2π)²`` (nm⁻²), stored as the dimensionless ``ρ_k = Ω w_k`` with a
reference area ``Ω`` (nm²) chosen so that the mean of ρ is 1, i.e.
``Ω = N_k / Σ_k w_k``.  With ``D = n_orb N_k`` (n_orb orbitals per cell) the
moments are

    μ_nm = (1/D) Σ_k ρ_k tr_k[A T_n(H̃) B T_m(H̃)],   so   (D/Ω) μ_nm = Σ_k w_k tr_k[...],

the k integral that :func:`gpukpm.response.kubo.kubo_response` needs (it multiplies by
``D/Ω = Moments.orbital_density``).

* :class:`MonkhorstPack` — the ``L1 × L2`` grid of a lattice (Γ included,
  ``k = (n1/L1) b1 + (n2/L2) b2``, the order of ``Lattice.kgrid``), ρ = 1,
  ``Ω = L1 L2 × cell area``: D and Ω are those of the matching periodic
  supercell, and the moments equal its exact-trace real-space moments.  A
  ``patch`` (a sub-range of n1, n2, wrapping) keeps the same Ω, so a patch
  gives its share of the full-grid response.
* :class:`PolarGrid` — continuum, ``k = centre + r (cos φ, sin φ)`` with r in
  ``[k_min, k_max]`` (midpoint or Gauss-Legendre rule) and ``n_φ`` uniform
  angles ``φ_j = 2π(j + ½)/n_φ``; ``w = r Δr/(2π n_φ)``, ``Σ_k w_k =
  (k_max² − k_min²)/(4π)`` (exact for both rules), ``Ω = 4π N_k/(k_max² − k_min²)``.
* :class:`SquareGrid` — continuum, midpoints of a square lattice of spacing
  ``h = 2k_max/num`` covering ``centre + [−k_max, k_max]²``, all of them
  (``cutoff="square"``) or those with ``|k − centre| < k_max`` (``"disc"``);
  ``w = h²/(2π)²``, ``Σ_k w_k = N_k h²/(2π)²``, ``Ω = (2π/h)²``, ρ = 1.

Points are generated lazily, in index chunks (``points(start, stop)``) or at
given flat indices (``points_at(index)``), so a 14691² grid is never held.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from gpukpm.models.lattice import Lattice, check_shape

__all__ = ["KGrid", "MonkhorstPack", "PolarGrid", "SquareGrid", "make_grid"]


def _positive_int(owner: str, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


def _finite_float(owner: str, name: str, value, positive: bool = False, nonnegative: bool = False) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    ok = ok and math.isfinite(value) and not (positive and value <= 0) and not (nonnegative and value < 0)
    if not ok:
        rule = "> 0" if positive else ">= 0" if nonnegative else "a finite number"
        raise ValueError(f"{owner}: {name} must be finite and {rule} (nm⁻¹), got {value!r}")
    return float(value)


def _centre(owner: str, value) -> tuple[float, float]:
    try:
        c = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        c = np.full(1, np.nan)
    if c.shape != (2,) or not np.all(np.isfinite(c)):
        raise ValueError(f"{owner}: centre must be two finite numbers (k_x, k_y) in nm⁻¹, got {value!r}")
    return float(c[0]), float(c[1])


class KGrid:
    """A finite set of N_k wave vectors with relative weights ρ_k and reference area Ω.

    ``points(start, stop, xp=numpy)`` (and ``points_at(index, xp)``, at flat
    indices) returns ``(k, rho)``: k of shape (n, 2) in nm⁻¹ and ρ_k = Ω w_k
    (n,), w_k the weight of d²k/(2π)² (nm⁻²); the mean of ρ over the grid is 1.
    ``xp`` is the array module the points are made in (CuPy: on the device, so
    a GPU run never builds k or H(k) on the host).
    ``area`` is Ω (nm²), ``num_points`` N_k.
    """

    num_points: int
    area: float

    def points(self, start: int, stop: int, xp=np):
        """Points ``start … stop − 1``: ``points_at(arange(start, stop))``."""
        start, stop = self._check_range(start, stop)
        return self.points_at(xp.arange(start, stop, dtype=np.int64), xp)

    def points_at(self, index, xp=np):
        """``(k, rho)`` of the points with flat indices ``index`` (int64 array of module ``xp``)."""
        raise NotImplementedError

    def to_dict(self) -> dict:
        raise NotImplementedError

    def edge_points(self) -> np.ndarray | None:
        """k points (n, 2) on the outer edge of a continuum grid, None for a periodic grid.

        A continuum grid ends at k_max: above the lowest band energy on that edge a Fermi
        contour leaves the grid (:func:`grid_edge_range`).
        """
        return None

    def check_model(self, model) -> None:
        """Raise if this grid cannot sample ``model`` (default: any model)."""

    def _check_range(self, start: int, stop: int) -> tuple[int, int]:
        if not 0 <= start <= stop <= self.num_points:
            raise ValueError(f"point range [{start}, {stop}) outside [0, {self.num_points}]")
        return int(start), int(stop)


@dataclass(frozen=True, eq=False)
class MonkhorstPack(KGrid):
    """The ``L1 × L2`` Monkhorst-Pack grid (Γ included) of a periodic ``L1 × L2`` supercell.

    ``k = (n1/L1) b1 + (n2/L2) b2``, point index ``i1 c2 + i2`` (c2 points
    along n2), ρ = 1, Ω = ``L1 L2 × cell area``.  ``patch = ((s1, c1), (s2, c2))``
    restricts to ``n1 = (s1 + i1) mod L1``, ``i1 < c1`` and
    ``n2 = (s2 + i2) mod L2``, ``i2 < c2`` (starts may be negative: a patch
    may wrap round the zone); the default is the whole grid, in the order of
    :meth:`gpukpm.models.lattice.Lattice.kgrid`.
    """

    lattice: Lattice
    shape: tuple
    patch: tuple | None = None

    def __post_init__(self):
        if not isinstance(self.lattice, Lattice):
            raise ValueError(f"MonkhorstPack: lattice must be a gpukpm Lattice, got {type(self.lattice).__name__}")
        try:
            shape = check_shape(self.shape)
        except ValueError as exc:
            raise ValueError(f"MonkhorstPack: grid shape {exc}") from None
        object.__setattr__(self, "shape", shape)
        if self.patch is None:
            patch = ((0, shape[0]), (0, shape[1]))
        else:
            try:
                (s1, c1), (s2, c2) = self.patch
            except (TypeError, ValueError):
                raise ValueError(f"MonkhorstPack: patch must be ((start1, count1), (start2, count2)), "
                                 f"got {self.patch!r}") from None
            for name, s in (("patch start1", s1), ("patch start2", s2)):
                if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
                    raise ValueError(f"MonkhorstPack: {name} must be an integer, got {s!r}")
            c1 = _positive_int("MonkhorstPack", "patch count1", c1)
            c2 = _positive_int("MonkhorstPack", "patch count2", c2)
            if c1 > shape[0] or c2 > shape[1]:
                raise ValueError(f"MonkhorstPack: patch counts ({c1}, {c2}) exceed the grid shape {shape}")
            patch = ((int(s1), c1), (int(s2), c2))
        object.__setattr__(self, "patch", patch)

    @property
    def num_points(self) -> int:
        return self.patch[0][1] * self.patch[1][1]

    @property
    def area(self) -> float:
        """``L1 L2 × cell area`` (nm²): the area of the matching supercell."""
        return self.shape[0] * self.shape[1] * self.lattice.cell_area

    def indices(self, start: int, stop: int, xp=np):
        """Integer grid coordinates ``(n1, n2)`` of points ``start … stop − 1``."""
        start, stop = self._check_range(start, stop)
        return self._coordinates(xp.arange(start, stop, dtype=np.int64), xp)

    def _coordinates(self, index, xp):
        (s1, _), (s2, c2) = self.patch
        i1, i2 = xp.divmod(index, c2)
        return (s1 + i1) % self.shape[0], (s2 + i2) % self.shape[1]

    def points_at(self, index, xp=np):
        n1, n2 = self._coordinates(index, xp)
        fractions = xp.stack([n1 / self.shape[0], n2 / self.shape[1]], axis=-1)
        return fractions @ xp.asarray(self.lattice.reciprocal_vectors), xp.ones(n1.shape[0])

    def check_model(self, model) -> None:
        lattice = _model_lattice(model)
        if not (np.allclose(lattice.vectors, self.lattice.vectors, rtol=1e-12, atol=0)
                and lattice.sublattices.shape == self.lattice.sublattices.shape):
            raise ValueError("grid: the MonkhorstPack lattice is not the model's lattice")

    def to_dict(self) -> dict:
        return {"kind": "monkhorst_pack", "shape": list(self.shape), "patch": [list(p) for p in self.patch],
                "lattice": self.lattice.name, "lattice_vectors": self.lattice.vectors.tolist(),
                "num_points": self.num_points, "area": self.area}


@dataclass(frozen=True, eq=False)
class PolarGrid(KGrid):
    """Polar grid ``k = centre + r (cos φ, sin φ)`` for continuum models (nm⁻¹).

    ``num_radial`` values of r in ``[k_min, k_max]``: the midpoint rule
    (``radial_rule="midpoint"``, uniform spacing) or Gauss-Legendre
    (``"gauss"``); ``num_angular`` angles ``φ_j = 2π(j + ½)/n_φ``.  Point index
    ``i_r n_φ + j``.  Weight ``w = r Δr/(2π n_φ)`` (Δr: the rule's weight),
    ``Σ w = (k_max² − k_min²)/(4π)`` (both rules integrate r exactly), so
    ``Ω = 4π N_k/(k_max² − k_min²)`` and ``ρ = Ω w``.
    """

    k_max: float
    num_radial: int
    num_angular: int
    k_min: float = 0.0
    centre: tuple = (0.0, 0.0)
    radial_rule: str = "midpoint"

    def __post_init__(self):
        owner = "PolarGrid"
        object.__setattr__(self, "k_max", _finite_float(owner, "k_max", self.k_max, positive=True))
        object.__setattr__(self, "k_min", _finite_float(owner, "k_min", self.k_min, nonnegative=True))
        if self.k_min >= self.k_max:
            raise ValueError(f"PolarGrid: k_min must be < k_max, got k_min = {self.k_min}, k_max = {self.k_max}")
        object.__setattr__(self, "num_radial", _positive_int(owner, "num_radial", self.num_radial))
        object.__setattr__(self, "num_angular", _positive_int(owner, "num_angular", self.num_angular))
        object.__setattr__(self, "centre", _centre(owner, self.centre))
        if self.radial_rule not in ("midpoint", "gauss"):
            raise ValueError(f"PolarGrid: radial_rule must be 'midpoint' or 'gauss', got {self.radial_rule!r}")

    @property
    def num_points(self) -> int:
        return self.num_radial * self.num_angular

    @property
    def area(self) -> float:
        return 4 * math.pi * self.num_points / (self.k_max**2 - self.k_min**2)

    @cached_property
    def _radial(self) -> tuple[np.ndarray, np.ndarray]:
        """Nodes r_i and weights Δr_i of the radial rule on [k_min, k_max]."""
        half = 0.5 * (self.k_max - self.k_min)
        if self.radial_rule == "gauss":
            x, wx = np.polynomial.legendre.leggauss(self.num_radial)
        else:
            x = -1.0 + (2.0 * np.arange(self.num_radial) + 1.0) / self.num_radial
            wx = np.full(self.num_radial, 2.0 / self.num_radial)
        return self.k_min + half * (x + 1.0), half * wx

    def points_at(self, index, xp=np):
        ir, j = xp.divmod(index, self.num_angular)
        r, dr = (xp.asarray(a) for a in self._radial)
        phi = 2 * math.pi * (j + 0.5) / self.num_angular
        k = xp.stack([self.centre[0] + r[ir] * xp.cos(phi), self.centre[1] + r[ir] * xp.sin(phi)], axis=-1)
        weights = r[ir] * dr[ir] / (2 * math.pi * self.num_angular)
        return k, self.area * weights

    def edge_points(self) -> np.ndarray:
        """The circle |k − centre| = k_max, sampled at max(num_angular, 256) angles."""
        phi = 2 * math.pi * np.arange(max(self.num_angular, 256)) / max(self.num_angular, 256)
        return np.asarray(self.centre) + self.k_max * np.stack([np.cos(phi), np.sin(phi)], axis=-1)

    def to_dict(self) -> dict:
        return {"kind": "polar", "k_max": self.k_max, "num_k": self.num_radial, "num_phi": self.num_angular,
                "k_min": self.k_min, "centre": list(self.centre), "radial_rule": self.radial_rule,
                "num_points": self.num_points, "area": self.area}


@dataclass(frozen=True, eq=False)
class SquareGrid(KGrid):
    """Square grid of spacing ``h = 2k_max/num`` for continuum models (nm⁻¹).

    Midpoints ``centre + (−k_max + (i + ½)h)`` along each axis; ``cutoff="square"``
    keeps all ``num²`` of them, ``"disc"`` those with ``|k − centre| < k_max``.
    Points are ordered row by row (k_y outer, k_x inner).  ``w = h²/(2π)²``,
    ``ρ = 1``, ``Ω = (2π/h)²``, ``Σ w = N_k h²/(2π)²`` (→ k_max²/(4π) for the
    disc as h → 0).
    """

    k_max: float
    num: int
    centre: tuple = (0.0, 0.0)
    cutoff: str = "disc"

    def __post_init__(self):
        owner = "SquareGrid"
        object.__setattr__(self, "k_max", _finite_float(owner, "k_max", self.k_max, positive=True))
        object.__setattr__(self, "num", _positive_int(owner, "num", self.num))
        object.__setattr__(self, "centre", _centre(owner, self.centre))
        if self.cutoff not in ("disc", "square"):
            raise ValueError(f"SquareGrid: cutoff must be 'disc' or 'square', got {self.cutoff!r}")

    @property
    def spacing(self) -> float:
        return 2 * self.k_max / self.num

    def _axis(self, i):
        return -self.k_max + (i + 0.5) * self.spacing

    @cached_property
    def _rows(self) -> tuple[np.ndarray, np.ndarray]:
        """First column index per row and cumulative point counts (num + 1,)."""
        if self.cutoff == "square":
            first = np.zeros(self.num, dtype=np.int64)
        else:
            y2 = self._axis(np.arange(self.num)) ** 2
            half = np.sqrt(np.clip(self.k_max**2 - y2, 0.0, None))
            first = np.clip(np.ceil((self.k_max - half) / self.spacing - 0.5), 0, self.num).astype(np.int64)
            for _ in range(2):  # settle rounding at the boundary: x² + y² < k_max² decides
                inside = self._axis(first) ** 2 + y2 < self.k_max**2
                first = np.where(~inside & (first < self.num), first + 1, first)
                before = np.maximum(first - 1, 0)
                first = np.where((first > 0) & (self._axis(before) ** 2 + y2 < self.k_max**2), before, first)
            first = np.minimum(first, self.num // 2 + self.num % 2)  # empty row: first = ceil(num/2)
        counts = np.maximum(self.num - 2 * first, 0)
        return first, np.concatenate([[0], np.cumsum(counts)])

    @property
    def num_points(self) -> int:
        return int(self._rows[1][-1])

    @property
    def area(self) -> float:
        return (2 * math.pi / self.spacing) ** 2

    def points_at(self, index, xp=np):
        first, cumulative = (xp.asarray(a) for a in self._rows)
        p = index
        row = xp.searchsorted(cumulative, p, side="right") - 1
        col = first[row] + (p - cumulative[row])
        k = xp.stack([self.centre[0] + self._axis(col), self.centre[1] + self._axis(row)], axis=-1)
        return k, xp.ones(p.shape[0])

    def edge_points(self) -> np.ndarray:
        """The circle of radius k_max (``cutoff="disc"``) or the square's boundary, around the centre."""
        n = max(4 * self.num, 256)
        t = 2 * math.pi * np.arange(n) / n
        ring = np.stack([np.cos(t), np.sin(t)], axis=-1)
        if self.cutoff == "square":
            ring = ring / np.abs(ring).max(axis=1, keepdims=True)
        return np.asarray(self.centre) + self.k_max * ring

    def to_dict(self) -> dict:
        return {"kind": "square", "k_max": self.k_max, "num_k": self.num, "centre": list(self.centre),
                "cutoff": self.cutoff, "num_points": self.num_points, "area": self.area}


_GRID_KEYS = {
    "monkhorst_pack": ("shape", "patch"),
    "polar": ("k_max", "num_k", "num_phi", "k_min", "centre", "radial_rule"),
    "square": ("k_max", "num_k", "centre", "cutoff"),
}
_DERIVED_KEYS = ("num_points", "area", "lattice", "lattice_vectors")


def make_grid(model, spec) -> KGrid:
    """The grid of ``spec`` for ``model``: a :class:`KGrid` (checked against the model),
    ``(L1, L2)`` (a lattice model's :class:`MonkhorstPack`) or a mapping —
    ``{kind: "polar", k_max, num_k, num_phi[, k_min, centre, radial_rule]}``,
    ``{kind: "square", k_max, num_k[, centre, cutoff]}`` or
    ``{kind: "monkhorst_pack", shape[, patch]}`` (the configuration-file form,
    also what :meth:`KGrid.to_dict` writes; its derived entries ``num_points``,
    ``area``, ``lattice``, ``lattice_vectors`` must then match).
    """
    if isinstance(spec, KGrid):
        spec.check_model(model)
        return spec
    if spec is None:
        raise ValueError("grid is required: a KGrid, (L1, L2) for a lattice model, or a mapping with 'kind'")
    if isinstance(spec, dict):
        kind = spec.get("kind")
        if kind not in _GRID_KEYS:
            raise ValueError(f"grid: kind must be one of {sorted(_GRID_KEYS)}, got {kind!r}")
        args = {k: v for k, v in spec.items() if k not in ("kind",) + _DERIVED_KEYS}
        unknown = sorted(set(args) - set(_GRID_KEYS[kind]))
        if unknown:
            raise ValueError(f"grid: unknown key(s) {unknown} for kind {kind!r}; allowed: {_GRID_KEYS[kind]}")
        if kind == "polar":
            for key in ("k_max", "num_k", "num_phi"):
                if key not in args:
                    raise ValueError(f"grid: kind 'polar' needs {key!r}")
            grid = PolarGrid(args.pop("k_max"), args.pop("num_k"), args.pop("num_phi"), **args)
        elif kind == "square":
            for key in ("k_max", "num_k"):
                if key not in args:
                    raise ValueError(f"grid: kind 'square' needs {key!r}")
            grid = SquareGrid(args.pop("k_max"), args.pop("num_k"), **args)
        else:
            if "shape" not in args:
                raise ValueError("grid: kind 'monkhorst_pack' needs 'shape'")
            grid = MonkhorstPack(_model_lattice(model), tuple(args["shape"]), args.get("patch"))
        derived = grid.to_dict()
        for key in _DERIVED_KEYS:
            if key in spec and spec[key] != derived[key]:
                raise ValueError(f"grid: {key} = {spec[key]!r} does not match the grid ({derived[key]!r})")
        grid.check_model(model)
        return grid
    return MonkhorstPack(_model_lattice(model), spec)


def _model_lattice(model) -> Lattice:
    lattice = getattr(model, "lattice", None)
    if not isinstance(lattice, Lattice):
        raise ValueError(f"grid: {type(model).__name__} is a continuum model; give a PolarGrid or SquareGrid "
                         "(or a mapping with kind 'polar' or 'square')")
    return lattice
