"""GPU kernels: portable kernel bodies (``*.cu``) with one prelude per API.

The same body compiles as CUDA (``prelude_cuda.cuh``: :class:`cupy.RawModule` on a GPU, ``nvcc``
for sm_80/sm_90 in CI) and as OpenCL C (``prelude_opencl.h``: PoCL on the CPU, the test-only
backend that executes the kernels' tiles, barriers and online softmax without a GPU).
:mod:`kernels.gpu.sources` assembles a source (expanding the shared ``*.cuh`` files: the flash
scores, ``mma.cuh``'s warp products, real on CUDA and emulated on OpenCL), :mod:`kernels.gpu.flash`
launches the flash bodies on CuPy arrays or, for the tests, through OpenCL; :mod:`~kernels.gpu.hyperbolic`,
:mod:`~kernels.gpu.lorentz`, :mod:`~kernels.gpu.linear`, :mod:`~kernels.gpu.diffusion` and
:mod:`~kernels.gpu.knn` serve the mechanisms; :mod:`~kernels.gpu.host` runs what has no GPU form on the
host, CuPy in and out. Nothing here imports CuPy or PyOpenCL until a kernel runs.
"""
