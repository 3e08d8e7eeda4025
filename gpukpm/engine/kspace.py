r"""k-space Chebyshev moments of pristine models: k grids, energy window, k-point selection, batched eigh.

A pristine model is diagonal in the Bloch wave vector k, so the trace of the
2D moments (CONVENTIONS "KPM conventions") splits into k points.  With the
eigenbasis ``H(k)|i⟩ = E_i|i⟩`` and ``A_ij = ⟨i|A(k)|j⟩``,

    Tr[A T_n(H̃) B T_m(H̃)] = Σ_k Σ_ij A_ij(k) T_n(Ẽ_j) B_ji(k) T_m(Ẽ_i),   Ẽ = (E − b)/a,

since ``T_n(H̃)|j⟩ = T_n(Ẽ_j)|j⟩``.  For every pair p = (k, i, j) the
coefficient ``c_p = A_ij B_ji`` is complex and the two polynomial factors are
real, so with ``U_np = T_n(Ẽ_j)``, ``V_mp = T_m(Ẽ_i)`` the moments are one real
matrix product ``μ = U diag(c) Vᵀ`` (two DGEMMs per left operator: Re c and
Im c), taken over batches of pairs whose size follows the memory budget, or a
type-1 NUFFT (see "Moment routes").  For
Hermitian A and B, ``c_ji = conj(c_ij)``: only the pairs i ≤ j are formed,

    X_nm = Σ_k ρ_k Σ_{i≤j} γ_ij c_ij T_n(Ẽ_j) T_m(Ẽ_i),   γ_ii = ½, γ_{i<j} = 1,
    μ_nm = (X + Xᴴ)_nm / D,

which halves the work and makes μ Hermitian to round-off.

Grids (:mod:`gpukpm.engine.kgrid`)
----------------------------------
A grid is a finite set of wave vectors (nm⁻¹) with quadrature weights ``w_k ≈ d²k/(2π)²``
stored as ``ρ_k = Ω w_k``; with ``D = n_orb N_k`` the moments are
``μ_nm = (1/D) Σ_k ρ_k tr_k[A T_n(H̃) B T_m(H̃)]``, so ``(D/Ω) μ_nm = Σ_k w_k tr_k[...]``.

Energy window
-------------
With ``window = (E_lo, E_hi)`` only the eigenstates (k, i) with
``E_lo ≤ E_i(k) ≤ E_hi`` are kept: with P the projector on those states the
trace becomes ``Tr[P A P T_n(H̃) P B P T_m(H̃)]`` (pairs with a state outside
are dropped; degenerate levels are kept or dropped together, so P is a
spectral projector).  D and Ω keep their full-grid values.  The operators
are only built and transformed at k points with at least one kept state.

k-point selection
-----------------
With a window, ``select="bound"`` (default) diagonalises only the k points
that can hold a kept state.  Every model gives ``spectral_bound(k)`` →
``(centres, radius)``: each eigenvalue of H(k) lies within ``radius`` of a
centre.  Lattice models split ``H(k) = H₀(k) ⊗ 1_spin + V(k)`` (H₀ the
spin-free hopping and mass, centres its eigenvalues — for graphene
``±√((t|f(k)|)² + Δ²)`` — and V the Rashba and exchange terms); Weyl's
inequality ``|E_i − E_i⁰| ≤ ‖V‖`` with the block-norm bound ``‖V‖ ≤ v``
(graphene: ``v = |J_ex|/2 + |λ_R|``) makes it rigorous.  The continuum models
use their dispersion (2DEG: ``ħ²k²/2m``, radius ``|λ_R k|/2 + |J_ex|/2``; Dirac:
``±√((ħvk)² + Δ²)``, radius ``|λ_R| + |J_ex|/2``).  A k point is diagonalised
when some ``[c_i − r, c_i + r]`` (widened by ``BOUND_SLACK``) meets the window,
so exactly the states of ``select="all"`` are kept.  On a Monkhorst-Pack grid
boxes of grid indices are bisected: the sorted centres move by at most
``L |k − k'|`` (``spectral_lipschitz``, Weyl on ``‖H₀(k) − H₀(k')‖``), so a
box whose centre bound, widened by L × its reach, misses the window is dropped
whole, and only boxes of ≤ 16 × 16 points are tested point by point: the
14691² grid is never listed (≈ 0.3 % of it is diagonalised for Fig. 2).
Other grids are scanned in chunks (the bound costs ≪ an ``eigh``).

Moment routes
-------------
``moments_route="gemm"``: the real GEMMs above, O(N² P).  ``"nufft"`` (CPU,
``finufft``): with ``Ẽ = cos θ``, ``T_n(Ẽ) = cos nθ``, so

    X_nm = ¼ Σ_± Σ_± F(±n, ±m),   F(n, m) = Σ_p γ ρ c_p e^{i(n θ_j + m θ_i)},

one type-1 NUFFT per left operator over the modes ``|n|, |m| < N``, O(P +
N² log N), at precision ``NUFFT_EPS`` = 1e-14 (relative to Σ|c_p|; the two
routes agree to ≲ 1e-12 of max|μ|).  ``"auto"`` (default) takes the NUFFT on
the CPU where finufft is installed and the cost model ``nufft_is_cheaper``
(measured constants) favours it for the pairs of the first batch, the GEMM
otherwise (always on the GPU).

Rescaling
---------
``a = (E_max − E_min)/(2 − 2ε)``, ``b = (E_max + E_min)/2`` (as
:class:`gpukpm.engine.spectrum.Rescaling`), where, in order of preference:

1. ``bounds=(E_min, E_max)`` given by hand (every kept eigenvalue must lie
   inside, else :class:`~gpukpm.engine.spectrum.SpectrumLeakError`);
2. the extreme kept eigenvalues.  These are known only after every k point
   was seen, so the per-chunk results (kept pair energies and coefficients
   c, 16(1 + n_left) bytes per pair, not the eigenvectors) are stored while
   they fit in half the memory budget, and the moments are formed from the
   stored records afterwards: each k point is diagonalised exactly once;
3. when the records outgrow that share: the window edges ``(E_lo, E_hi)``
   (every kept eigenvalue lies inside by construction), or, without a
   window, Gershgorin bounds ``min_k min_i (H_ii − R_i)``, ``max_k max_i
   (H_ii + R_i)``, ``R_i = Σ_{j≠i} |H_ij(k)|``, from one pass that builds the
   Bloch matrices but diagonalises nothing (rigorous, a little loose).  The
   stored records are then flushed and the rest is streamed.

In every case ``Moments.emin``/``emax`` are the extreme *kept* eigenvalues,
so the Fermi sea is integrated from the lowest kept state and
``kubo_response`` rejects energies outside ``b ± (1 − ε/2) a``.  A grid
(a patch) with no state in the window has no moments unless ``bounds`` are
given; then μ = 0 and emin, emax are the bounds, so the patches of one
split grid can be combined.

Position gauge
--------------
The Bloch forms of :mod:`gpukpm.models.hamiltonians` are in the position gauge
(``e^{ik·(R + τ_β − τ_α)}``) and ``"jx" = −∂H/∂k_x``; the real-space identity
test (``tests/test_kspace.py``) checks it: in the cell gauge the currents,
hence the moments, would differ.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from gpukpm import __version__
from gpukpm.engine.backend import get_backend
from gpukpm.engine.kgrid import KGrid, MonkhorstPack, PolarGrid, SquareGrid, make_grid
from gpukpm.engine.kgrid import _positive_int
from gpukpm.engine.moments import Moments
from gpukpm.models.operators import OPERATOR_NAMES
from gpukpm.engine.progress import Progress
from gpukpm.engine.spectrum import SpectrumLeakError, margin_for

__all__ = ["KGrid", "MonkhorstPack", "PolarGrid", "SquareGrid", "make_grid", "kspace_moments", "DEFAULT_CHUNK_SIZE",
           "GEMM_BATCH_BYTES", "SELECT_MODES", "MOMENTS_ROUTES", "NUFFT_EPS", "nufft_is_cheaper",
           "SYEVJ_WORK_PER_MATRIX", "eigh_bytes_per_k", "max_chunk_size"]

# k points per diagonalisation chunk (at most): on a GPU large, to amortise the per-chunk launches
# and the one device → host copy of the kept-k mask over ~10⁶ points (≈ 10 GB of chunk at n = 4)
DEFAULT_CHUNK_SIZE = {"cpu": 65536, "gpu": 2**20}
# CuPy's eigh of a stack is cuSOLVER's batched Jacobi solver (syevjBatched, CuPy 14 cupyx/_cusolver.pyx):
# it copies the stack and asks syevjBatched_bufferSize for a workspace whose size is an *int* element
# count for the whole batch.  Model of that workspace: SYEVJ_WORK_PER_MATRIX elements per matrix of
# n ≤ 4 (≈ 16.8 kB per 4 × 4 complex128 matrix), × ⌈n/4⌉² above; benchmarks/gpu_check.sh prints what
# cuSOLVER reports on the device.  So at most ≈ 2.0·10⁶ k points per chunk (INT32_MAX / 1050).
SYEVJ_WORK_PER_MATRIX = 1050
INT32_MAX = 2**31 - 1
DEFAULT_MEMORY_FRACTION = 0.5
# Bytes of one GEMM batch (U, V and W): cache-sized on a CPU (measured optimum
# 2048 pairs at N = 581 on a 105 MiB-L3 EPYC), large on a GPU to amortise launches.
GEMM_BATCH_BYTES = {"cpu": 64 * 2**20, "gpu": 2 * 2**30}


# ============================================================================ k-point selection
SELECT_MODES = ("bound", "all")
# eV: added to every bound radius, far above the round-off of eigh and of the bound itself
BOUND_SLACK = 1e-9
# leaf boxes of the Monkhorst-Pack bisection (index counts per direction) and leaves tested per batch
_LEAF = 16
_LEAF_BATCH = 256


def _may_hold(centres, radius, window) -> np.ndarray:
    """Mask (n,): some interval ``[c_i − r, c_i + r]`` (eV) meets the window ``[E_lo, E_hi]``.

    ``centres`` (n, m), ``radius`` scalar or (n,) eV, widened by :data:`BOUND_SLACK`.
    """
    r = np.asarray(radius)[..., None] + BOUND_SLACK
    return ((centres + r >= window[0]) & (centres - r <= window[1])).any(axis=-1)


def _scan_candidates(model, grid: KGrid, window, chunk_size: int):
    """``(index, covered)`` per chunk of ``grid``: flat indices whose ``model.spectral_bound`` meets
    the window, and the number of grid points the chunk covered."""
    for start in range(0, grid.num_points, chunk_size):
        stop = min(start + chunk_size, grid.num_points)
        k, _ = grid.points(start, stop)
        yield start + np.flatnonzero(_may_hold(*model.spectral_bound(k), window)), stop - start


def _box_reach(grid: MonkhorstPack, boxes) -> tuple[np.ndarray, np.ndarray]:
    """Centre k (n, 2) and reach (n,) nm⁻¹ of index boxes ``(i1, c1, i2, c2)`` of an MP patch.

    The box points are ``k = ((s1 + i1 + a)/L1) b1 + ((s2 + i2 + c)/L2) b2``, ``0 ≤ a < c1``,
    ``0 ≤ c < c2`` (unwrapped: the spectrum is periodic in the reciprocal lattice); reach = the
    largest distance of a box point from the centre, ``max(|h1 + h2|, |h1 − h2|)`` with the half
    extents ``h_i = ((c_i − 1)/(2 L_i)) b_i``.
    """
    (s1, _), (s2, _) = grid.patch
    (L1, L2), b = grid.shape, grid.lattice.reciprocal_vectors
    f1 = (s1 + boxes[:, 0] + (boxes[:, 1] - 1) / 2) / L1
    f2 = (s2 + boxes[:, 2] + (boxes[:, 3] - 1) / 2) / L2
    h1 = ((boxes[:, 1] - 1) / (2 * L1))[:, None] * b[0]
    h2 = ((boxes[:, 3] - 1) / (2 * L2))[:, None] * b[1]
    reach = np.maximum(np.linalg.norm(h1 + h2, axis=1), np.linalg.norm(h1 - h2, axis=1))
    return np.stack([f1, f2], axis=1) @ b, reach


def _split_boxes(boxes) -> np.ndarray:
    """Halve every box ``(i1, c1, i2, c2)`` along each direction with more than one point."""
    h1, h2 = (boxes[:, 1] + 1) // 2, (boxes[:, 3] + 1) // 2
    parts = []
    for first1, count1 in ((boxes[:, 0], h1), (boxes[:, 0] + h1, boxes[:, 1] - h1)):
        for first2, count2 in ((boxes[:, 2], h2), (boxes[:, 2] + h2, boxes[:, 3] - h2)):
            parts.append(np.stack([first1, count1, first2, count2], axis=1))
    out = np.concatenate(parts)
    return out[(out[:, 1] > 0) & (out[:, 3] > 0)]


def _leaf_indices(grid: MonkhorstPack, leaves) -> np.ndarray:
    """Flat indices ``i1 c2 + i2`` of every point of the leaf boxes ``(i1, c1, i2, c2)``."""
    offset = np.arange(_LEAF)
    a, c = offset[None, :, None], offset[None, None, :]
    inside = (a < leaves[:, 1, None, None]) & (c < leaves[:, 3, None, None])
    flat = (leaves[:, 0, None, None] + a) * grid.patch[1][1] + leaves[:, 2, None, None] + c
    return flat[inside]


def _box_candidates(model, grid: MonkhorstPack, window):
    """``(index, covered)`` of an MP grid by bisection of index boxes, never listing the whole grid.

    A box is dropped when no band can reach the window anywhere in it: the centres of
    ``model.spectral_bound`` at the box centre move by at most ``L × reach`` over the box
    (``L = model.spectral_lipschitz``), so the box test widens the radius (k independent for
    lattice models) by that.  Boxes of at most ``_LEAF`` points per direction are tested point
    by point.
    """
    (_, c1), (_, c2) = grid.patch
    boxes = np.array([[0, c1, 0, c2]], dtype=np.int64)
    while len(boxes):
        centre, reach = _box_reach(grid, boxes)
        centres, radius = model.spectral_bound(centre)
        keep = _may_hold(centres, radius + model.spectral_lipschitz * reach, window)
        yield np.empty(0, dtype=np.int64), int((boxes[~keep, 1] * boxes[~keep, 3]).sum())
        boxes = boxes[keep]
        leaf = (boxes[:, 1] <= _LEAF) & (boxes[:, 3] <= _LEAF)
        for start in range(0, int(leaf.sum()), _LEAF_BATCH):
            index = _leaf_indices(grid, boxes[leaf][start:start + _LEAF_BATCH])
            k, _ = grid.points_at(index)
            yield index[_may_hold(*model.spectral_bound(k), window)], len(index)
        boxes = _split_boxes(boxes[~leaf])


class _Timed:
    """Iterate over ``iterable`` and add the wall time spent producing its items to ``.time`` (s)."""

    def __init__(self, iterable):
        self._it, self.time = iter(iterable), 0.0

    def __iter__(self):
        return self

    def __next__(self):
        t = time.perf_counter()
        try:
            return next(self._it)
        finally:
            self.time += time.perf_counter() - t


def _candidate_chunks(model, grid: KGrid, window, select: str, chunk_size: int):
    """``(index, covered)``: flat indices (host int64, at most ``chunk_size``, None = the range
    ``[start, start + covered)``) of the k points to diagonalise, and how many grid points they stand for.

    ``select="all"`` or no window: every point, in order.  ``"bound"``: the points where
    ``model.spectral_bound`` meets the window (:func:`_box_candidates` on a Monkhorst-Pack grid
    of a model with ``spectral_lipschitz``, else :func:`_scan_candidates`), regrouped into chunks.
    """
    if select == "all" or window is None:
        for start in range(0, grid.num_points, chunk_size):
            yield None, min(chunk_size, grid.num_points - start)
        return
    if isinstance(grid, MonkhorstPack) and hasattr(model, "spectral_lipschitz"):
        source = _box_candidates(model, grid, window)
    else:
        source = _scan_candidates(model, grid, window, chunk_size)
    pending, count, covered = [], 0, 0
    for index, n in source:
        pending.append(index)
        count, covered = count + len(index), covered + n
        while count >= chunk_size:
            merged = np.concatenate(pending)
            yield merged[:chunk_size], covered
            pending, count, covered = [merged[chunk_size:]], count - chunk_size, 0
    if count or covered:
        yield np.concatenate(pending), covered


# ============================================================================ engine pieces
def _rescaling(lo: float, hi: float, epsilon: float) -> tuple[float, float]:
    """``(a, b)`` putting [lo, hi] on [−1 + ε, 1 − ε]."""
    return (hi - lo) / (2.0 - 2.0 * epsilon), (hi + lo) / 2.0


def _chebyshev_table(xp, x, num_moments: int):
    """``T_n(x)`` for n < N as an (N, len(x)) array (|x| ≤ 1), by block doubling.

    Rows ``m+1 … 2m`` follow from rows ``0 … m`` at once through
    ``T_{m+k} = 2 T_m T_k − T_{m−k}``, so the table takes ⌈log₂ N⌉ array
    operations (not N, which would be N kernel launches on a GPU).  Measured
    error against ``cos(n arccos x)`` in extended precision: 2e-11 at
    N = 2000 (the three-term recursion: 3e-12).
    """
    table = xp.empty((num_moments, x.shape[0]), dtype=np.float64)
    table[0] = 1.0
    table[1] = x
    filled = 2
    while filled < num_moments:
        m = filled - 1
        count = min(m, num_moments - 1 - m)
        table[m + 1:m + 1 + count] = 2.0 * table[m] * table[1:count + 1] - table[m - count:m][::-1]
        filled = m + 1 + count
    return table


@dataclass
class _Records:
    """Kept pairs of one chunk: energies E_i, E_j (P,) and coefficients ρ γ c (n_left, P)."""

    e_i: object
    e_j: object
    coeffs: object

    @property
    def num_pairs(self) -> int:
        return int(self.e_i.shape[0])

    @property
    def nbytes(self) -> int:
        return int(self.e_i.nbytes + self.e_j.nbytes + self.coeffs.nbytes)


MOMENTS_ROUTES = ("auto", "gemm", "nufft")
# finufft's requested precision; measured: μ agrees with the GEMM route to ≲ 1e-12 relative
# to max|μ| (tests/test_kspace_select.py), the floor set by the arccos of Ẽ and by the GEMM's own round-off
NUFFT_EPS = 1e-14
NUFFT_BATCH_BYTES = 256 * 2**20  # pairs per NUFFT call: θ, φ and coefficients, (2 + 2 n_left) doubles each
# Cost model of moments_route="auto" on the CPU, measured on a shared 2-core EPYC VM (N = 64–581,
# n_left = 3, P = 10³–10⁶): GEMM 4 n_left N² flops per pair at GEMM_FLOPS; NUFFT NUFFT_PAIR_S per
# pair and transform, plus NUFFT_MODE_S per point of the (2 × (2N − 1))² fine grid per transform and call.
GEMM_FLOPS = 2.0e10
NUFFT_PAIR_S = 2.0e-7
NUFFT_MODE_S = 4.5e-8


def _finufft():
    """The ``finufft`` module, or None when it is not installed (it is optional at import)."""
    try:
        import finufft
    except ImportError:
        return None
    return finufft


def _check_route(route, be) -> str:
    """Validate ``moments_route`` for the backend: the NUFFT runs on the CPU backend only."""
    if route not in MOMENTS_ROUTES:
        raise ValueError(f"moments_route must be one of {MOMENTS_ROUTES}, got {route!r}")
    if route == "nufft" and be.name != "cpu":
        raise ValueError("moments_route='nufft' needs the CPU backend (finufft); use 'gemm' or 'auto' on the GPU")
    if route == "nufft" and _finufft() is None:
        raise ValueError("moments_route='nufft' needs the finufft package (pip install finufft)")
    if route == "auto" and (be.name != "cpu" or _finufft() is None):
        return "gemm"
    return route


def nufft_is_cheaper(num_pairs: int, num_moments: int, num_left: int) -> bool:
    """Whether the NUFFT route is cheaper than the GEMM route for ``num_pairs`` pairs (cost model above).

    GEMM: ``4 n_left N² P / GEMM_FLOPS`` s; NUFFT: ``n_left (P NUFFT_PAIR_S + (4N − 2)² NUFFT_MODE_S)`` s.
    """
    gemm = 4.0 * num_left * num_moments**2 * num_pairs / GEMM_FLOPS
    nufft = num_left * (num_pairs * NUFFT_PAIR_S + (4 * num_moments - 2) ** 2 * NUFFT_MODE_S)
    return nufft < gemm


class _Accumulator:
    """The pair sum ``X_nm = Σ_p c_p T_n(Ẽ_j) T_m(Ẽ_i)`` (n_left, N, N), over batches of pairs.

    Route ``"gemm"``: ``R = Σ_p U_p ⊗ [Re c_p V_p, Im c_p V_p]`` by real GEMMs over batches of
    ``max_pairs`` pairs.  Route ``"nufft"`` (CPU): with ``Ẽ = cos θ``, ``T_n(cos θ) = cos nθ``, so

        X_nm = ¼ Σ_± Σ_± F(±n, ±m),   F(n, m) = Σ_p c_p e^{i(n θ_j + m θ_i)},

    a type-1 NUFFT over the modes ``|n|, |m| < N`` (``finufft``, precision :data:`NUFFT_EPS`),
    O(P + N² log N) per call instead of O(N² P).  ``"auto"`` picks the route at the first
    flush with :func:`nufft_is_cheaper` for the pairs buffered then.  Records are buffered until a
    full batch is available (a chunk with few kept states would otherwise give a tiny call).
    """

    def __init__(self, be, a: float, b: float, num_moments: int, num_left: int, max_pairs: int, route: str,
                 nufft_pairs: int):
        self.be, self.xp = be, be.xp
        self.a, self.b, self.N, self.nA = a, b, num_moments, num_left
        self.max_pairs, self.nufft_pairs = max_pairs, nufft_pairs
        self.route = route
        self.R = self.F = self._plan = None
        self.pending, self.pending_pairs = [], 0
        self.time = 0.0
        self.gemm_calls = self.nufft_calls = 0

    @property
    def _batch(self) -> int:
        return self.max_pairs if self.route == "gemm" else self.nufft_pairs

    def add(self, rec: _Records) -> None:
        self.pending.append(rec)
        self.pending_pairs += rec.num_pairs
        if self.pending_pairs >= self._batch:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        if not self.pending:
            return
        t = self.be.timer()
        xp = self.xp
        e_i = xp.concatenate([r.e_i for r in self.pending])
        e_j = xp.concatenate([r.e_j for r in self.pending])
        coeffs = xp.concatenate([r.coeffs for r in self.pending], axis=1)
        P = e_i.shape[0]
        if self.route == "auto":
            self.route = "nufft" if nufft_is_cheaper(P, self.N, self.nA) else "gemm"
        if self.route == "nufft":
            self._nufft(e_i, e_j, coeffs)
            done = P
        else:
            done = P if final else (P // self.max_pairs) * self.max_pairs
            for p0 in range(0, done, self.max_pairs):
                p1 = min(p0 + self.max_pairs, done)
                self._gemm(e_i[p0:p1], e_j[p0:p1], coeffs[:, p0:p1])
        self.pending = [_Records(e_i[done:], e_j[done:], coeffs[:, done:])] if done < P else []
        self.pending_pairs = P - done
        self.time += self.be.timer() - t

    def _gemm(self, e_i, e_j, coeffs) -> None:
        xp, N = self.xp, self.N
        P = e_i.shape[0]
        if self.R is None:
            self.R = xp.zeros((N, 2 * self.nA * N), dtype=np.float64)
        U = _chebyshev_table(xp, (e_j - self.b) / self.a, N)  # (N, P): n index, state j
        V = _chebyshev_table(xp, (e_i - self.b) / self.a, N)  # (N, P): m index, state i
        W = xp.empty((self.nA, 2, N, P), dtype=np.float64)
        xp.multiply(V[None], coeffs.real[:, None, :], out=W[:, 0])
        xp.multiply(V[None], coeffs.imag[:, None, :], out=W[:, 1])
        self.R += U @ W.reshape(2 * self.nA * N, P).T
        self.gemm_calls += 1

    def _nufft(self, e_i, e_j, coeffs) -> None:
        """``F += Σ_p c_p e^{i(n θ_j + m θ_i)}`` for ``|n|, |m| ≤ N − 1``, ``θ = arccos Ẽ`` (host arrays)."""
        if self._plan is None:
            modes = 2 * self.N - 1
            self._plan = _finufft().Plan(1, (modes, modes), n_trans=self.nA, eps=NUFFT_EPS, isign=1)
            self.F = np.zeros((self.nA, modes, modes), dtype=np.complex128)
        theta_j = np.arccos(np.clip((e_j - self.b) / self.a, -1.0, 1.0))
        theta_i = np.arccos(np.clip((e_i - self.b) / self.a, -1.0, 1.0))
        self._plan.setpts(theta_j, theta_i)
        self.F += self._plan.execute(np.ascontiguousarray(coeffs)).reshape(self.F.shape)
        self.nufft_calls += 1

    def _pair_sum(self) -> np.ndarray:
        """``X`` (n_left, N, N) on the host from R or F (zeros when no pair was added)."""
        N = self.N
        if self.F is not None:
            c = N - 1  # index of mode 0
            F = self.F
            return 0.25 * (F[:, c:, c:] + F[:, c::-1, c:] + F[:, c:, c::-1] + F[:, c::-1, c::-1])
        if self.R is None:
            return np.zeros((self.nA, N, N), dtype=np.complex128)
        R4 = self.be.to_host(self.R).reshape(N, self.nA, 2, N)
        return np.moveaxis(R4[:, :, 0, :] + 1j * R4[:, :, 1, :], 1, 0)  # (n_left, n, m)

    def moments(self, num_orbitals: float) -> np.ndarray:
        """Flush the buffer; ``μ = (X + Xᴴ)/D`` on the host, (n_left, N, N)."""
        self._flush(final=True)
        X = self._pair_sum()
        return (X + np.conj(np.swapaxes(X, 1, 2))) / num_orbitals


def _syevj_work_elements(n: int) -> int:
    """Elements of cuSOLVER's syevjBatched workspace per n × n matrix (the model above)."""
    return SYEVJ_WORK_PER_MATRIX * max(1, -(-int(n) // 4)) ** 2


def eigh_bytes_per_k(n: int, backend_name: str, itemsize: int = 16) -> int:
    """Device bytes of the batched ``eigh`` per k point beyond H itself: CuPy's copy of the stack
    (n² elements), the eigenvalues (n reals), cuSOLVER's info (int32) and, on the GPU, the
    syevjBatched workspace (:data:`SYEVJ_WORK_PER_MATRIX` elements per 4 × 4 matrix)."""
    work = _syevj_work_elements(n) if backend_name == "gpu" else 0
    return (n * n + work) * itemsize + n * itemsize // 2 + 4


def max_chunk_size(n: int, backend_name: str) -> int | None:
    """Most k points per diagonalisation chunk: on the GPU the batch whose syevjBatched workspace
    still fits a 32-bit element count (≈ 2.0·10⁶ for n ≤ 4); None (no limit) on the CPU."""
    if backend_name != "gpu":
        return None
    return INT32_MAX // _syevj_work_elements(n)


def _memory_plan(budget: int, n: int, num_ops: int, num_left: int, N: int, chunk_size, num_points: int,
                 backend_name: str):
    """``(chunk_size, max_pairs, nufft_pairs, record_budget)`` from the memory budget (bytes).

    A quarter of the budget for a diagonalisation chunk (per k point: H, its
    eigenvectors and every operator before and after the basis change,
    ≈ (2 + 2 n_ops) n² complex numbers, times 4 for host copies and
    temporaries, plus the batched eigh's own buffers, :func:`eigh_bytes_per_k`:
    ≈ 16.8 kB of cuSOLVER workspace per 4 × 4 matrix on the GPU), capped at
    :func:`max_chunk_size`; a quarter, at most ``GEMM_BATCH_BYTES``, for a GEMM batch
    (per pair: U, V and W, (2 + 2 n_left) N doubles), or, at most
    ``NUFFT_BATCH_BYTES``, for a NUFFT batch (per pair: θ_i, θ_j, c and
    finufft's sort index, (3 + 2 n_left) doubles), half for the stored records.
    A ``chunk_size`` given above the cap raises ValueError naming the maximum.
    """
    per_k = 4 * (2 + 2 * num_ops) * n * n * 16 + eigh_bytes_per_k(n, backend_name)
    cap = max_chunk_size(n, backend_name)
    if chunk_size is None:
        chunk_size = max(1, min(DEFAULT_CHUNK_SIZE[backend_name], num_points, budget // (4 * per_k)))
        if cap is not None:
            chunk_size = min(chunk_size, cap)
    elif cap is not None and chunk_size > cap:
        raise ValueError(f"chunk_size must be at most {cap} k points on the GPU for {n}-band models "
                         f"(cuSOLVER's batched eigh counts its workspace of {_syevj_work_elements(n)} elements "
                         f"per matrix in a 32-bit int), got {chunk_size}")
    per_pair = (2 + 2 * num_left) * N * 8
    max_pairs = min(budget // 4, GEMM_BATCH_BYTES[backend_name]) // per_pair
    if max_pairs < 1:
        raise MemoryError(f"memory_budget {budget} bytes is below the minimum {4 * per_pair} for N = {N} "
                          f"and {num_left} left operator(s)")
    nufft_pairs = max(1, min(budget // 4, NUFFT_BATCH_BYTES) // ((3 + 2 * num_left) * 8))
    return int(chunk_size), int(max_pairs), int(nufft_pairs), budget // 2


def _gershgorin_pass(model, grid: KGrid, chunk_size: int, be=None) -> tuple[float, float]:
    """Rigorous bounds ``min (H_ii − R_i)``, ``max (H_ii + R_i)`` over every H(k) of the grid (eV).

    On the backend's device (k, H(k) and the discs built there; two scalars per chunk come back).
    """
    xp = np if be is None else be.xp
    lo, hi = math.inf, -math.inf
    for start in range(0, grid.num_points, chunk_size):
        k, _ = grid.points(start, min(start + chunk_size, grid.num_points), xp=xp)
        H = model.bloch(k, xp=xp)
        diagonal = xp.diagonal(H, axis1=-2, axis2=-1)
        radius = xp.abs(H).sum(axis=-1) - xp.abs(diagonal)
        centre = xp.real(diagonal)
        lo, hi = min(lo, float((centre - radius).min())), max(hi, float((centre + radius).max()))
    return lo, hi


def grid_edge_range(model, grid: KGrid) -> list | None:
    """Fermi energies (eV) whose contours all lie inside a continuum grid: ``[lo, hi]``, None if periodic.

    Every band is cut at the grid's edge (k_max).  A band that rises from the centre to the edge
    (electron-like) loses its states beyond the edge for ε_F above its lowest edge energy; one that
    falls (a Dirac valence band) for ε_F below its highest edge energy.  ``hi`` is the lowest such
    upper limit, ``lo`` the highest lower limit (None where no band limits that side).
    :func:`gpukpm.response.kubo.kubo_response` refuses energies outside ``[lo + 3η, hi − 3η]``.
    """
    edge = grid.edge_points()
    if edge is None:
        return None
    on_edge = np.linalg.eigvalsh(model.bloch(edge))  # (n_edge, bands), ascending
    at_centre = np.linalg.eigvalsh(model.bloch(np.asarray([grid.centre], dtype=float)))[0]
    rising = on_edge.mean(axis=0) > at_centre
    hi = float(on_edge[:, rising].min()) if rising.any() else None
    lo = float(on_edge[:, ~rising].max()) if (~rising).any() else None
    return [lo, hi]


def band_splitting(energies) -> float:
    """Largest splitting of spin partners at one k (eV): ``max_k max_p (E_{2p+1}(k) − E_{2p}(k))``.

    ``energies`` (n_k, n) ascending per k.  The spin-independent part of every model has
    doubly degenerate bands; the spin-dependent terms (Rashba, exchange) split each pair, so the
    sorted bands pair up as (0, 1), (2, 3), …  A state kept by an energy window whose partner lies
    outside it loses its interband terms: :func:`gpukpm.response.kubo.kubo_response` refuses Fermi
    energies within this splitting (plus 3η) of a window edge.  Odd n: the largest adjacent gap.
    """
    n = energies.shape[-1]
    if n < 2:
        return 0.0
    split = energies[:, 1::2] - energies[:, 0:n - 1:2] if n % 2 == 0 else energies[:, 1:] - energies[:, :-1]
    return float(split.max())


class _Diagonaliser:
    """Per chunk: Bloch matrices, batched eigh, window filter, operators in the eigenbasis, kept pairs."""

    def __init__(self, model, be, left: tuple, right: str, window):
        self.model, self.be, self.xp = model, be, be.xp
        self.left, self.right, self.window = left, right, window
        iu, ju = np.triu_indices(int(model.orbitals_per_cell))  # pairs i <= j
        self.iu, self.ju = be.asarray(iu), be.asarray(ju)
        self.gamma = be.asarray(np.where(iu == ju, 0.5, 1.0))
        self.num_diagonalised = self.eigh_calls = 0
        self.num_kept_k = self.num_kept_states = self.num_pairs = 0
        self.emin, self.emax = math.inf, -math.inf
        self.max_band_splitting = 0.0
        self.drops_below = self.drops_above = False  # a state of a kept k point lies below / above the window
        self.time = 0.0

    def chunk(self, k, rho) -> _Records | None:
        """Kept pairs of the k points ``k`` (n, 2) with weights ``rho`` (n,), both on the backend."""
        xp, be = self.xp, self.be
        t = be.timer()
        H = self.model.bloch(k, xp=xp)
        energies, vectors = xp.linalg.eigh(H)
        self.eigh_calls += 1
        self.num_diagonalised += H.shape[0]
        if self.window is None:
            keep = xp.ones(energies.shape, dtype=bool)
        else:
            keep = (energies >= self.window[0]) & (energies <= self.window[1])
        kept_k = be.to_host(keep.any(axis=1))
        records = None
        if kept_k.any():
            idx = np.flatnonzero(kept_k)
            sel = be.asarray(idx)
            k, rho, keep, energies, vectors = k[sel], rho[sel], keep[sel], energies[sel], vectors[sel]
            kept_e = energies[keep]
            self.emin = min(self.emin, float(kept_e.min()))
            self.emax = max(self.emax, float(kept_e.max()))
            self.num_kept_k += len(idx)
            self.num_kept_states += int(kept_e.shape[0])
            self.max_band_splitting = max(self.max_band_splitting, band_splitting(energies))
            if self.window is not None:
                self.drops_below |= bool(energies.min() < self.window[0])
                self.drops_above |= bool(energies.max() > self.window[1])
            records = self._pairs(k, rho, keep, energies, vectors)
            self.num_pairs += records.num_pairs
        self.time += be.timer() - t
        return records

    def _pairs(self, k, rho, keep, energies, vectors) -> _Records:
        xp = self.xp
        vh = xp.conj(xp.swapaxes(vectors, -1, -2))
        basis = {}
        for name in dict.fromkeys(self.left + (self.right,)):
            basis[name] = vh @ self.model.bloch_operator(name, k, xp=xp) @ vectors
        B_ji = basis[self.right][:, self.ju, self.iu]  # (k, pairs)
        mask = keep[:, self.iu] & keep[:, self.ju]
        weight = (rho[:, None] * self.gamma[None, :] * B_ji)[mask]
        coeffs = xp.stack([basis[name][:, self.iu, self.ju][mask] * weight for name in self.left])
        return _Records(energies[:, self.iu][mask], energies[:, self.ju][mask], coeffs)


# ============================================================================ public entry point
def _check_pair(name: str, value, unit: str = "eV"):
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be two numbers ({name}_lo, {name}_hi) in {unit}, got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"{name} must be finite and ordered (lo < hi) in {unit}, got {value!r}")
    return lo, hi


def _check_operators(left, right) -> tuple[tuple, str]:
    if isinstance(left, str):
        left = (left,)
    try:
        left = tuple(left)
    except TypeError:
        raise ValueError(f"left must be an operator name or a sequence of names, got {left!r}") from None
    if not left:
        raise ValueError("left must name at least one operator")
    for name in left:
        if name not in OPERATOR_NAMES:
            raise ValueError(f"left: operator name must be one of {OPERATOR_NAMES}, got {name!r}")
    if right not in OPERATOR_NAMES:
        raise ValueError(f"right: operator name must be one of {OPERATOR_NAMES}, got {right!r}")
    return left, right


def kspace_moments(model, grid=None, left=("sx", "sy", "sz"), right: str = "jx", num_moments: int = 256,
                   window=None, *, backend=None, chunk_size: int | None = None,
                   memory_budget: int | None = None, bounds=None, epsilon: float | None = None,
                   select: str = "bound", moments_route: str = "auto", progress: bool = True) -> Moments:
    r"""2D Chebyshev moments ``μ_nm = Tr[A T_n(H̃) B T_m(H̃)]/D`` of a pristine model in k space.

    The k points that can hold a state in the window (all of them without a
    window) are diagonalised once (batched ``eigh`` on the backend); the
    operators are transformed to the eigenbasis where a state is kept, and
    ``μ_nm = (1/D) Σ_k ρ_k Σ_ij A_ij T_n(Ẽ_j) B_ji T_m(Ẽ_i)`` is accumulated
    over the pairs by real GEMMs or a type-1 NUFFT (module docstring).

    Parameters
    ----------
    model : a gpukpm model with ``bloch``, ``bloch_operator``, ``orbitals_per_cell``, ``to_dict``.
    grid : a :class:`KGrid`, ``(L1, L2)`` for a lattice model (:class:`MonkhorstPack`), or a
        mapping ``{kind: polar|square|monkhorst_pack, ...}`` (:func:`make_grid`).
    left : names of the left operators A ("sx", "sy", "sz", "jx", "jy"); one μ each.
    right : the right operator B (default the current "jx" = −∂H/∂k_x, eV·nm).
    num_moments : N ≥ 2.
    window : ``(E_lo, E_hi)`` in eV, or None for all states.  Only eigenstates
        with ``E_lo ≤ E ≤ E_hi`` are kept: the trace becomes
        ``Tr[P A P T_n P B P T_m]``, P the projector on the kept states.
    backend : "cpu", "gpu", "auto" or a Backend.
    chunk_size : k points per diagonalisation chunk (default from the budget, at most
        ``DEFAULT_CHUNK_SIZE[backend]``: 65536 on the CPU, 2²⁰ on the GPU); on the GPU at most
        :func:`max_chunk_size` (≈ 2.0·10⁶ for 2 or 4 bands: cuSOLVER's batched eigh), else ValueError.
    memory_budget : bytes for chunks, GEMM batches and stored records
        (default half the free memory of the device).
    bounds : ``(E_min, E_max)`` for the rescaling by hand (eV); skips the bounds logic.
    epsilon : margin ε of the rescaling, ``a = (E_max − E_min)/(2 − 2ε)``; default
        ``gpukpm.engine.spectrum.margin_for(N)``.  With a band edge
        among the kept states and the Fermi-sea part wanted, take ε ≈ 0.1: the edge then sits
        √(2ε) in θ = arccos x from x = −1, many Lorentz widths λ/N, while with ε = 0.01 the sea
        integral of ``kubo_response`` (which starts at x = −1 + ε/4) misses the kernel tails of
        the edge states (+6–7 % in χ_DL of the Fig. 4a 2DEG, ``tests/test_kspace_physics.py``).
    select : "bound" (default): with a window, diagonalise only the k points where the model's
        rigorous ``spectral_bound`` lets an eigenvalue reach the window (boxes of the
        Monkhorst-Pack grid are discarded whole); "all": every k point (the reference path).
        Both keep exactly the same states.  Without a window every k point is diagonalised.
    moments_route : "auto" (default), "gemm" or "nufft" (CPU and ``finufft`` only, precision
        ``NUFFT_EPS``); "auto" takes the NUFFT on the CPU when finufft is installed and
        :func:`nufft_is_cheaper` says so for the pairs of the first batch, else the GEMM.
    progress : print progress lines (k points, rate, ETA).

    Returns
    -------
    Moments with ``trace="kspace"``, one sample, ``num_orbitals = n_orb N_k``,
    ``area = Ω`` of the grid, ``emin``/``emax`` the extreme kept eigenvalues.
    ``provenance`` holds the backend, the counts (``num_grid_k`` (= ``num_k``),
    ``num_diagonalised_k`` (= ``num_diagonalised``), eigh calls, ``num_kept_k``,
    ``num_kept_states`` and their fractions, pairs, ``max_band_splitting``), ``select``,
    ``moments_route`` (the route taken), the bounds source and wall times (k-point selection,
    diagonalisation, moments, bounds pass, total).
    """
    # ---- validation, before any work
    for attr in ("bloch", "bloch_operator", "orbitals_per_cell", "to_dict"):
        if not hasattr(model, attr):
            raise ValueError(f"model must be a gpukpm model (missing {attr!r}), got {type(model).__name__}")
    if isinstance(num_moments, bool) or not isinstance(num_moments, (int, np.integer)) or num_moments < 2:
        raise ValueError(f"num_moments must be an integer >= 2, got {num_moments!r}")
    N = int(num_moments)
    left, right = _check_operators(left, right)
    if window is not None:
        window = _check_pair("window", window)
    if bounds is not None:
        bounds = _check_pair("bounds", bounds)
    if epsilon is None:
        epsilon = margin_for(N)
    if not (isinstance(epsilon, (int, float)) and 0 < epsilon < 0.5):
        raise ValueError(f"epsilon must be in (0, 0.5), got {epsilon!r}")
    if select not in SELECT_MODES:
        raise ValueError(f"select must be one of {SELECT_MODES}, got {select!r}")
    if select == "bound" and window is not None and not hasattr(model, "spectral_bound"):
        raise ValueError(f"select='bound' needs a model with spectral_bound ({type(model).__name__} has none); "
                         "use select='all'")
    if chunk_size is not None:
        chunk_size = _positive_int("kspace_moments", "chunk_size", chunk_size)
    if memory_budget is not None:
        memory_budget = _positive_int("kspace_moments", "memory_budget", memory_budget)
    grid = make_grid(model, grid)
    be = get_backend(backend)
    route = _check_route(moments_route, be)

    t_start = time.perf_counter()
    num_points = grid.num_points
    n = int(model.orbitals_per_cell)
    num_ops = len(set(left) | {right})
    budget = memory_budget or int(DEFAULT_MEMORY_FRACTION * be.free_memory())
    chunk_size, max_pairs, nufft_pairs, record_budget = _memory_plan(budget, n, num_ops, len(left), N, chunk_size,
                                                                      num_points, be.name)

    def accumulator(lo, hi):
        return _Accumulator(be, *_rescaling(lo, hi, epsilon), N, len(left), max_pairs, route, nufft_pairs)

    diag = _Diagonaliser(model, be, left, right, window)
    acc = None
    source = "given" if bounds is not None else "kept eigenvalues"
    time_bounds = 0.0
    if bounds is not None:
        acc = accumulator(*bounds)
    stored, stored_bytes = [], 0
    bar = Progress(num_points, "kspace moments", "k points", enabled=progress)
    start, selection = 0, _Timed(_candidate_chunks(model, grid, window, select, chunk_size))
    for index, covered in selection:
        if index is None:
            rec = diag.chunk(*grid.points(start, start + covered, xp=be.xp))
        else:
            rec = diag.chunk(*grid.points_at(be.asarray(index), xp=be.xp)) if len(index) else None
        start += covered
        if rec is not None:
            if bounds is not None and (diag.emin < bounds[0] or diag.emax > bounds[1]):
                raise SpectrumLeakError(
                    f"kept eigenvalues reach [{diag.emin:.6g}, {diag.emax:.6g}] eV, outside bounds "
                    f"{bounds} eV: the Chebyshev expansion would diverge; widen bounds")
            if acc is not None:
                acc.add(rec)
            else:
                stored.append(rec)
                stored_bytes += rec.nbytes
                if stored_bytes > record_budget:
                    if window is not None:
                        source, fallback = "window", window
                    else:
                        t = time.perf_counter()
                        source, fallback = "gershgorin", _gershgorin_pass(model, grid, chunk_size, be)
                        time_bounds = time.perf_counter() - t
                    acc = accumulator(*fallback)
                    for r in stored:
                        acc.add(r)
                    stored, stored_bytes = [], 0
        bar.advance(covered)
    emin, emax = diag.emin, diag.emax
    if diag.num_kept_states == 0:
        if bounds is None:
            raise ValueError(f"window {window} eV contains no eigenvalue of the model on this grid; "
                             "give bounds= to get the (zero) moments of an empty patch")
        emin, emax = bounds
    if acc is None:
        if not diag.emax > diag.emin:
            raise ValueError(f"the kept spectrum is the single energy {diag.emin:.6g} eV; give bounds=(E_min, E_max)")
        acc = accumulator(diag.emin, diag.emax)
        for r in stored:
            acc.add(r)
        del stored
    num_orbitals = float(n * num_points)
    samples = acc.moments(num_orbitals)[None]
    wall = time.perf_counter() - t_start

    provenance = dict(
        be.device_info(),
        gpukpm=__version__,
        num_k=num_points,
        num_grid_k=num_points,
        num_diagonalised=diag.num_diagonalised,
        num_diagonalised_k=diag.num_diagonalised,
        select=select,
        eigh_calls=diag.eigh_calls,
        num_kept_k=diag.num_kept_k,
        kept_fraction_k=diag.num_kept_k / num_points,
        num_states=n * num_points,
        num_kept_states=diag.num_kept_states,
        kept_fraction_states=diag.num_kept_states / (n * num_points),
        num_pairs=diag.num_pairs,
        max_band_splitting=diag.max_band_splitting,
        window_cuts=[diag.drops_below, diag.drops_above],
        grid_edge_range=grid_edge_range(model, grid),
        chunk_size=chunk_size,
        max_pairs_per_gemm=max_pairs,
        moments_route=acc.route,
        gemm_calls=acc.gemm_calls,
        nufft_calls=acc.nufft_calls,
        nufft_eps=NUFFT_EPS if acc.route == "nufft" else None,
        max_pairs_per_nufft=nufft_pairs,
        memory_budget=budget,
        bounds_source=source,
        time_diagonalise=diag.time,
        time_moments=acc.time,
        time_bounds=time_bounds,
        time_select=selection.time,
        time_total=wall,
    )
    parameters = dict(model.to_dict(), grid=grid.to_dict(), window=None if window is None else list(window),
                      bounds=None if bounds is None else list(bounds))
    return Moments(
        mu_samples=samples, a=float(acc.a), b=float(acc.b), emin=float(emin), emax=float(emax),
        epsilon=float(epsilon), num_orbitals=num_orbitals, area=float(grid.area),
        left=left, right=right, trace="kspace", seed=0,
        sample_realisations=np.array([0]), sample_vectors=np.array([-1]),
        hermitian=True, parameters=parameters, provenance=provenance,
    )
