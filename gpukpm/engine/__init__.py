"""Engine: backends (NumPy/SciPy or CuPy), CPU/GPU kernels, spectral bounds, the Chebyshev
recursion, real-space and k-space moment engines, and the :class:`~gpukpm.engine.moments.Moments`
hand-off type."""
