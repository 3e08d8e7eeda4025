r"""Chebyshev recursion ``T_{n+1}(H̃)|v⟩ = 2H̃ T_n(H̃)|v⟩ − T_{n−1}(H̃)|v⟩`` in blocks.

Vectors are stored row-wise: a batch of R start vectors is an (R, D) array,
a block of b consecutive Chebyshev vectors of that batch is (b, R, D): order
after order, each ``T_n|v_r⟩`` contiguous, and a block reshaped to (b, R·D)
stacks all vectors along the GEMM's inner dimension (one GEMM sums over an
exact basis).

:class:`ChebyshevChain` produces block ``j`` (orders ``j·b … (j+1)·b − 1``) on
demand.  It keeps, at every block boundary it has passed, the pair of
recursion vectors ``(T_{jb−1}|v⟩, T_{jb}|v⟩)`` as a checkpoint, so a block is
regenerated from the nearest checkpoint instead of from ``|v⟩``, and all N
vectors never need to be held at once.  Restarting from the right pair is
what keeps moments independent of the block size.

Every checkpoint also guards stability: for a spectrum inside [−1, 1],
``‖T_n(H̃)v‖ ≤ ‖v‖``; growth beyond that raises :class:`SpectrumLeakError`.
"""
from __future__ import annotations

import math

import numpy as np

from gpukpm.engine.spectrum import Rescaling, SpectrumLeakError

__all__ = ["RescaledOperator", "ChebyshevChain", "guard_norm"]

_LEAK_TOLERANCE = 1e-6


class RescaledOperator:
    """``2H̃ = 2(H − b)/a`` on the backend (CSR, or a cell stencil), with its SpMV/SpMM step.

    ``stencil`` (a :class:`~gpukpm.models.stencil.CellStencil` of H) is used instead
    of the CSR matrix when the backend runs stencils (the CPU with Numba, the GPU
    once its kernel passed the self-check); ``route`` records which ("stencil" or "csr").
    """

    def __init__(self, hamiltonian, scaling: Rescaling, backend, dtype=np.complex128, stencil=None):
        import scipy.sparse

        self.backend = backend
        self.dtype = np.dtype(dtype)
        self.scaling = scaling
        if stencil is not None and backend.uses_stencils():
            self.route = "stencil"  # provenance
            self.dim = stencil.dim
            self.H2 = stencil.rescaled(2.0 / scaling.a, scaling.b).astype(dtype)  # 2H̃
        else:
            H = scipy.sparse.csr_matrix(hamiltonian, dtype=dtype)
            eye = scipy.sparse.identity(H.shape[0], dtype=dtype, format="csr")
            self.route = "csr"
            self.dim = H.shape[0]
            self.H2 = backend.csr((H - scaling.b * eye) * (2.0 / scaling.a), dtype=dtype)  # 2H̃
        self.nnz = int(self.H2.nnz)
        self.spmv_count = 0  # vector-products performed (one per column per step)
        self.progress = None  # optional gpukpm.engine.progress.Progress, advanced per vector-product

    def first(self, v, out=None):
        """``T_1|v⟩ = H̃|v⟩`` for rows of v (R, D), into ``out`` when given."""
        out = self.backend.apply_rows(self.H2, v, out=out)
        out *= 0.5
        self._count(v.shape[0])
        return out

    def step(self, x, y) -> None:
        """In place ``y ← 2H̃x − y`` (so y becomes T_{n+1} from x = T_n, y = T_{n−1})."""
        self.backend.chebyshev_step(self.H2, x, y)
        self._count(x.shape[0])

    def step_into(self, x, y, out) -> None:
        """``out ← 2H̃x − y``: T_{n+1} written straight into its slot (no copy)."""
        self.backend.chebyshev_step_into(self.H2, x, y, out)
        self._count(x.shape[0])

    def _count(self, columns: int) -> None:
        self.spmv_count += columns
        if self.progress is not None:
            self.progress.advance(columns)


def guard_norm(op: RescaledOperator, vec, order: int, start_norm: float) -> None:
    """Raise :class:`SpectrumLeakError` when ``‖T_order(H̃)v‖ > ‖v‖`` (a spectrum outside [−1, 1])."""
    norm = float(op.backend.xp.linalg.norm(vec, axis=1).max())
    if not math.isfinite(norm) or norm > (1.0 + _LEAK_TOLERANCE) * start_norm:
        raise SpectrumLeakError(
            f"Chebyshev vector T_{order}(H̃)|v⟩ has norm {norm:.6g} > ‖v‖ = {start_norm:.6g}: "
            "the spectrum of H̃ = (H − b)/a leaks outside [−1, 1]; widen the spectral bounds "
            f"(now a = {op.scaling.a:.6g} eV, b = {op.scaling.b:.6g} eV)"
        )


class ChebyshevChain:
    """Blocks of ``T_n(H̃)|v_r⟩`` for n < N, regenerated from checkpoints.

    Parameters
    ----------
    op : RescaledOperator
    start : (R, D) backend array, the start vectors (rows).
    num_moments : N
    block_size : b, the number of orders per block.
    """

    def __init__(self, op: RescaledOperator, start, num_moments: int, block_size: int):
        self.op = op
        self.xp = op.backend.xp
        self.start = self.xp.ascontiguousarray(start)
        self.num_moments = int(num_moments)
        self.block_size = int(block_size)
        self.num_blocks = math.ceil(self.num_moments / self.block_size)
        self.start_norm = float(self.xp.linalg.norm(self.start, axis=1).max())
        # checkpoints[j] = (T_{jb−1} v, T_{jb} v) for block boundaries j ≥ 1
        self.checkpoints: dict[int, tuple] = {}

    def block_range(self, j: int) -> tuple[int, int]:
        lo = j * self.block_size
        return lo, min(lo + self.block_size, self.num_moments)

    def _guard(self, vec, order: int) -> None:
        guard_norm(self.op, vec, order, self.start_norm)

    def block(self, j: int, out=None):
        """Block j as an (n_j, R, D) array (orders ``block_range(j)``)."""
        if not 0 <= j < self.num_blocks:
            raise IndexError(f"block {j} outside 0..{self.num_blocks - 1}")
        lo, hi = self.block_range(j)
        R, D = self.start.shape
        if out is None:
            out = self.op.backend.empty_block((hi - lo, R, D), self.start.dtype)
        # nearest checkpoint at or below j; walk (in place, two buffers) up to order lo
        k = max([c for c in self.checkpoints if c <= j], default=0)
        if k == 0:
            prev, cur, order = None, (self.start.copy() if lo > 0 else self.start), 0  # never step on start
        else:
            prev, cur = (a.copy() for a in self.checkpoints[k])
            order = k * self.block_size
        while order < lo:
            if prev is None:
                prev, cur = cur, self.op.first(cur)
            else:
                self.op.step(cur, prev)
                prev, cur = cur, prev
            order += 1
        # the block itself: every new order goes straight into its slot
        out[0] = cur
        for n in range(1, hi - lo):
            if n == 1:
                if prev is None:
                    self.op.first(out[0], out=out[1])
                else:
                    self.op.step_into(out[0], prev, out[1])
            else:
                self.op.step_into(out[n - 1], out[n - 2], out[n])
        # checkpoint the next boundary (T_{hi−1}, T_hi) with one more step
        if hi < self.num_moments and (j + 1) not in self.checkpoints:
            before = out[-2] if hi - lo >= 2 else prev
            nxt = self.op.first(out[-1]) if before is None else self.xp.empty_like(out[-1])
            if before is not None:
                self.op.step_into(out[-1], before, nxt)
            self._guard(nxt, hi)
            self.checkpoints[j + 1] = (out[-1].copy(), nxt)
        if hi == self.num_moments:
            self._guard(out[-1], hi - 1)
        return out
