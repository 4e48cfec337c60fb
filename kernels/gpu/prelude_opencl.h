// OpenCL C prelude of the portable kernel bodies in kernels/gpu/*.cu (PoCL on the CPU in the tests).
// The same names as prelude_cuda.cuh; OpenCL C has exp/log/fmax on float, INFINITY and 64-bit long.
#define WB_OPENCL 1
#define KERNEL __kernel
#define DEVICE inline
#define GLOBAL __global
#define RESTRICT restrict
#define SHARED(type, name, count) __local type name[count]
#define LOCAL __local
#define DYN_SHARED_ARG(type, name) , __local type* name
#define DYN_SHARED_DECL(type, name)
#define BARRIER() barrier(CLK_LOCAL_MEM_FENCE)
#define LOCAL_ID_X ((int)get_local_id(0))
#define GROUP_ID_X ((int)get_group_id(0))
#define GROUP_ID_Y ((int)get_group_id(1))
#define GROUP_ID_Z ((int)get_group_id(2))
#define EXP(x) exp(x)
#define LOG(x) log(x)
#define LOG1P(x) log1p(x)
#define POW(x, y) pow((x), (y))
#define SINH(x) sinh(x)
#define SQRT(x) sqrt(x)
#define FMAX(a, b) fmax((a), (b))
#define FMIN(a, b) fmin((a), (b))
#define FABS(x) fabs(x)
#define NEG_INF (-INFINITY)
#define UNROLL
#define UNROLL_PART
typedef long wb_long;
