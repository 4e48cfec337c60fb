// Softmax attention by tiles, float32: out = Σ_j softmax_j(s_ij) v_j over allowed keys, lse = log Σ_j exp(s_ij).
// The score s (compile-time SCORE: dot product, Poincaré ball, sliced Wasserstein, Lorentz distance,
// Busemann) is that of scores.cuh, with its per-row terms qden, kden and its parameter curv.
// Portable body (kernels/gpu/prelude_*.h). One block per (query tile of BLOCK_Q rows, batch); one
// thread per query row. The block's queries (scaled) sit in local memory, padded by one float per
// row so that threads reading their own rows hit different banks; key and value tiles of BLOCK_K
// rows are loaded cooperatively; each thread keeps its scores for a tile and its output row in
// registers (HEAD_DIM, VALUE_DIM and BLOCK_K are compile-time constants, so the loops unroll) and
// merges tiles with the online softmax (running maximum m, running sum l). Allowed (i, j): j < lk,
// the mask (uint8, strides mask_sb, mask_sq, 1: broadcast with stride 0) and, if causal,
// j <= i + causal_offset. A row with no allowed key gives out = 0 and lse = -inf.
#ifndef HEAD_DIM
#define HEAD_DIM 64
#endif
#ifndef VALUE_DIM
#define VALUE_DIM HEAD_DIM
#endif
#ifndef BLOCK_Q
#define BLOCK_Q 32
#endif
#ifndef BLOCK_K
#define BLOCK_K 16
#endif
#define Q_STRIDE (HEAD_DIM + 1)
#include "scores.cuh"

KERNEL void flash_fwd(FLASH_PARAMS)
{
    SHARED(float, qs, BLOCK_Q * Q_STRIDE);
    SHARED(float, ks, BLOCK_K * HEAD_DIM);
    SHARED(float, vs, BLOCK_K * VALUE_DIM);
    const int t = LOCAL_ID_X;
    const int b = GROUP_ID_Y;
    const int i0 = GROUP_ID_X * BLOCK_Q;
    const int i = i0 + t;
    const GLOBAL float* qb = q + (wb_long)b * lq * HEAD_DIM;
    const GLOBAL float* kb = k + (wb_long)b * lk * HEAD_DIM;
    const GLOBAL float* vb = v + (wb_long)b * lk * VALUE_DIM;

    for (int e = t; e < BLOCK_Q * HEAD_DIM; e += BLOCK_Q) {
        const int r = e / HEAD_DIM, c = e - r * HEAD_DIM;
#if SCORE == 0
        qs[r * Q_STRIDE + c] = (i0 + r < lq) ? qb[(wb_long)(i0 + r) * HEAD_DIM + c] * scale : 0.0f;
#else
        qs[r * Q_STRIDE + c] = (i0 + r < lq) ? qb[(wb_long)(i0 + r) * HEAD_DIM + c] : 0.0f;
#endif
    }
    float acc[VALUE_DIM];
    UNROLL
    for (int c = 0; c < VALUE_DIM; ++c) acc[c] = 0.0f;
    float m = NEG_INF, l = 0.0f;
    // keys past the causal limit of the block's last row are never read
    const int kend = key_end(lk, causal, i0, BLOCK_Q, causal_offset);
    for (int j0 = 0; j0 < kend; j0 += BLOCK_K) {
        BARRIER();  // the previous tile is no longer read
        for (int e = t; e < BLOCK_K * HEAD_DIM; e += BLOCK_Q) {
            const int r = e / HEAD_DIM, c = e - r * HEAD_DIM;
            ks[e] = (j0 + r < lk) ? kb[(wb_long)(j0 + r) * HEAD_DIM + c] : 0.0f;
        }
        for (int e = t; e < BLOCK_K * VALUE_DIM; e += BLOCK_Q) {
            const int r = e / VALUE_DIM, c = e - r * VALUE_DIM;
            vs[e] = (j0 + r < lk) ? vb[(wb_long)(j0 + r) * VALUE_DIM + c] : 0.0f;
        }
        BARRIER();  // the tile is loaded (and qs, on the first pass)
        if (i >= lq) continue;  // padding rows load tiles but compute nothing
        float s[BLOCK_K];
        UNROLL
        for (int jj = 0; jj < BLOCK_K; ++jj) s[jj] = 0.0f;
        // dimension-outer: each query value is used at once by the tile's keys, so the compiler
        // keeps BLOCK_K partial scores live rather than the whole query row
        UNROLL_PART
        for (int c = 0; c < HEAD_DIM; ++c) {
            const float qc = qs[t * Q_STRIDE + c];
            UNROLL
            for (int jj = 0; jj < BLOCK_K; ++jj) s[jj] += score_term(qc, ks[jj * HEAD_DIM + c], curv);
        }
        UNROLL
        for (int jj = 0; jj < BLOCK_K; ++jj) {
            const int j = j0 + jj < lk ? j0 + jj : lk - 1;  // keys past the end: masked below
            s[jj] = score_finish(s[jj], qden, kden, (wb_long)b * lq + i, (wb_long)b * lk + j, scale, curv);
        }
        float tile_max = NEG_INF;
        UNROLL
        for (int jj = 0; jj < BLOCK_K; ++jj) {
            const int j = j0 + jj;
            const int ok = KEY_ALLOWED(b, i, j);
            s[jj] = ok ? s[jj] : NEG_INF;
            tile_max = FMAX(tile_max, s[jj]);
        }
        const float m_new = FMAX(m, tile_max);
        if (m_new == NEG_INF) continue;  // nothing allowed so far
        const float alpha = (m == NEG_INF) ? 0.0f : EXP(m - m_new);
        l *= alpha;
        UNROLL
        for (int c = 0; c < VALUE_DIM; ++c) acc[c] *= alpha;
        UNROLL
        for (int jj = 0; jj < BLOCK_K; ++jj) {
            const float p = (s[jj] == NEG_INF) ? 0.0f : EXP(s[jj] - m_new);
            l += p;
            UNROLL
            for (int c = 0; c < VALUE_DIM; ++c) acc[c] += p * vs[jj * VALUE_DIM + c];
        }
        m = m_new;
    }
    if (i < lq) {
        GLOBAL float* o = out + ((wb_long)b * lq + i) * VALUE_DIM;
        const float inv = l > 0.0f ? 1.0f / l : 0.0f;
        UNROLL
        for (int c = 0; c < VALUE_DIM; ++c) o[c] = acc[c] * inv;
        lse[(wb_long)b * lq + i] = l > 0.0f ? m + LOG(l) : NEG_INF;
    }
}
