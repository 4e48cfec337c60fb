// Warp-level matrix products of the tensor-core bodies, one meaning on both APIs. The including body
// defines DK (k-steps of 8 in Q Kᵀ), BK (keys per tile, a multiple of 8) and DN (value tiles of 8 columns).
// Fragments are those of PTX mma.m16n8k8 with TF32 inputs (lane = 4g + t): A 16 × 8 row-major,
// a = {A[g][t], A[g+8][t], A[g][t+4], A[g+8][t+4]}; B 8 × 8, b = {B[t][g], B[t+4][g]}; accumulators
// d = {D[g][2t], D[g][2t+1], D[g+8][2t], D[g+8][2t+1]}. Products are 3×TF32 (Ootomo & Yokota; CUTLASS's
// fast float32 mode): x = big + small, both TF32, and d += a_small·b_big + a_big·b_small + a_big·b_big.
//   wb_split(x, &big, &small)           the split (cvt.rna.tf32.f32: to nearest, ties away)
//   wb_mma_qk(d, ah, al, bh, bl, kk, n) d += A·B for k-step kk and key tile n of S = Q Kᵀ; wb_mma_qk_end(s)
//   wb_mma_pv(d, ah, al, bh, bl, n, dn) d += A·B for key tile n and value tile dn of O = P V; wb_mma_pv_end(o)
//   wb_quad_max/sum(x)                  the maximum / sum of x over the 4 lanes of a row's quad
// CUDA: mma.sync at once (the *_end calls do nothing) and warp shuffles. OpenCL (the tests, on PoCL):
// each lane scatters its fragments, by the layout above, into its warp's scratch (WB_SCRATCH floats of
// local memory: the A and B operands of the whole product, big and small), and *_end computes every
// lane's accumulators from them between two barriers — so what is tested on the CPU is that the body's
// fragment indexing and the layout agree. Every work item calls the *_end and quad functions the same
// number of times (barriers). Loops around the quad functions are unrolled (WARP_UNROLL): PoCL
// miscompiles a loop that crosses barriers while indexing a private array by its counter.
#define WARP_UNROLL _Pragma("unroll")

#if WB_CUDA
DEVICE float wb_tf32(const float x)
{
    unsigned int u;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(u) : "f"(x));
    return __uint_as_float(u);
}

DEVICE void wb_mma(float* d, const float* a, const float* b)
{
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                 "{%8, %9}, {%0, %1, %2, %3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(__float_as_uint(a[0])), "r"(__float_as_uint(a[1])), "r"(__float_as_uint(a[2])),
                   "r"(__float_as_uint(a[3])), "r"(__float_as_uint(b[0])), "r"(__float_as_uint(b[1])));
}

DEVICE void wb_mma3(float* d, const float* ah, const float* al, const float* bh, const float* bl)
{
    wb_mma(d, al, bh);
    wb_mma(d, ah, bl);
    wb_mma(d, ah, bh);
}

DEVICE void wb_mma_qk(float* d, const float* ah, const float* al, const float* bh, const float* bl, const int kk,
                      const int n, LOCAL float* scr, const int lane)
{
    wb_mma3(d, ah, al, bh, bl);
}

DEVICE void wb_mma_pv(float* d, const float* ah, const float* al, const float* bh, const float* bl, const int n,
                      const int dn, LOCAL float* scr, const int lane)
{
    wb_mma3(d, ah, al, bh, bl);
}

DEVICE void wb_mma_qk_end(float* s, LOCAL float* scr, const int lane) {}
DEVICE void wb_mma_pv_end(float* o, LOCAL float* scr, const int lane) {}

DEVICE float wb_quad_max(float x, LOCAL float* scr, const int lane)
{
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
    return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}

DEVICE float wb_quad_sum(float x, LOCAL float* scr, const int lane)
{
    x += __shfl_xor_sync(0xffffffffu, x, 1);
    return x + __shfl_xor_sync(0xffffffffu, x, 2);
}
#else
DEVICE float wb_tf32(const float x)
{
    uint u = as_uint(x);
    if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;  // half an ulp, then truncate
    return as_float(u);
}

// the scratch of one warp: A big, A small (16 × K), B big, B small (K × N) of the product being formed
#define WB_QK_K (DK * 8)
#define WB_QK_N BK
#define WB_PV_K BK
#define WB_PV_N (DN * 8)

DEVICE void wb_scatter(const float* ah, const float* al, const float* bh, const float* bl, const int kc,
                       const int nc, const int K, const int N, LOCAL float* scr, const int lane)
{
    const int g = lane >> 2, t = lane & 3;
    LOCAL float* Ah = scr;
    LOCAL float* Al = scr + 16 * K;
    LOCAL float* Bh = scr + 32 * K;
    LOCAL float* Bl = scr + 32 * K + K * N;
    const int a_at[4] = {g * K + kc + t, (g + 8) * K + kc + t, g * K + kc + t + 4, (g + 8) * K + kc + t + 4};
    for (int x = 0; x < 4; ++x) {
        Ah[a_at[x]] = ah[x];
        Al[a_at[x]] = al[x];
    }
    Bh[(kc + t) * N + nc + g] = bh[0];
    Bh[(kc + t + 4) * N + nc + g] = bh[1];
    Bl[(kc + t) * N + nc + g] = bl[0];
    Bl[(kc + t + 4) * N + nc + g] = bl[1];
}

DEVICE void wb_product(float* d, const int K, const int N, LOCAL float* scr, const int lane)
{
    const int g = lane >> 2, t = lane & 3;
    LOCAL float* Ah = scr;
    LOCAL float* Al = scr + 16 * K;
    LOCAL float* Bh = scr + 32 * K;
    LOCAL float* Bl = scr + 32 * K + K * N;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int n = 0; n < N / 8; ++n) {
        for (int x = 0; x < 4; ++x) {
            const int r = g + (x >> 1) * 8, c = n * 8 + 2 * t + (x & 1);
            float acc = 0.0f;
            for (int k = 0; k < K; ++k)
                acc += Al[r * K + k] * Bh[k * N + c] + Ah[r * K + k] * Bl[k * N + c] + Ah[r * K + k] * Bh[k * N + c];
            d[n * 4 + x] += acc;
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
}

DEVICE void wb_mma_qk(float* d, const float* ah, const float* al, const float* bh, const float* bl, const int kk,
                      const int n, LOCAL float* scr, const int lane)
{
    wb_scatter(ah, al, bh, bl, kk * 8, n * 8, WB_QK_K, WB_QK_N, scr, lane);
}

DEVICE void wb_mma_pv(float* d, const float* ah, const float* al, const float* bh, const float* bl, const int n,
                      const int dn, LOCAL float* scr, const int lane)
{
    wb_scatter(ah, al, bh, bl, n * 8, dn * 8, WB_PV_K, WB_PV_N, scr, lane);
}

DEVICE void wb_mma_qk_end(float* s, LOCAL float* scr, const int lane) { wb_product(s, WB_QK_K, WB_QK_N, scr, lane); }
DEVICE void wb_mma_pv_end(float* o, LOCAL float* scr, const int lane) { wb_product(o, WB_PV_K, WB_PV_N, scr, lane); }

DEVICE float wb_quad_max(const float x, LOCAL float* scr, const int lane)
{
    LOCAL float* q = scr + WB_SCRATCH - 32;
    q[lane] = x;
    barrier(CLK_LOCAL_MEM_FENCE);
    const int b0 = lane & ~3;
    const float r = fmax(fmax(q[b0], q[b0 + 1]), fmax(q[b0 + 2], q[b0 + 3]));
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

DEVICE float wb_quad_sum(const float x, LOCAL float* scr, const int lane)
{
    LOCAL float* q = scr + WB_SCRATCH - 32;
    q[lane] = x;
    barrier(CLK_LOCAL_MEM_FENCE);
    const int b0 = lane & ~3;
    const float r = (q[b0] + q[b0 + 1]) + (q[b0 + 2] + q[b0 + 3]);
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}
#endif

DEVICE void wb_split(const float x, float* big, float* small)
{
    *big = wb_tf32(x);
    *small = wb_tf32(x - *big);
}
