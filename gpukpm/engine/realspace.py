r"""Chebyshev moments: 1D ``μ_n = Tr[A T_n(H̃)]/D`` and 2D ``μ_nm = Tr[A T_n(H̃) B T_m(H̃)]/D``.

The trace is either exact (every basis vector, for small systems) or
stochastic with random-phase vectors ``|r⟩`` (:mod:`gpukpm.models.random`):

    μ_nm ≈ (1/R) Σ_r ⟨r|T_m A T_n B|r⟩ / D = (1/R) Σ_r ⟨X_m^r| A |Y_n^r⟩ / D,
    X_m = T_m(H̃)|r⟩,   Y_n = T_n(H̃) B|r⟩.

Two Chebyshev chains per vector serve every left operator A: the block of
μ for orders m ∈ I, n ∈ J is one GEMM ``conj(A†X_I) · Y_Jᵀ`` with inner
dimension D (BLAS-3; cuBLAS on the GPU).  Blocks of ``block_size`` orders are generated
from checkpoints (:class:`~gpukpm.engine.chebyshev.ChebyshevChain`), ``block_size`` being chosen
from a memory budget, so the N vectors of a chain are never all held unless
they fit.  With the exact trace μ is Hermitian (``μ_nm = conj(μ_mn)`` for
Hermitian A, B), and only the blocks J ≥ I are computed.

Moments are stored raw (no kernel factors), per random vector, so that
standard errors of anything linear in μ are available.
"""
from __future__ import annotations

import math
import time

import numpy as np
import scipy.sparse

from gpukpm import __version__
from gpukpm.engine.backend import get_backend
from gpukpm.engine.chebyshev import ChebyshevChain, RescaledOperator, guard_norm
from gpukpm.engine.moments import Moments
from gpukpm.models.operators import OPERATOR_NAMES
from gpukpm.models.stencil import STENCIL_NAMES
from gpukpm.engine.progress import Progress
from gpukpm.models.random import check_seed, random_phase_vectors
from gpukpm.engine.spectrum import Rescaling, rescaling

__all__ = ["kubo_moments", "dos_moments", "choose_block_size", "resolve_operator"]

DEFAULT_MEMORY_FRACTION = 0.5
DEFAULT_TILE = 128  # X orders per GEMM tile: 128 ran the GEMM at 1.4× the speed of 64 (benchmarks/README.md)



# ----------------------------------------------------------------------------- helpers
def resolve_operator(system, op, dim: int):
    """A named operator of ``system`` ("sx", "jx", ...) or a user sparse matrix of shape (D, D)."""
    if isinstance(op, str):
        return op, scipy.sparse.csr_matrix(system.operator(op))
    if scipy.sparse.issparse(op) or isinstance(op, np.ndarray):
        if op.shape != (dim, dim):
            raise ValueError(f"operator has shape {op.shape}; it must be ({dim}, {dim}) like the Hamiltonian")
        return "custom", scipy.sparse.csr_matrix(op)
    raise TypeError(f"operator must be a name or a sparse matrix, got {type(op).__name__}")


def _stencil_source(system, be, dtype):
    """``name → CellStencil or None``: the system's stencils when the backend runs them."""
    if not (be.uses_stencils() and hasattr(system, "stencil")):
        return lambda name: None
    return lambda name: system.stencil(name).astype(dtype) if name in STENCIL_NAMES else None


def _resolve_lazily(system, op, dim: int, stencils):
    """``(name, None)`` for a named operator the backend applies as a stencil (Hermitian by
    construction, its CSR is never built), else :func:`resolve_operator`."""
    if isinstance(op, str) and op in OPERATOR_NAMES and stencils(op) is not None:
        return op, None
    return resolve_operator(system, op, dim)


def _is_hermitian(m) -> bool:
    diff = abs(m - m.conj().T)
    scale = max(abs(m).max(), 1e-300)
    return diff.max() <= 1e-12 * scale if diff.nnz else True


def choose_block_size(num_moments: int, dim: int, vectors: int, num_left: int, itemsize: int,
                      budget: int, tile_size: int = DEFAULT_TILE) -> int:
    """Orders per Y block (the block size) so that the engine's arrays fit in ``budget`` bytes.

    The engine holds ``block_size`` vectors of Y per start vector, the tile of
    ``n_left·c`` products A†X (c = ``tile_size``), three streamed X vectors,
    the start vectors and checkpoints (≈ 8 vectors in all).
    """
    vector = vectors * dim * itemsize
    per_order = vector
    fixed = (8 + num_left * tile_size) * vector
    orders = (budget - fixed) // per_order
    if orders < 1:
        need = (fixed + per_order) / 2**30
        raise MemoryError(
            f"memory_budget {budget / 2**30:.2f} GiB is below the minimum {need:.2f} GiB "
            f"for D = {dim}, {vectors} vector(s) per batch and {num_left} left operator(s)"
        )
    return int(min(num_moments, orders))


def _check_num_moments(num_moments) -> int:
    if isinstance(num_moments, bool) or int(num_moments) != num_moments or num_moments < 2:
        raise ValueError(f"num_moments must be an integer >= 2, got {num_moments!r}")
    return int(num_moments)


def _trace_plan(trace, dim: int):
    """``("exact", D)`` or ``("stochastic", R)`` from the ``trace`` argument."""
    if isinstance(trace, str):
        if trace != "exact":
            raise ValueError(f"trace must be 'exact' or a number of random vectors >= 1, got {trace!r}")
        return "exact", dim
    if isinstance(trace, bool) or int(trace) != trace or trace < 1:
        raise ValueError(f"trace must be 'exact' or a number of random vectors >= 1, got {trace!r}")
    return "stochastic", int(trace)


def _prepare(system, num_moments, trace, seed, realisation):
    """Validated (H, D, N, trace kind, R, seed, parameters, realisation) shared by both engines."""
    N = _check_num_moments(num_moments)
    H = scipy.sparse.csr_matrix(system.hamiltonian)
    D = H.shape[0]
    kind, R = _trace_plan(trace, D)
    params = dict(getattr(system, "parameters", {}) or {})
    if realisation is None:
        realisation = int(params.get("realisation", 0))
    return H, D, N, kind, R, check_seed(seed), params, realisation


def _basis_rows(dim: int, start: int, stop: int, dtype) -> np.ndarray:
    rows = np.zeros((stop - start, dim), dtype=dtype)
    rows[np.arange(stop - start), np.arange(start, stop)] = 1.0
    return rows


# ----------------------------------------------------------------------------- 2D engine
class _KuboEngine:
    """2D moments of one Hamiltonian for a batch of start vectors.

    The Y chain ``T_n B|v⟩`` is stored, in blocks of ``block_size`` orders when it does not
    fit (regenerated from checkpoints); the X chain ``T_m|v⟩`` is streamed,
    three vectors at a time, and each ``A†T_m|v⟩`` goes into a tile of c
    orders.  Per tile and Y block one GEMM gives ``μ[n, m] = ⟨A†X_m|Y_n⟩``:
    memory is the Y block plus ``n_left·c`` vectors instead of all chains.

    ``real_left[k]``: the left operator k equals B (Hermitian), so
    ``μ_nm = Tr[B T_n B T_m]`` is real and symmetric (cyclicity and
    Hermiticity); only ``Re⟨·|·⟩`` is computed, by a real GEMM at half the
    cost (its imaginary part has zero mean: it is pure noise).
    """

    def __init__(self, op: RescaledOperator, left_dagger, right, num_moments: int, block_size: int,
                 tile_size: int, real_left):
        self.op = op
        self.be = op.backend
        self.xp = op.backend.xp
        self.left_dagger = left_dagger  # A† on the backend (CSR or stencil)
        self.right = right  # B on the backend
        self.real_left = list(real_left)
        self.N = num_moments
        self.block_size = block_size  # orders per Y block
        self.c = tile_size
        self.time_spmv = 0.0
        self.time_gemm = 0.0
        self.held_bytes = 0  # largest sum of the arrays held during one batch (gpukpm.engine.plan's held_bytes)
        self._x_buffers = []

    def _apply(self, M, rows, out=None):
        """M applied to every row of a (..., D) array (one sparse product)."""
        return self.be.apply_rows(M, rows, out=out)

    def run(self, start, hermitian_blocks: bool, summed: bool):
        """μ summed over D (not divided by D), on the backend.

        ``summed``: one (n_left, N, N) sum over all start vectors (exact
        basis: GEMMs with inner dimension R·D); otherwise per vector,
        (R, n_left, N, N).  ``hermitian_blocks``: compute ``μ[n, m]`` only for
        n at or after the start of m's tile and fill the rest by Hermitian
        conjugation (exact trace only: a stochastic μ is not Hermitian).
        """
        xp, be = self.xp, self.be
        R, D = start.shape
        nA, N, c = len(self.left_dagger), self.N, self.c
        mu = xp.zeros((nA, N, N) if summed else (R, nA, N, N), dtype=np.complex128)
        t = be.timer()
        chain_y = ChebyshevChain(self.op, self._apply(self.right, start), N, self.block_size)
        y_buffer = be.empty_block((self.block_size, R, D), start.dtype)
        tile = be.empty_block(self._tile_shape(R, D), start.dtype)
        self.time_spmv += be.timer() - t
        for J in range(chain_y.num_blocks):
            n0, n1 = chain_y.block_range(J)
            t = be.timer()
            Y = chain_y.block(J, out=y_buffer[: n1 - n0])
            self._prepare_y(Y)
            self.time_spmv += be.timer() - t
            m_end = min(N, -(-n1 // c) * c) if hermitian_blocks else N
            for m0, m1 in self._x_tiles(start, tile, m_end):
                t = be.timer()
                lo = max(m0, n0) if hermitian_blocks else n0
                if lo < n1:
                    self._tile_gemm(mu, tile, Y[lo - n0:], m0, m1, lo, n1, summed)
                self.time_gemm += be.timer() - t
        held = (y_buffer.nbytes + tile.nbytes + sum(buf.nbytes for buf in self._x_buffers) + chain_y.start.nbytes
                + sum(p.nbytes + q.nbytes for p, q in chain_y.checkpoints.values()) + mu.nbytes)
        self.held_bytes = max(self.held_bytes, int(held))
        if hermitian_blocks:
            for m0 in range(0, N, c):
                m1 = min(m0 + c, N)
                mu[..., :m0, m0:m1] = xp.conj(xp.swapaxes(mu[..., m0:m1, :m0], -1, -2))
        return mu

    def _tile_shape(self, R: int, D: int) -> tuple:
        return len(self.left_dagger), self.c, R, D

    def _prepare_y(self, Y) -> None:
        """Hook for a layout change of a fresh Y block (none here)."""

    def _fill_tile(self, tile, slot: int, cur) -> None:
        """``tile[k, slot] = A_k† T_m|v⟩`` for every left operator k."""
        for k, Ad in enumerate(self.left_dagger):
            self._apply(Ad, cur, out=tile[k, slot])

    def _x_tiles(self, start, tile, m_end: int):
        """Fill the tile slots ``m − m0`` from ``T_m|v⟩`` for successive tiles; yield ``(m0, m1)`` after each."""
        be, op = self.be, self.op
        c = self.c
        buffers = self._x_buffers = [be.xp.empty_like(start) for _ in range(3)]
        prev, cur = None, start
        for m0 in range(0, m_end, c):
            m1 = min(m0 + c, m_end)
            t = be.timer()
            for m in range(m0, m1):
                self._fill_tile(tile, m - m0, cur)
                if m + 1 < m_end:
                    nxt = next(buf for buf in buffers if buf is not cur and buf is not prev)
                    if prev is None:
                        op.first(cur, out=nxt)
                    else:
                        op.step_into(cur, prev, nxt)
                    prev, cur = cur, nxt
            if m1 == m_end:
                guard_norm(op, cur, m_end - 1, float(be.xp.linalg.norm(start, axis=1).max()))
            self.time_spmv += be.timer() - t
            yield m0, m1

    def _tile_gemm(self, mu, tile, Y, m0: int, m1: int, n0: int, n1: int, summed: bool) -> None:
        """``mu[..., k, n, m] = ⟨tile[k, m − m0]|Y[n − n0]⟩`` for m ∈ [m0, m1), n ∈ [n0, n1)."""
        be = self.be
        width, (R, D) = m1 - m0, Y.shape[1:]
        for k in range(len(self.left_dagger)):
            gemm = be.real_gemm if self.real_left[k] else be.conj_gemm
            if summed:
                G = gemm(tile[k, :width].reshape(width, R * D), Y.reshape(n1 - n0, R * D))
                mu[k, n0:n1, m0:m1] = G.T
            else:
                for r in range(R):
                    # row-strided operands (row stride R·D): the backend's GEMMs take them as they are
                    mu[r, k, n0:n1, m0:m1] = gemm(tile[k, :width, r], Y[:, r]).T


class _SpinKuboEngine(_KuboEngine):
    """:class:`_KuboEngine` for left operators that are all on-site spins ``s_k = 1 ⊗ σ_k``.

    With the spin the fastest orbital index, ``⟨X| s_k |Y⟩ = Σ_ab (σ_k)_ab G_ab`` with the four
    spin-resolved products ``G_ab[m, n] = Σ_i conj(X_m[i, a]) Y_n[i, b]`` (sums over the D/2
    sites i).  Each G_ab is a GEMM of inner dimension D/2, so s_x, s_y, s_z together cost the
    flops of two full GEMMs instead of three (s_z alone needs G_↑↑, G_↓↓; s_x and s_y share
    G_↑↓, G_↓↑).  The tile holds ``conj`` of the two spin halves of each ``T_m|v⟩`` (one
    tile for all operators instead of one per operator, no sparse products), and every Y block
    is rearranged in place to ``[Y_↑ | Y_↓]`` per vector, so both GEMM operands are row-strided
    views: ``tile_a @ Y_bᵀ`` runs as one BLAS call without copies (NumPy's matmul; CPU only).
    """

    def __init__(self, op: RescaledOperator, spins, right, num_moments: int, block_size: int, tile_size: int):
        super().__init__(op, [None] * len(spins), right, num_moments, block_size, tile_size, [False] * len(spins))
        self.spins = [np.asarray(s, dtype=complex) for s in spins]
        self.pairs = [(a, b) for a in range(2) for b in range(2) if any(s[a, b] != 0 for s in self.spins)]

    def _tile_shape(self, R: int, D: int) -> tuple:
        return 2, self.c, R, D // 2

    def _prepare_y(self, Y) -> None:
        """Every ``Y[n, r]`` from interleaved spins (↑↓↑↓…) to ``[↑… | ↓…]``, in place."""
        xp = self.xp
        H = Y.shape[-1] // 2
        scratch = xp.empty(Y.shape[1:], dtype=Y.dtype)
        for n in range(Y.shape[0]):
            scratch[...] = Y[n]
            Y[n, :, :H] = scratch[:, 0::2]
            Y[n, :, H:] = scratch[:, 1::2]

    def _fill_tile(self, tile, slot: int, cur) -> None:
        for a in range(2):
            self.xp.conjugate(cur[:, a::2], out=tile[a, slot])

    def _spin_products(self, P, Yr):
        """``(a, b, G_ab)`` for the needed pairs from the tile halves P (2, width, H) and Yr (n, D),
        each Yr[n] laid out ``[↑ | ↓]``.  When all four pairs are needed and Yr is contiguous, Yr
        read as (2n, H) (rows n↑, n↓, …) gives both b of one a in a single, larger GEMM."""
        H = Yr.shape[1] // 2
        if len(self.pairs) == 4 and Yr.flags.c_contiguous:
            stacked = Yr.reshape(2 * Yr.shape[0], H)
            for a in range(2):
                g = P[a] @ stacked.T  # (width, 2n): columns (n, ↑), (n, ↓), …
                yield a, 0, g[:, 0::2]
                yield a, 1, g[:, 1::2]
            return
        for a, b in self.pairs:
            yield a, b, P[a] @ Yr[:, b * H:(b + 1) * H].T

    def _tile_gemm(self, mu, tile, Y, m0: int, m1: int, n0: int, n1: int, summed: bool) -> None:
        """``mu[..., k, n, m] = Σ_ab (σ_k)_ab Σ_i conj(X_m[i,a]) Y_n[i,b]`` (:meth:`_spin_products`)."""
        width, R = m1 - m0, Y.shape[1]
        G = {}
        for r in range(R):
            for a, b, g in self._spin_products(tile[:, :width, r], Y[:, r]):
                if summed:
                    G[a, b] = g if r == 0 else G[a, b] + g
                else:
                    G[r, a, b] = g
        for r in range(1 if summed else R):
            for k, s in enumerate(self.spins):
                block = sum(s[a, b] * G[(a, b) if summed else (r, a, b)] for a, b in self.pairs if s[a, b] != 0)
                if summed:
                    mu[k, n0:n1, m0:m1] = block.T
                else:
                    mu[r, k, n0:n1, m0:m1] = block.T


def kubo_moments(system, left=("sx", "sy", "sz"), right="jx", num_moments: int = 256, trace="exact",
                 seed: int = 0, block_size: int | None = None, *, realisation: int | None = None,
                 vectors=None, vectors_per_batch: int | None = None, backend=None,
                 dtype=np.complex128, bounds=None, scaling: Rescaling | None = None,
                 memory_budget: int | None = None, progress: bool = True,
                 estimator: str = "plain") -> Moments:
    r"""2D Chebyshev moments ``μ_nm^{A,B} = Tr[A T_n(H̃) B T_m(H̃)]/D`` of a real-space system.

    This is :func:`gpukpm.engine.plan.plan_kubo` (same parameters but ``progress``) followed by
    :meth:`~gpukpm.engine.plan.KuboPlan.run`: the plan states the block size, tiles, routes, memory and
    predicted cost before any product.

    Parameters
    ----------
    system : a System (``.hamiltonian``, ``.operator(name)``, ``.area``, ``.num_orbitals``).
    left : operator names ("sx", "sy", "sz", "jx", "jy") or sparse matrices (D, D); one μ each.
    right : the right operator B shared by all (default the current "jx", eV·nm).
    num_moments : N ≥ 2.
    trace : "exact" (all D basis vectors) or R, a number of random-phase vectors.
    seed : run seed; vector v of realisation r is keyed by (seed, r, v).
    block_size : orders per Chebyshev block (default: from ``memory_budget``).
    realisation : disorder realisation id used to key the vectors (default: the
        system's own, ``system.parameters['realisation']``, else 0).
    vectors : explicit vector ids (default 0..R−1) — how MPI tasks share work.
    vectors_per_batch : random vectors propagated together (SpMM width).
    backend : "cpu", "gpu", "auto" or a Backend.
    dtype : complex128 (default) or complex64 for the recursion and GEMM; μ is
        accumulated in complex128.
    bounds / scaling : spectral bounds (E_min, E_max) by hand, or a ready Rescaling.
    memory_budget : bytes the Chebyshev blocks may use (default: half the free memory).
    estimator : stochastic trace estimator (:mod:`gpukpm.engine.estimators`): "plain" (default) or a
        dilution, "spin_diluted" (s_z), "spin_m_diluted" (spin along m̂), "sublattice_diluted",
        "spin_sublattice_diluted"; a diluted sample is the sum over the k colours of
        ``⟨P_c r|X|P_c r⟩`` (k chain pairs per vector); recorded as ``provenance["estimator"]``.

    """
    from gpukpm.engine.plan import plan_kubo

    plan = plan_kubo(system, left=left, right=right, num_moments=num_moments, trace=trace, seed=seed,
                     block_size=block_size, realisation=realisation, vectors=vectors,
                     vectors_per_batch=vectors_per_batch, backend=backend, dtype=dtype, bounds=bounds,
                     scaling=scaling, memory_budget=memory_budget, estimator=estimator)
    return plan.run(progress=progress)


# ----------------------------------------------------------------------------- 1D moments
def dos_moments(system, num_moments: int = 256, trace="exact", seed: int = 0, *, operator=None,
                realisation: int | None = None, vectors_per_batch: int | None = None, backend=None,
                dtype=np.complex128, bounds=None, scaling: Rescaling | None = None,
                progress: bool = True) -> Moments:
    r"""1D moments ``μ_n = Tr[A T_n(H̃)]/D`` (A = 1 by default: the density of states).

    For A = 1 each Chebyshev step gives two moments,
    ``μ_{2n} = 2⟨T_n|T_n⟩ − μ_0`` and ``μ_{2n+1} = 2⟨T_{n+1}|T_n⟩ − μ_1``,
    so N moments cost ⌈N/2⌉ products.  Returns one sample per random vector
    (``mu_samples`` shaped (S, 1, N)).
    """
    be = get_backend(backend)
    H, D, N, kind, R, seed, params, realisation = _prepare(system, num_moments, trace, seed, realisation)
    dtype = np.dtype(dtype)
    t_start = time.perf_counter()
    scale = scaling or rescaling(H, bounds=bounds, backend=be)
    op = RescaledOperator(H, scale, be, dtype=dtype)
    name, A = ("identity", None) if operator is None else resolve_operator(system, operator, D)
    A_dag = None if A is None else be.csr(A.conj().T, dtype=dtype)

    batch = vectors_per_batch or min(64 if kind == "exact" else 8, R)
    starts = list(range(0, R, batch))
    per_vector = []
    bar = Progress(len(starts), "dos moments", "batches", enabled=progress)
    for s0 in starts:
        s1 = min(s0 + batch, R)
        rows = (_basis_rows(D, s0, s1, dtype) if kind == "exact"
                else random_phase_vectors(D, seed, realisation, range(s0, s1), dtype=dtype).T.copy())
        v = be.asarray(rows)
        per_vector.append(be.to_host(_chebyshev_1d(op, v, A_dag, N)))
        bar.advance()
    mu = np.concatenate(per_vector, axis=0) / D  # (R, N)
    if kind == "exact":
        mu = mu.sum(axis=0, keepdims=True)
    samples = mu[:, None, :].astype(np.complex128)
    provenance = dict(be.device_info(), gpukpm=__version__, dtype=str(dtype), spmv_count=op.spmv_count,
                      nnz=op.nnz, operator_route=op.route, time_total=time.perf_counter() - t_start)
    return Moments(
        mu_samples=samples, a=scale.a, b=scale.b, emin=scale.emin, emax=scale.emax, epsilon=scale.epsilon,
        num_orbitals=float(D), area=float(system.area), left=(name,), right=None, trace=kind, seed=seed,
        sample_realisations=np.full(samples.shape[0], realisation),
        sample_vectors=np.arange(samples.shape[0]) if kind == "stochastic" else np.array([-1]),
        hermitian=True, parameters=params, provenance=provenance,
    )


def _chebyshev_1d(op: RescaledOperator, v, A_dag, N: int):
    """Per-row ⟨A†v|T_n v⟩ for n < N (doubling trick when A = 1)."""
    xp = op.backend.xp
    R = v.shape[0]
    out = xp.zeros((R, N), dtype=np.complex128)
    left = v if A_dag is None else xp.ascontiguousarray((A_dag @ v.T).T)

    def dot(p, q):
        return op.backend.row_dots(p, q)  # ⟨p_r|q_r⟩ per row, no (R, D) temporaries

    prev, cur = v.copy(), op.first(v)
    if A_dag is None:
        mu0, mu1 = dot(v, v), dot(v, cur)
        out[:, 0], out[:, 1] = mu0, mu1
        n = 1  # cur = T_n, prev = T_{n−1}
        while 2 * n < N:
            out[:, 2 * n] = 2 * dot(cur, cur) - mu0
            if 2 * n + 1 < N:
                op.step(cur, prev)  # prev ← T_{n+1}
                out[:, 2 * n + 1] = 2 * dot(prev, cur) - mu1
                prev, cur = cur, prev
            n += 1
    else:
        out[:, 0], out[:, 1] = dot(left, v), dot(left, cur)
        for n in range(2, N):
            op.step(cur, prev)
            prev, cur = cur, prev
            out[:, n] = dot(left, cur)
    _check_recursion_norm(op, v, cur, N - 1)
    return out


def _check_recursion_norm(op: RescaledOperator, v, last, order: int) -> None:
    """‖T_n(H̃)v‖ ≤ ‖v‖ holds for a spectrum in [−1, 1]; growth means a leak."""
    from gpukpm.engine.spectrum import SpectrumLeakError

    xp = op.backend.xp
    ratio = float((xp.linalg.norm(last, axis=1) / xp.linalg.norm(v, axis=1)).max())
    if not math.isfinite(ratio) or ratio > 1.0 + 1e-6:
        raise SpectrumLeakError(
            f"‖T_{order}(H̃)v‖/‖v‖ = {ratio:.6g} > 1: the spectrum of H̃ = (H − b)/a leaks outside "
            f"[−1, 1] (a = {op.scaling.a:.6g} eV, b = {op.scaling.b:.6g} eV); widen the bounds"
        )
