// CUDA prelude of the portable kernel bodies in kernels/gpu/*.cu (served by cupy.RawModule and nvcc).
// Each body uses only these names for what differs between CUDA and OpenCL C; warp-level operations only
// through mma.cuh, which emulates them on OpenCL (WB_CUDA / WB_OPENCL say which API a source is for).
#pragma once
#define WB_CUDA 1
#define KERNEL extern "C" __global__
#define DEVICE __device__ inline
#define GLOBAL
#define RESTRICT __restrict__
#define SHARED(type, name, count) __shared__ type name[count]
// local memory sized at launch: the last kernel parameter in OpenCL, `extern __shared__` in CUDA
#define LOCAL
#define DYN_SHARED_ARG(type, name)
#define DYN_SHARED_DECL(type, name) extern __shared__ type name[]
#define BARRIER() __syncthreads()
#define LOCAL_ID_X ((int)threadIdx.x)
#define GROUP_ID_X ((int)blockIdx.x)
#define GROUP_ID_Y ((int)blockIdx.y)
#define GROUP_ID_Z ((int)blockIdx.z)
#define EXP(x) expf(x)
#define LOG(x) logf(x)
#define LOG1P(x) log1pf(x)
#define POW(x, y) powf((x), (y))
#define SINH(x) sinhf(x)
#define SQRT(x) sqrtf(x)
#define FMAX(a, b) fmaxf((a), (b))
#define FMIN(a, b) fminf((a), (b))
#define FABS(x) fabsf(x)
#define NEG_INF (-__int_as_float(0x7f800000))
#define UNROLL _Pragma("unroll")
#define UNROLL_PART _Pragma("unroll 4")
typedef long long wb_long;
