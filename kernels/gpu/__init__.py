"""GPU kernels: portable kernel bodies (``*.cu``) with one prelude per API.

The same body compiles as CUDA (``prelude_cuda.cuh``: :class:`cupy.RawModule` on a GPU, ``nvcc``
for sm_80/sm_90 in CI) and as OpenCL C (``prelude_opencl.h``: PoCL on the CPU, the test-only
backend that executes the kernels' tiles, barriers and online softmax without a GPU).
:mod:`kernels.gpu.sources` assembles a source, :mod:`kernels.gpu.flash` launches the flash
kernel on CuPy arrays or, for the tests, through OpenCL. Nothing here imports CuPy or PyOpenCL
until a kernel runs.
"""
