r"""Plan of a 2D-moment run (block size, tiles, routes, memory, predicted cost) and its execution.

:func:`plan_kubo` does everything :func:`gpukpm.engine.realspace.kubo_moments` decides before the
first Chebyshev product — validation, the rescaling, the operator route (cell stencil or CSR), the
GEMM route (spin-resolved or per operator), the batch, tile and block sizes from the memory budget —
and returns a :class:`KuboPlan` that states the predicted cost; :meth:`KuboPlan.run` executes it.
``kubo_moments(...)`` is ``plan_kubo(...).run()``.

The cost model (:func:`kubo_cost`) walks the engine's own loops (batches × Y blocks × X tiles) and
counts, per run:

* ``spmv_count``: products of 2H̃ with one vector (``RescaledOperator.spmv_count``): per start
  vector ``(N − 1)`` for the stored Y chain plus ``(m_end − 1)`` for the X chain streamed once per Y
  block (``m_end = N``; with the exact trace's Hermitian blocks the tile edge after the block end);
* ``steps``: batched steps (the matrix is read once per step for all start vectors of a batch);
* ``operator_products``: products with B (once per start vector) and with every A† per X order
  (per-operator GEMM route; the spin-resolved route copies spin halves instead);
* ``gemm_flops``: ``8·w·n·D`` per complex GEMM of a w-order tile with an n-order Y block and inner
  dimension D, ``4·w·n·D`` for the real GEMM (A = B), ``4·w·n·D`` per spin pair (inner D/2) on the
  spin-resolved route;
* bytes: ``spmv_bytes = steps·M + spmv_count·3·s·D`` (M the matrix: CSR ``nnz·(s + 4) + 4(D + 1)``,
  cell stencil ``8·D`` for its diagonal; read x, read y, write out per vector; s the item size),
  ``operator_bytes = operator_products·3·s·D`` (+ ``M_A`` per batched product for CSR operators),
  ``gemm_bytes`` = both operands read once per GEMM;
* ``held_bytes``: the arrays the engine holds during a batch — the Y block ``b·V``, the tile
  (``n_left·c·V``, spin route ``c·V``), three X vectors, the chain start B|v⟩, the checkpoints
  ``2(n_blocks − 1)·V`` and the moments — with V = S·D·s for S start vectors per batch, and
  ``transient_bytes`` (two checkpoint copies when a block is regenerated, the spin route's
  re-layout scratch) on top.

:func:`kubo_moments` records the same counts measured (``provenance["spmv_count"]``,
``provenance["held_bytes"]``), and ``tests/test_plan.py`` checks them equal.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import scipy.sparse

from gpukpm import __version__
from gpukpm.engine.backend import get_backend
from gpukpm.engine.chebyshev import RescaledOperator
from gpukpm.engine.estimators import dilution
from gpukpm.engine.moments import Moments
from gpukpm.engine.progress import Progress
from gpukpm.engine.spectrum import Rescaling, margin_for, rescaling
from gpukpm.models.operators import PAULI, SPIN_NAMES
from gpukpm.models.random import random_phase_vectors

__all__ = ["KuboCost", "KuboPlan", "kubo_cost", "plan_kubo", "spin_pairs", "GEMM_ROUTES", "DEFAULT_STOCHASTIC_BATCH",
           "DEFAULT_EXACT_BATCH"]

GEMM_ROUTES = ("spin-resolved", "per-operator")
DEFAULT_STOCHASTIC_BATCH = 1  # random vectors per batch by default (the CPU step gains nothing from more)
DEFAULT_EXACT_BATCH = 32  # basis vectors per batch of the exact trace


def spin_pairs(left_names) -> list[tuple[int, int]]:
    """The spin-resolved products ``G_ab`` that the on-site spins ``left_names`` need."""
    spins = [PAULI[name[1]] for name in left_names]
    return [(a, b) for a in range(2) for b in range(2) if any(np.asarray(s)[a, b] != 0 for s in spins)]


@dataclass(frozen=True)
class KuboCost:
    """Predicted work and memory of one 2D-moment run (module doc: the model)."""

    spmv_count: int
    steps: int
    operator_products: int
    gemm_flops: float
    spmv_bytes: float
    operator_bytes: float
    gemm_bytes: float
    held_bytes: int
    transient_bytes: int

    @property
    def memory_bytes(self) -> int:
        """Peak bytes of the engine's arrays: held + transient."""
        return self.held_bytes + self.transient_bytes

    @property
    def stream_bytes(self) -> float:
        """Bytes moved by the memory-bound part (SpMV and operator products)."""
        return self.spmv_bytes + self.operator_bytes

    def as_dict(self) -> dict:
        return dict(asdict(self), memory_bytes=self.memory_bytes, stream_bytes=self.stream_bytes)


def kubo_cost(*, dim: int, num_moments: int, batches, block_size: int, tile_size: int, num_left: int,
              gemm_route: str, real_left=(), pairs=(), hermitian_blocks: bool = False, summed: bool = False,
              itemsize: int = 16, matrix_bytes: float = 0.0, operator_matrix_bytes: float = 0.0) -> KuboCost:
    """Walk the engine's loops for ``batches`` (start vectors per batch, in order) and count (module doc)."""
    D, N, b, c = int(dim), int(num_moments), int(block_size), int(tile_size)
    if gemm_route not in GEMM_ROUTES:
        raise ValueError(f"gemm_route must be one of {GEMM_ROUTES}, got {gemm_route!r}")
    real_left = list(real_left) or [False] * num_left
    nb = math.ceil(N / b)
    spmv = steps = ops = 0
    flops = gemm_bytes = op_bytes = 0.0
    held = transient = 0
    for S in batches:
        V = S * D * itemsize
        products = N - 1  # the stored Y chain
        ops += S  # B|v⟩
        op_bytes += 3 * V + operator_matrix_bytes
        for J in range(nb):
            n0, n1 = J * b, min(N, (J + 1) * b)
            m_end = min(N, -(-n1 // c) * c) if hermitian_blocks else N
            products += m_end - 1
            if gemm_route == "per-operator":
                ops += num_left * m_end * S
                op_bytes += num_left * m_end * (3 * V + operator_matrix_bytes)
            else:
                op_bytes += m_end * 2 * V  # conj copies of the spin halves
            for m0 in range(0, m_end, c):
                width = min(m0 + c, m_end) - m0
                lo = max(m0, n0) if hermitian_blocks else n0
                rows = n1 - lo
                if rows <= 0:
                    continue
                if gemm_route == "per-operator":
                    for k in range(num_left):
                        flops += (4.0 if real_left[k] else 8.0) * width * rows * D * S
                        gemm_bytes += (width + rows) * V
                else:
                    flops += 4.0 * len(pairs) * width * rows * D * S
                    gemm_bytes += len(pairs) * (width + rows) * V / 2
        spmv += products * S
        steps += products
        tile = (num_left * c * V) if gemm_route == "per-operator" else c * V
        mu = (1 if summed else S) * num_left * N * N * 16
        held = max(held, b * V + tile + 3 * V + V + 2 * (nb - 1) * V + mu)
        transient = max(transient, 2 * V if nb > 1 else 0, V if gemm_route == "spin-resolved" else 0)
    spmv_bytes = steps * matrix_bytes + spmv * 3.0 * itemsize * D
    return KuboCost(spmv_count=int(spmv), steps=int(steps), operator_products=int(ops), gemm_flops=float(flops),
                    spmv_bytes=float(spmv_bytes), operator_bytes=float(op_bytes), gemm_bytes=float(gemm_bytes),
                    held_bytes=int(held), transient_bytes=int(transient))


@dataclass
class KuboPlan:
    """Everything :func:`plan_kubo` decided for one 2D-moment run, with its predicted cost.

    Attributes (public): ``dim`` D, ``num_moments`` N, ``trace`` ("exact" | "stochastic"),
    ``num_vectors`` R, ``vector_ids``, ``realisation``, ``estimator``, ``num_colours`` k,
    ``left`` / ``right`` (names), ``dtype``, ``scaling`` (a, b), ``operator_route`` ("stencil" |
    "csr"), ``gemm_route`` ("spin-resolved" | "per-operator"), ``real_left``, ``vectors_per_batch``,
    ``starts_per_batch`` (vectors × colours), ``tile_size`` c, ``block_size`` (orders per Y block),
    ``num_blocks``, ``memory_budget`` (bytes), ``cost`` (:class:`KuboCost`).  :meth:`summary` is the
    JSON-ready record; :meth:`run` computes the moments.
    """

    dim: int
    num_moments: int
    trace: str
    num_vectors: int
    vector_ids: list
    realisation: int
    seed: int
    estimator: str
    num_colours: int
    left: tuple
    right: str
    dtype: np.dtype
    scaling: Rescaling
    real_left: list
    hermitian: bool
    nnz: int
    operator_matrix_bytes: float
    block_size_given: int | None
    vectors_per_batch_given: int | None
    device: str  # "cpu" | "gpu": the kind of backend the routes were chosen for
    operator_route: str
    gemm_route: str
    vectors_per_batch: int
    starts_per_batch: int
    tile_size: int
    block_size: int
    memory_budget: int
    cost: KuboCost
    time_plan: float = 0.0
    _private: dict = field(default_factory=dict, repr=False)

    def retarget(self, *, num_vectors: int | None = None, memory_budget: int | None = None, gpu: bool | None = None,
                 operator_route: str | None = None, vectors_per_batch: int | None = None) -> "KuboPlan":
        """The same run planned for another vector count, memory budget or device kind (for costing only:
        the returned plan cannot :meth:`run` unless only ``num_vectors`` changed on the same backend)."""
        gpu = (self.device == "gpu") if gpu is None else bool(gpu)
        ids = self.vector_ids if num_vectors is None else list(range(int(num_vectors)))
        decided = _decide(gpu=gpu, left=self.left, real_left=self.real_left, trace=self.trace, dim=self.dim,
                          num_moments=self.num_moments, vector_ids=ids, num_colours=self.num_colours,
                          vectors_per_batch=vectors_per_batch or self.vectors_per_batch_given,
                          block_size=self.block_size_given, memory_budget=memory_budget or self.memory_budget,
                          dtype=self.dtype, hermitian=self.hermitian,
                          operator_route=operator_route or self.operator_route, nnz=self.nnz,
                          operator_matrix_bytes=self.operator_matrix_bytes)
        same_device = gpu == (self.device == "gpu") and memory_budget is None and operator_route is None \
            and vectors_per_batch is None
        return replace(self, vector_ids=ids, num_vectors=len(ids) if self.trace == "stochastic" else self.num_vectors,
                       device="gpu" if gpu else "cpu", _private=self._private if same_device else {}, **decided)

    @property
    def num_blocks(self) -> int:
        return math.ceil(self.num_moments / self.block_size)

    def summary(self) -> dict:
        """The plan as a JSON-ready mapping (what ``gpukpm plan --json`` writes per job)."""
        return dict(dim=self.dim, num_moments=self.num_moments, trace=self.trace, num_vectors=self.num_vectors,
                    estimator=self.estimator, colours=self.num_colours, left=list(self.left), right=self.right,
                    dtype=str(self.dtype), a=self.scaling.a, b=self.scaling.b, nnz=self.nnz,
                    operator_route=self.operator_route, gemm_route=self.gemm_route,
                    vectors_per_batch=self.vectors_per_batch, starts_per_batch=self.starts_per_batch,
                    tile_size=self.tile_size, block_size=self.block_size, num_blocks=self.num_blocks,
                    memory_budget=self.memory_budget, device=self.device, cost=self.cost.as_dict())

    def run(self, progress: bool = True) -> Moments:
        """Execute the plan: the moments :func:`~gpukpm.engine.realspace.kubo_moments` returns."""
        from gpukpm.engine.realspace import _KuboEngine, _SpinKuboEngine, _basis_rows

        p = self._private
        if not p:
            raise RuntimeError("this plan was retargeted to another device or budget: it gives costs, it cannot run")
        be, xp, D, N = p["backend"], p["backend"].xp, self.dim, self.num_moments
        t_start = time.perf_counter()
        op = RescaledOperator(p["H"], self.scaling, be, dtype=self.dtype, stencil=p["h_stencil"])
        left_dagger = [p["stencils"](name) if A is None else be.csr(A.conj().T, dtype=self.dtype)
                       for name, A in p["left_named"]]
        right_op = p["stencils"](self.right) if p["B"] is None else be.csr(p["B"], dtype=self.dtype)
        if self.gemm_route == "spin-resolved":
            engine = _SpinKuboEngine(op, [PAULI[name[1]] for name in self.left], right_op, N, self.block_size,
                                     self.tile_size)
        else:
            engine = _KuboEngine(op, left_dagger, right_op, N, self.block_size, self.tile_size, self.real_left)
        batch, k = self.vectors_per_batch, self.num_colours
        # progress in Chebyshev products (the plan's count)
        bar = Progress(self.cost.spmv_count, "kubo moments", "SpMV", enabled=progress)
        op.progress = bar
        if self.trace == "exact":
            total = xp.zeros((len(self.left), N, N), dtype=np.complex128)
            for s0 in range(0, D, batch):
                start = be.asarray(_basis_rows(D, s0, min(s0 + batch, D), self.dtype))
                total += engine.run(start, hermitian_blocks=self.hermitian, summed=True)
            samples = (be.to_host(total) / D)[None]
            sample_vectors = np.array([-1])
        else:
            diluted = p["dilution"]
            samples = np.empty((self.num_vectors, len(self.left), N, N), dtype=np.complex128)
            for s0 in range(0, self.num_vectors, batch):
                ids = self.vector_ids[s0:s0 + batch]
                rows = diluted.rows(random_phase_vectors(D, self.seed, self.realisation, ids, dtype=self.dtype).T)
                mu = be.to_host(engine.run(be.asarray(rows), hermitian_blocks=False, summed=False))
                samples[s0:s0 + len(ids)] = mu.reshape((len(ids), k) + mu.shape[1:]).sum(axis=1) / D
            sample_vectors = np.array(self.vector_ids)
        bar.close()
        op.progress = None
        wall = time.perf_counter() - t_start + self.time_plan
        stochastic = self.trace == "stochastic"
        provenance = dict(
            be.device_info(),
            gpukpm=__version__,
            dtype=str(self.dtype),
            block_size=self.block_size,
            tile_size=self.tile_size,
            gemm_route=self.gemm_route,
            estimator=self.estimator if stochastic else "exact",
            colours=k if stochastic else 1,
            dilution_axis=p["dilution"].axis if stochastic else None,
            operator_route=op.route,
            vectors_per_batch=batch,
            spmv_count=op.spmv_count,
            held_bytes=engine.held_bytes,
            nnz=op.nnz,
            time_total=wall,
            time_spmv=engine.time_spmv,
            time_gemm=engine.time_gemm,
        )
        return Moments(
            mu_samples=samples,
            a=self.scaling.a, b=self.scaling.b, emin=self.scaling.emin, emax=self.scaling.emax,
            epsilon=self.scaling.epsilon, num_orbitals=float(D), area=float(p["area"]),
            left=self.left, right=self.right, trace=self.trace, seed=self.seed,
            sample_realisations=np.full(samples.shape[0], self.realisation),
            sample_vectors=sample_vectors, hermitian=self.hermitian, parameters=p["parameters"],
            provenance=provenance,
        )


def _matrix_bytes(route: str, nnz: int, dim: int, itemsize: int) -> float:
    """Bytes of 2H̃ read per batched step: CSR values + column indices + row pointers, or the stencil's diagonal."""
    return 8.0 * dim if route == "stencil" else nnz * (itemsize + 4.0) + 4.0 * (dim + 1)


def plan_kubo(system, left=("sx", "sy", "sz"), right="jx", num_moments: int = 256, trace="exact",
              seed: int = 0, block_size: int | None = None, *, realisation: int | None = None,
              vectors=None, vectors_per_batch: int | None = None, backend=None,
              dtype=np.complex128, bounds=None, scaling: Rescaling | None = None,
              memory_budget: int | None = None, estimator: str = "plain") -> KuboPlan:
    """The :class:`KuboPlan` of ``kubo_moments(system, ...)`` (same parameters, same decisions)."""
    from gpukpm.engine.realspace import (DEFAULT_MEMORY_FRACTION, _is_hermitian, _prepare, _resolve_lazily,
                                         _stencil_source)

    be = get_backend(backend)
    H, D, N, kind, R, seed, params, realisation = _prepare(system, num_moments, trace, seed, realisation)
    diluted = dilution(system, estimator, D)
    num_colours = diluted.num_colours
    if isinstance(left, (str,)) or scipy.sparse.issparse(left):
        left = (left,)
    stencils = _stencil_source(system, be, dtype)
    left_named = [_resolve_lazily(system, op, D, stencils) for op in left]
    right_name, B = _resolve_lazily(system, right, D, stencils)
    if not left_named:
        raise ValueError("left must name at least one operator")
    dtype = np.dtype(dtype)
    if dtype not in (np.complex128, np.complex64):
        raise ValueError(f"dtype must be complex128 or complex64, got {dtype}")
    if block_size is not None and (int(block_size) != block_size or block_size < 1):
        raise ValueError(f"block_size must be a positive integer, got {block_size!r}")
    if kind == "stochastic":
        vector_ids = list(range(R)) if vectors is None else [int(v) for v in vectors]
        if len(vector_ids) != R:
            raise ValueError(f"vectors lists {len(vector_ids)} ids but trace asks for {R}")
    else:
        vector_ids = [-1]

    t_start = time.perf_counter()
    scale = scaling or rescaling(H, bounds=bounds, backend=be, epsilon=margin_for(N))
    h_stencil = stencils("H")
    operator_route = "stencil" if h_stencil is not None and be.uses_stencils() else "csr"
    nnz = int(h_stencil.nnz) if operator_route == "stencil" else int(
        scipy.sparse.csr_matrix(H - scale.b * scipy.sparse.identity(D, format="csr")).nnz)
    hermitian = all(A is None or _is_hermitian(A) for _, A in left_named + [(right_name, B)])
    real_left = [hermitian and ((A is not None and A is B) or name == right_name != "custom")
                 for name, A in left_named]
    left_names = tuple(name for name, _ in left_named)

    operator_matrix = 0.0
    for name, A in left_named + [(right_name, B)]:
        if A is not None:
            operator_matrix = max(operator_matrix, A.nnz * (dtype.itemsize + 4.0) + 4.0 * (D + 1))
    budget = memory_budget or int(DEFAULT_MEMORY_FRACTION * be.free_memory())
    decided = _decide(gpu=be.is_gpu, left=left_names, real_left=real_left, trace=kind, dim=D, num_moments=N,
                      vector_ids=vector_ids, num_colours=num_colours, vectors_per_batch=vectors_per_batch,
                      block_size=block_size, memory_budget=budget, dtype=dtype, hermitian=hermitian,
                      operator_route=operator_route, nnz=nnz, operator_matrix_bytes=operator_matrix)
    return KuboPlan(
        dim=D, num_moments=N, trace=kind, num_vectors=R, vector_ids=vector_ids, realisation=realisation,
        seed=seed, estimator=estimator, num_colours=num_colours, left=left_names, right=right_name, dtype=dtype,
        scaling=scale, real_left=real_left, hermitian=hermitian, nnz=nnz, operator_matrix_bytes=operator_matrix,
        block_size_given=block_size, vectors_per_batch_given=vectors_per_batch, device="gpu" if be.is_gpu else "cpu",
        time_plan=time.perf_counter() - t_start,
        _private=dict(backend=be, H=H, h_stencil=h_stencil, stencils=stencils, left_named=left_named, B=B,
                      dilution=diluted, area=system.area, parameters=params),
        **decided,
    )


def _decide(*, gpu: bool, left, real_left, trace: str, dim: int, num_moments: int, vector_ids, num_colours: int,
            vectors_per_batch, block_size, memory_budget: int, dtype, hermitian: bool, operator_route: str, nnz: int,
            operator_matrix_bytes: float) -> dict:
    """Routes, batch, tile and block sizes and the cost (the part of a plan that depends on the device)."""
    from gpukpm.engine.realspace import DEFAULT_TILE, choose_block_size

    D, N, dtype = int(dim), int(num_moments), np.dtype(dtype)
    # on-site spins only (CPU): one spin-resolved GEMM per spin pair serves them all
    spin_route = (not gpu and all(name in SPIN_NAMES for name in left) and not any(real_left))
    tile_vectors = 1 if spin_route else len(left)  # vectors per tile slot
    batch = vectors_per_batch or (min(DEFAULT_EXACT_BATCH, D) if trace == "exact" else DEFAULT_STOCHASTIC_BATCH)
    starts_per_batch = batch * (num_colours if trace == "stochastic" else 1)
    vector_bytes = starts_per_batch * D * dtype.itemsize
    tile = int(min(N, DEFAULT_TILE, max(8, memory_budget // (4 * tile_vectors * vector_bytes))))  # ≤ ¼ of the budget
    orders = int(block_size) if block_size else choose_block_size(N, D, starts_per_batch, tile_vectors,
                                                                  dtype.itemsize, memory_budget, tile)
    orders = min(orders, N)
    if trace == "exact":
        batches = [min(s0 + batch, D) - s0 for s0 in range(0, D, batch)]
    else:
        R = len(vector_ids)
        batches = [len(vector_ids[s0:s0 + batch]) * num_colours for s0 in range(0, R, batch)]
    gemm_route = "spin-resolved" if spin_route else "per-operator"
    cost = kubo_cost(dim=D, num_moments=N, batches=batches, block_size=orders, tile_size=tile,
                     num_left=len(left), gemm_route=gemm_route, real_left=real_left,
                     pairs=spin_pairs(left) if spin_route else (),
                     hermitian_blocks=trace == "exact" and hermitian, summed=trace == "exact",
                     itemsize=dtype.itemsize, matrix_bytes=_matrix_bytes(operator_route, nnz, D, dtype.itemsize),
                     operator_matrix_bytes=operator_matrix_bytes)
    return dict(operator_route=operator_route, gemm_route=gemm_route, vectors_per_batch=batch,
                starts_per_batch=starts_per_batch, tile_size=tile, block_size=orders, memory_budget=int(memory_budget),
                cost=cost)
