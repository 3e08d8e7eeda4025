"""Array backend: CuPy + cupyx.scipy.sparse on a CUDA device, NumPy + SciPy otherwise.

With its CUDA kernels (:mod:`gpukpm.engine.gpu_kernels`) it is the only module of gpukpm that
imports CuPy.  Every numerical module
asks for a :class:`Backend` and uses ``backend.xp`` (the array module) and
``backend.sparse`` (the sparse module) so that one code path runs on both.

Selection order: the ``name`` argument of :func:`get_backend`, then the
environment variable ``GPUKPM_BACKEND`` (``cpu``, ``gpu`` or ``auto``), then
``auto`` (GPU when a CUDA device is usable).  Forcing ``gpu`` without a usable
device raises :class:`BackendUnavailable` at once, saying why.
"""
from __future__ import annotations

import functools
import os
import time
import warnings
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np
import scipy.sparse
from gpukpm import envflags
from gpukpm.errors import RunFailure
from gpukpm.models.stencil import CellStencil

__all__ = ["Backend", "BackendUnavailable", "get_backend", "resolve_name", "gpu_status", "device_count",
           "default_device", "launcher_local_rank", "nvidia_hardware", "gpu_missing_library", "cpu_name", "VALID_NAMES",
           "LAUNCHER_LOCAL_RANK", "NVIDIA_DRIVER_PATHS"]

VALID_NAMES = ("auto", "cpu", "gpu")
# rows up to which Backend.row_dots calls one BLAS-1 dot per row (no temporaries) instead of one reduction
ROW_DOTS_LOOP_MAX = 32
_INT32_MAX = 2**31 - 1


class BackendUnavailable(RunFailure):
    """The requested backend cannot be used on this machine."""


def device_count() -> int:
    """Number of CUDA devices this process sees (0 without CuPy or a driver); creates no CUDA context.

    ``cudaGetDeviceCount`` initialises the driver but opens no context on any device, so every rank
    may call it before it has chosen its device.
    """
    try:
        import cupy

        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:  # ImportError, CUDARuntimeError
        return 0


# node-local rank set by the launcher: SLURM's srun, Open MPI, MPICH/Hydra (and Intel MPI)
LAUNCHER_LOCAL_RANK = ("SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID")


def launcher_local_rank() -> int | None:
    """This process's node-local rank as the launcher exports it (:data:`LAUNCHER_LOCAL_RANK`), or None."""
    for name in LAUNCHER_LOCAL_RANK:
        value = os.environ.get(name, "").strip()
        if value.isdigit():
            return int(value)
    return None


def default_device(count: int | None = None) -> int:
    """The device this process owns, chosen without touching any device.

    ``GPUKPM_DEVICE`` when set (:func:`gpukpm.run.parallel.select_backend` exports its choice there),
    else the launcher's node-local rank modulo the devices this process sees, else 0.  Under SLURM
    with one GPU bound per task, ``CUDA_VISIBLE_DEVICES`` shows each task its own GPU as device 0.
    """
    if envflags.is_set("GPUKPM_DEVICE"):
        return envflags.get("GPUKPM_DEVICE")
    local = launcher_local_rank()
    if local is None:
        return 0
    count = device_count() if count is None else count
    return local % count if count > 0 else 0


# (library, CuPy call that needs it): each loads lazily, so a missing one shows only when first used
_LIBRARY_CHECKS = ("NVRTC", "cuBLAS", "cuSPARSE", "cuSOLVER")
_EXTRA_HINT = ("install the CUDA libraries with the 'gpu' extra (pip install 'gpukpm[gpu]', i.e. "
               "cupy-cuda12x[ctk]; 'gpu-cuda13' for CUDA 13 drivers) or load the site's CUDA module and "
               "use the 'gpu-system' extra")


def _check_library(cupy, name: str) -> None:
    """One small call through library ``name`` on the current device (raises when it cannot load)."""
    import numpy

    if name == "NVRTC":  # CuPy compiles its elementwise and reduction kernels with NVRTC
        float((cupy.arange(4, dtype=numpy.float64) * 2.0).sum())
    elif name == "cuBLAS":
        from cupy import cublas

        a = cupy.ones((2, 2), dtype=numpy.complex128)
        cublas.gemm("N", "N", a, a)
    elif name == "cuSPARSE":
        import cupyx.scipy.sparse

        m = cupyx.scipy.sparse.csr_matrix(scipy.sparse.identity(2, dtype=numpy.complex128, format="csr"))
        m @ cupy.ones((2, 1), dtype=numpy.complex128, order="F")
    elif name == "cuSOLVER":
        cupy.linalg.eigh(cupy.ones((2, 2, 2), dtype=numpy.complex128))  # a stack: batched syevj


@functools.lru_cache(maxsize=None)
def gpu_status(device_id: int | None = None) -> tuple[bool, str]:
    """Return ``(usable, reason)`` for the CUDA backend on ``device_id`` (default: :func:`default_device`).

    The probe makes ``device_id`` this process's current device *first* (``Device.use()``) and only
    then touches it, so a process opens a CUDA context on its own device and on no other (CuPy's
    ``with Device(d)`` switches back to device 0 on exit, which would open one there).  It runs one
    small call through each CUDA library gpukpm uses (NVRTC, cuBLAS, cuSPARSE, cuSOLVER) and names
    the first that fails.  Cached per device.
    """
    try:
        import cupy
    except ImportError as exc:  # cupy not installed
        return False, f"CuPy is not installed ({exc}); {_EXTRA_HINT}"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver
        return False, f"no usable CUDA driver ({exc})"
    if count < 1:
        return False, "CuPy is installed but no CUDA device is visible (CUDA_VISIBLE_DEVICES?)"
    device = default_device(count) if device_id is None else int(device_id)
    if not 0 <= device < count:
        return False, f"CUDA device {device} does not exist ({count} visible)"
    try:
        cupy.cuda.Device(device).use()
        cupy.zeros(1)
    except Exception as exc:  # busy (exclusive compute mode), out of memory, broken driver
        return False, f"CUDA device {device} not usable: {exc}"
    for library in _LIBRARY_CHECKS:
        try:
            _check_library(cupy, library)
        except Exception as exc:  # a shared library that does not load, a compile failure
            return False, f"CUDA library {library} not usable on device {device} ({type(exc).__name__}: {exc}); " \
                          f"{_EXTRA_HINT}"
    return True, f"{count} CUDA device(s); this process uses device {device}"


def gpu_missing_library(device_id: int | None = None) -> str | None:
    """The CUDA component that keeps the GPU backend from working ("CuPy", "driver", "NVRTC", "cuBLAS",
    "cuSPARSE", "cuSOLVER"), or None when it works or the reason is something else (busy device)."""
    usable, reason = gpu_status() if device_id is None else gpu_status(device_id)
    if usable:
        return None
    if reason.startswith("CuPy is not installed"):
        return "CuPy"
    if reason.startswith("no usable CUDA driver"):
        return "driver"
    for library in _LIBRARY_CHECKS:
        if reason.startswith(f"CUDA library {library} "):
            return library
    return None


# signs of an NVIDIA GPU that need no CUDA library: the driver's files and its tool
NVIDIA_DRIVER_PATHS = ("/dev/nvidia0", "/proc/driver/nvidia/version")


def nvidia_hardware() -> str | None:
    """What shows this machine has an NVIDIA GPU (a driver file or ``nvidia-smi``), or None."""
    import shutil

    for path in NVIDIA_DRIVER_PATHS:
        if os.path.exists(path):
            return path
    tool = shutil.which("nvidia-smi")
    return tool


_warned_fallback: set = set()


def _warn_cpu_fallback(reason: str) -> None:
    """``auto`` fell back to the CPU: say so (once per process) when the machine has a GPU."""
    hardware = nvidia_hardware()
    if hardware is None or reason in _warned_fallback:
        return
    _warned_fallback.add(reason)
    warnings.warn(f"backend 'auto' runs on the CPU although this machine has an NVIDIA GPU ({hardware}): "
                  f"{reason}", RuntimeWarning, stacklevel=3)


def host_available_memory() -> int | None:
    """Bytes of host memory available to a new allocation (None when unknown): psutil when installed,
    else ``MemAvailable`` of ``/proc/meminfo``, else ``os.sysconf``."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


@dataclass(frozen=True)
class Backend:
    """Array and sparse modules of one device, plus helpers to move data."""

    name: str  # "cpu" or "gpu"
    xp: ModuleType = field(repr=False)
    sparse: ModuleType = field(repr=False)
    device_id: int = 0

    @property
    def is_gpu(self) -> bool:
        return self.name == "gpu"

    # -- data movement -------------------------------------------------------
    def asarray(self, a, dtype=None):
        """Array on this backend's device (no copy when already there)."""
        return self.xp.asarray(a, dtype=dtype)

    def to_host(self, a) -> np.ndarray:
        """NumPy copy of an array (identity on the CPU backend)."""
        if self.is_gpu and not isinstance(a, np.ndarray):
            return a.get()
        return np.asarray(a)

    def csr(self, matrix, dtype=None):
        """CSR matrix on this backend from any SciPy sparse matrix or array."""
        m = scipy.sparse.csr_matrix(matrix)
        if dtype is not None:
            m = m.astype(dtype)
        m.sort_indices()
        if self.is_gpu:
            return self.sparse.csr_matrix(m)
        return m

    def synchronize(self) -> None:
        """Wait for queued device work (for honest timers)."""
        if self.is_gpu:
            self.xp.cuda.Device(self.device_id).synchronize()

    def timer(self) -> float:
        """Synchronised wall clock (s)."""
        self.synchronize()
        return time.perf_counter()

    def free_memory(self) -> int:
        """Bytes of memory free for arrays on this device."""
        if self.is_gpu:
            free, _total = self.xp.cuda.Device(self.device_id).mem_info
            pool = self.xp.get_default_memory_pool()
            return int(free + pool.free_bytes())
        return host_available_memory() or 4 * 1024**3

    # -- the two kernels of the KPM engine ---------------------------------
    def chebyshev_step(self, H2, x, y) -> None:
        """In place ``y ← H2·x − y`` for row-stacked vectors x, y of shape (R, D).

        ``H2 = 2H̃`` (CSR on this backend).  On the GPU one cuSPARSE SpMM call
        does the whole step (``alpha=1, beta=−1`` on the Fortran-ordered
        transposes); on the CPU the fused multithreaded Numba kernel of
        :mod:`gpukpm.engine.cpu_kernels` when Numba is installed, else SciPy's CSR
        product and one subtraction.  A :class:`~gpukpm.models.stencil.CellStencil`
        H2 goes to the stencil kernel of the device (:mod:`gpukpm.engine.gpu_kernels`
        or :mod:`gpukpm.engine.cpu_kernels`).
        """
        from gpukpm.engine import cpu_kernels

        if isinstance(H2, CellStencil):
            self._stencil_kernels().stencil_step_into(H2, x, y, y)
            return
        if self.is_gpu:
            from cupyx import cusparse

            cusparse.spmm(H2, x.T, c=y.T, alpha=1.0, beta=-1.0)
            return
        if cpu_kernels.available() and x.flags.c_contiguous and y.flags.c_contiguous:
            cpu_kernels.chebyshev_step(H2, x, y)
        elif x.shape[0] == 1:
            np.subtract(H2 @ x[0], y[0], out=y[0])
        else:
            np.subtract((H2 @ x.T).T, y, out=y)

    def chebyshev_step_into(self, H2, x, y, out) -> None:
        """``out ← H2·x − y`` for row-stacked (R, D) arrays (out distinct from x and y).

        Lets the recursion write T_{n+1} straight into its block slot.  GPU (CSR): the fused kernel
        of :func:`gpukpm.engine.gpu_kernels.csr_step_into` reads y and writes out once (cuSPARSE
        would need y copied into out first); cuSPARSE when the kernel is off or failed its check.
        """
        from gpukpm.engine import cpu_kernels

        if isinstance(H2, CellStencil):
            self._stencil_kernels().stencil_step_into(H2, x, y, out)
        elif self.is_gpu:
            from gpukpm.engine import gpu_kernels

            if (H2.dtype == x.dtype and x.flags.c_contiguous and y.flags.c_contiguous and out.flags.c_contiguous
                    and gpu_kernels.csr_usable(self.device_id)):
                gpu_kernels.csr_step_into(H2, x, y, out)  # one pass: no copy of y into out
                return
            from cupyx import cusparse

            out[...] = y  # cuSPARSE updates its output in place (beta = −1)
            cusparse.spmm(H2, x.T, c=out.T, alpha=1.0, beta=-1.0)
        elif cpu_kernels.available() and x.flags.c_contiguous and y.flags.c_contiguous and out.flags.c_contiguous:
            cpu_kernels.chebyshev_step_into(H2, x, y, out)
        else:
            np.subtract((H2 @ x.T).T, y, out=out)

    def apply_rows(self, M, rows, out=None):
        """``M`` applied to every row of a C-contiguous (..., D) array; result in the same layout.

        ``out`` (optional, C-contiguous, shape ``rows.shape[:-1] + (M.shape[0],)``) receives it.

        GPU: cuSPARSE SpMM on the Fortran-ordered transposes, written straight into ``out``
        (``spmm(M, rowsᵀ, c=outᵀ)``: no temporary, no copy); CPU: the Numba row kernel when
        available, else SciPy's product.
        """
        shape = rows.shape[:-1] + (M.shape[0],)
        flat = rows.reshape(-1, rows.shape[-1])
        if out is None:
            out = self.xp.empty(shape, dtype=rows.dtype)
        from gpukpm.engine import cpu_kernels

        if isinstance(M, CellStencil):
            self._stencil_kernels().stencil_apply(M, flat, out.reshape(flat.shape[0], M.dim))
        elif (self.is_gpu and M.dtype == flat.dtype and flat.flags.c_contiguous and out.flags.c_contiguous):
            from cupyx import cusparse

            cusparse.spmm(M, flat.T, c=out.reshape(flat.shape[0], M.shape[0]).T, alpha=1.0, beta=0.0)
        elif (not self.is_gpu and cpu_kernels.available() and flat.flags.c_contiguous
                and M.dtype == flat.dtype and out.flags.c_contiguous):
            cpu_kernels.apply_rows(M, flat, out.reshape(flat.shape[0], M.shape[0]))
        else:
            out[...] = (M @ flat.T).T.reshape(shape)
        return out

    def uses_stencils(self) -> bool:
        """True when operators may be :class:`~gpukpm.models.stencil.CellStencil`: on the CPU when Numba is
        installed, on the GPU when the generated CUDA kernel passed its one-time self-check against
        cuSPARSE (:func:`gpukpm.engine.gpu_kernels.usable`; ``GPUKPM_GPU_STENCIL=0`` keeps CSR)."""
        if self.is_gpu:
            from gpukpm.engine import gpu_kernels

            return gpu_kernels.usable(self.device_id)
        from gpukpm.engine import cpu_kernels

        return cpu_kernels.available()

    def _stencil_kernels(self) -> ModuleType:
        """The module with this device's ``stencil_step_into`` and ``stencil_apply``."""
        if self.is_gpu:
            from gpukpm.engine import gpu_kernels

            return gpu_kernels
        from gpukpm.engine import cpu_kernels

        return cpu_kernels

    def empty_block(self, shape, dtype):
        """Uninitialised array for a block of Chebyshev vectors.

        On the CPU it is a fresh anonymous ``mmap`` with ordinary 4 KiB pages,
        not NumPy's allocation, which asks for transparent huge pages: on the
        VMs these benchmarks ran on, first touching huge-page-advised memory
        cost ≈ 2 s/GiB against ≈ 0.4 s/GiB (``benchmarks/README.md``), and the
        block is streamed sequentially, where huge pages buy nothing.
        """
        if self.is_gpu:
            return self.xp.empty(shape, dtype=dtype)
        import mmap

        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        if nbytes < 1 << 22:
            return np.empty(shape, dtype=dtype)
        buffer = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        return np.frombuffer(buffer, dtype=dtype).reshape(shape)

    def row_dots(self, P, Q, out=None):
        """``⟨P_r|Q_r⟩`` for every row r of (R, D) arrays with contiguous rows, complex128 (R,), into
        ``out`` when given (a (R,) complex128 array, e.g. a column of the moments table).

        Up to :data:`ROW_DOTS_LOOP_MAX` rows: one BLAS-1 ``dotc`` per row (cuBLAS on the GPU,
        writing its result on the device), so no (R, D) temporary is made —
        ``sum(conj(P) * Q, axis=1)`` makes two per call; more rows: that vectorised sum.
        """
        R = P.shape[0]
        if R > ROW_DOTS_LOOP_MAX:  # many rows: one vectorised reduction beats R BLAS-1 launches
            result = self.xp.sum(self.xp.conj(P) * Q, axis=1)
            if out is None:
                return result.astype(np.complex128, copy=False)
            out[...] = result
            return out
        if out is None:
            out = self.xp.empty(R, dtype=np.complex128)
        if self.is_gpu:
            from cupy import cublas

            for r in range(R):
                cublas.dotc(P[r], Q[r], out=out[r])
        else:
            for r in range(R):
                out[r] = np.vdot(P[r], Q[r])
        return out

    def real_gemm(self, P, Q):
        """``Re(conj(P) @ Q.T)`` for complex P (m, D), Q (n, D) with contiguous rows: half a ZGEMM's work.

        ``Re⟨p|q⟩ = Σ_j (Re p_j Re q_j + Im p_j Im q_j)`` is the real dot product
        of the interleaved float views, so one DGEMM with inner dimension 2D
        (4·m·n·D flops against ZGEMM's 8·m·n·D) gives it without copies.  Rows may be
        strided (a vector of a multi-vector block: row stride R·D); on the GPU the
        stride goes to cuBLAS as the leading dimension instead of a copy.
        """
        real = np.float32 if P.dtype == np.complex64 else np.float64
        Pf = P.view(real).reshape(P.shape[0], -1)
        Qf = Q.view(real).reshape(Q.shape[0], -1)
        if self.is_gpu and not (Pf.flags.c_contiguous and Qf.flags.c_contiguous):
            return self._rows_gemm(Pf, Qf, conjugate=False)
        return Pf @ Qf.T

    def conj_gemm(self, P, Q):
        """``conj(P) @ Q.T`` for P (m, D) and Q (n, D) with contiguous rows, without copies on the GPU.

        This is the block of inner products ``⟨P_i|Q_j⟩`` (BLAS-3: ZGEMM with
        op(A) = Aᴴ on the Fortran view, cuBLAS on the GPU; row-strided operands
        go to cuBLAS with their row stride as the leading dimension).
        """
        if self.is_gpu:
            if not (P.flags.c_contiguous and Q.flags.c_contiguous):
                return self._rows_gemm(P, Q, conjugate=True)
            from cupy import cublas

            return cublas.gemm("H", "N", P.T, Q.T)
        import scipy.linalg.blas as blas

        P, Q = np.ascontiguousarray(P), np.ascontiguousarray(Q)
        gemm = blas.get_blas_funcs("gemm", (P, Q))
        return gemm(1.0, P.T, Q.T, trans_a=2)

    def _rows_gemm(self, P, Q, conjugate: bool):
        """``op(P) @ Q.T`` (op: conj or identity) on the device for P (m, K), Q (n, K) whose rows are
        contiguous and evenly strided: one cuBLAS ``?gemm`` on the column-major views ``Pᵀ`` (K × m,
        leading dimension = P's row stride) and ``Qᵀ``, result (m, n) in Fortran order."""
        from cupy.cuda import cublas as lib
        from cupy.cuda import device

        m, K = P.shape
        n = Q.shape[0]
        itemsize = P.dtype.itemsize
        for name, a in (("P", P), ("Q", Q)):
            if a.strides[1] != itemsize or a.strides[0] % itemsize or a.strides[0] < K * itemsize:
                raise ValueError(f"_rows_gemm: {name} needs contiguous, evenly strided rows, strides {a.strides}")
        ldp, ldq = max(P.strides[0] // itemsize, K), max(Q.strides[0] // itemsize, K)
        if max(ldp, ldq) > _INT32_MAX:  # cuBLAS takes 32-bit leading dimensions: copy such rare operands
            P, Q = self.xp.ascontiguousarray(P), self.xp.ascontiguousarray(Q)
            ldp = ldq = K
        out = self.xp.empty((m, n), dtype=P.dtype, order="F")
        func = {"f": lib.sgemm, "d": lib.dgemm, "F": lib.cgemm, "D": lib.zgemm}[P.dtype.char]
        one, zero = np.ones((), dtype=P.dtype), np.zeros((), dtype=P.dtype)
        handle = device.get_cublas_handle()
        mode = lib.getPointerMode(handle)
        lib.setPointerMode(handle, lib.CUBLAS_POINTER_MODE_HOST)
        try:
            func(handle, lib.CUBLAS_OP_C if conjugate else lib.CUBLAS_OP_T, lib.CUBLAS_OP_N, m, n, K,
                 one.ctypes.data, P.data.ptr, ldp, Q.data.ptr, ldq, zero.ctypes.data, out.data.ptr, m)
        finally:
            lib.setPointerMode(handle, mode)
        return out

    def device_info(self) -> dict:
        """Description of the device for provenance records."""
        info = {"backend": self.name, "numpy": np.__version__, "scipy": scipy.__version__}
        if self.is_gpu:
            cp = self.xp
            props = cp.cuda.runtime.getDeviceProperties(self.device_id)
            info.update(
                cupy=cp.__version__,
                device_id=self.device_id,
                device_name=props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"]),
                total_memory=int(props["totalGlobalMem"]),
                cuda_runtime=int(cp.cuda.runtime.runtimeGetVersion()),
                compute_mode=int(props.get("computeMode", 0)),
            )
        else:
            info.update(device_name=cpu_name(), cpu_count=os.cpu_count())
        return info


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


@functools.lru_cache(maxsize=None)
def _make(name: str, device_id: int) -> Backend:
    if name == "cpu":
        return Backend("cpu", np, scipy.sparse)
    import cupy
    import cupyx.scipy.sparse

    cupy.cuda.Device(device_id).use()
    return Backend("gpu", cupy, cupyx.scipy.sparse, device_id)


def resolve_name(name: str | None = None) -> str:
    """``"auto"``, ``"cpu"`` or ``"gpu"`` from the argument or ``GPUKPM_BACKEND`` (default ``auto``)."""
    requested = name.strip().lower() if name else envflags.get("GPUKPM_BACKEND")
    if requested not in VALID_NAMES:
        raise ValueError(f"backend must be one of {VALID_NAMES}, got {requested!r} (argument or GPUKPM_BACKEND)")
    return requested


def get_backend(name: str | Backend | None = None, device_id: int | None = None) -> Backend:
    """Return the backend called ``name`` (``"cpu"``, ``"gpu"`` or ``"auto"``).

    ``None`` reads ``GPUKPM_BACKEND`` (default ``auto``).  A Backend passes
    through unchanged.  ``device_id`` picks the GPU (default: :func:`default_device`:
    ``GPUKPM_DEVICE``, else the launcher's node-local rank, else 0); only that device is touched.
    ``auto`` on a machine whose NVIDIA GPU cannot be used warns and runs on the CPU.
    """
    if isinstance(name, Backend):
        return name
    requested = resolve_name(name)
    if requested == "cpu":
        return _make("cpu", 0)
    usable, reason = gpu_status() if device_id is None else gpu_status(int(device_id))
    if requested == "gpu" and not usable:
        raise BackendUnavailable(f"backend 'gpu' was requested but {reason}")
    if not usable:
        _warn_cpu_fallback(reason)
        return _make("cpu", 0)
    return _make("gpu", default_device() if device_id is None else int(device_id))
