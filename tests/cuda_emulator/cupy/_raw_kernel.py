"""Emulated ``cupy.RawKernel``: the CUDA C source compiled for the host, the grid run as loops.

The source is compiled unchanged by the host C++ compiler after a prelude that defines
``__global__``, ``__device__``, ``__align__`` and the thread-index variables, plus a launcher
that runs every (block, thread) of the grid in turn.  Arguments are checked against the
kernel's parameter list: pointers take device arrays, scalars take NumPy scalars of exactly
the parameter's size (CuPy passes a Python ``int`` as 8 bytes and a ``float`` as a double,
which silently shifts the later arguments of a kernel that expects ``int`` or ``float``).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile

import numpy as _np

from . import ndarray

_PRELUDE = """\
/* emulated cupy.RawKernel: CUDA source built for the host */
#define __global__
#define __device__ inline
#define __forceinline__
#define __align__(n) alignas(n)
struct emulated_dim3 { unsigned x, y, z; };
static emulated_dim3 threadIdx, blockIdx, blockDim, gridDim;
"""

_LAUNCHER = """
extern "C" void emulated_launch(unsigned emulated_gx, unsigned emulated_gy, unsigned emulated_gz,
                                unsigned emulated_bx, unsigned emulated_by, unsigned emulated_bz{parameters})
{{
    gridDim = {{emulated_gx, emulated_gy, emulated_gz}};
    blockDim = {{emulated_bx, emulated_by, emulated_bz}};
    const unsigned long long emulated_blocks = 1ull * emulated_gx * emulated_gy * emulated_gz;
    const unsigned long long emulated_threads = 1ull * emulated_bx * emulated_by * emulated_bz;
    for (unsigned long long emulated_b = 0; emulated_b < emulated_blocks; ++emulated_b) {{
        blockIdx.x = emulated_b % emulated_gx;
        blockIdx.y = emulated_b / emulated_gx % emulated_gy;
        blockIdx.z = emulated_b / emulated_gx / emulated_gy;
        for (unsigned long long emulated_t = 0; emulated_t < emulated_threads; ++emulated_t) {{
            threadIdx.x = emulated_t % emulated_bx;
            threadIdx.y = emulated_t / emulated_bx % emulated_by;
            threadIdx.z = emulated_t / emulated_bx / emulated_by;
            {name}({arguments});
        }}
    }}
}}
"""

_SCALARS = {"int": ctypes.c_int32, "unsigned": ctypes.c_uint32, "unsigned int": ctypes.c_uint32,
            "long long": ctypes.c_int64, "long long int": ctypes.c_int64, "unsigned long long": ctypes.c_uint64,
            "size_t": ctypes.c_uint64, "float": ctypes.c_float, "double": ctypes.c_double, "bool": ctypes.c_bool}

_DIRECTORY = tempfile.mkdtemp(prefix="cupy-emulator-")
_LIBRARIES: dict[str, ctypes.CDLL] = {}


def _parameters(code: str, name: str) -> list[str]:
    match = re.search(r'extern\s+"C"\s+__global__\s+void\s+' + re.escape(name) + r"\s*\(([^)]*)\)", code)
    if match is None:
        raise ValueError(f"emulated RawKernel: no extern \"C\" __global__ void {name}(...) in the source")
    return [p.strip() for p in match.group(1).split(",") if p.strip()]


def _split(parameter: str) -> tuple[str, str]:
    """(C type without qualifiers, name) of one parameter."""
    match = re.match(r"(.*?)([A-Za-z_]\w*)$", parameter)
    ctype = re.sub(r"\b(const|volatile|__restrict__)\b", " ", match.group(1))
    return " ".join(ctype.split()), match.group(2)


def _compile(code: str, name: str, parameters: list[str]) -> ctypes.CDLL:
    compiler = shutil.which("c++") or shutil.which("g++")
    if compiler is None:
        raise RuntimeError("emulated RawKernel needs a host C++ compiler (c++ or g++)")
    launcher = _LAUNCHER.format(parameters="".join(", " + p for p in parameters), name=name,
                                arguments=", ".join(_split(p)[1] for p in parameters))
    source = _PRELUDE + code + launcher
    key = hashlib.sha1(source.encode()).hexdigest()[:16]
    if key not in _LIBRARIES:
        path = os.path.join(_DIRECTORY, f"kernel_{key}.cpp")
        with open(path, "w") as fh:
            fh.write(source)
        library = path[:-4] + ".so"
        result = subprocess.run([compiler, "-O2", "-std=c++14", "-shared", "-fPIC", path, "-o", library],
                                capture_output=True, text=True)
        if result.returncode:
            raise RuntimeError(f"emulated RawKernel: compilation of {name} failed:\n{result.stderr}")
        _LIBRARIES[key] = ctypes.CDLL(library)
    return _LIBRARIES[key]


class RawKernel:
    """``RawKernel(code, name)(grid, block, args)`` as in CuPy."""

    def __init__(self, code: str, name: str, options=(), backend="nvrtc", translate_cucomplex=False,
                 enable_cooperative_groups=False, jitify=False):
        if not isinstance(options, tuple):
            raise TypeError(f"options must be a tuple, got {type(options).__name__}")
        self.code, self.name = code, name
        self._parameters = _parameters(code, name)
        self._library = None

    @property
    def kernel(self):
        if self._library is None:
            self._library = _compile(self.code, self.name, self._parameters)
        return self._library.emulated_launch

    def __call__(self, grid, block, args, shared_mem=0, stream=None):
        for name, value in (("grid", grid), ("block", block), ("args", args)):
            if not isinstance(value, tuple):
                raise TypeError(f"Argument '{name}' has incorrect type (expected tuple, got {type(value).__name__})")
        grid = tuple(max(1, int(g)) for g in grid) + (1,) * (3 - len(grid))  # CuPy launches ≥ 1 block
        block = tuple(block) + (1,) * (3 - len(block))
        if not (grid[0] < 2**31 and grid[1] <= 65535 and grid[2] <= 65535):
            raise ValueError(f"CUDA_ERROR_INVALID_VALUE: grid {grid} out of range")
        if not (1 <= block[0] <= 1024 and 1 <= block[1] <= 1024 and 1 <= block[2] <= 64
                and block[0] * block[1] * block[2] <= 1024):
            raise ValueError(f"CUDA_ERROR_INVALID_VALUE: block {block} out of range (x, y ≤ 1024, z ≤ 64, "
                             "at most 1024 threads)")
        if len(args) != len(self._parameters):
            raise TypeError(f"{self.name} takes {len(self._parameters)} arguments, got {len(args)}")
        self.kernel(*(ctypes.c_uint(int(g)) for g in grid + block),
                    *(self._argument(k, p, a) for k, (p, a) in enumerate(zip(self._parameters, args))))

    def _argument(self, k: int, parameter: str, value):
        ctype, name = _split(parameter)
        where = f"{self.name} argument {k} ({parameter})"
        if ctype.endswith("*"):
            if not isinstance(value, ndarray):
                raise TypeError(f"{where}: needs a device array, got {type(value)}")
            return ctypes.c_void_p(value._a.ctypes.data)
        if ctype not in _SCALARS:
            raise NotImplementedError(f"{where}: scalar type {ctype!r} is not emulated")
        expected = _SCALARS[ctype]
        if isinstance(value, bool) or not isinstance(value, _np.generic):
            raise TypeError(f"{where}: pass a NumPy scalar of {ctypes.sizeof(expected)} bytes; CuPy passes "
                            f"{type(value).__name__} {value!r} as 8 bytes")
        if value.dtype.itemsize != ctypes.sizeof(expected) or (value.dtype.kind == "f") != (ctype in ("float",
                                                                                                    "double")):
            raise TypeError(f"{where}: got {value.dtype}, the kernel expects {ctype}")
        return expected(value.item())
