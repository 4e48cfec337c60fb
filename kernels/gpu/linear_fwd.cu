// Linear attention from feature maps, float32: out_i = φ(q_i)·S / φ(q_i)·z with S = Σ_j φ(k_j) v_jᵀ,
// z = Σ_j φ(k_j) over the allowed keys (all of them, or j ≤ i in the causal prefix form; a key-padding
// mask zeroes φ(k_j) before the call). A zero denominator gives 0. Portable body (kernels/gpu/prelude_*.h).
// FEATURES = m (feature count), VALUE_DIM = dv; one block per (batch, tile of COL_TILE value columns),
// one thread per feature r: thread r keeps row r of S for the block's columns and z_r in registers.
//   linear_stats:  S and z over every key (the key statistics), written out;
//   linear_apply:  out from φ(q) and the statistics;
//   linear_causal: the prefix form in one pass over the positions: at step i thread r adds
//                  φ(k_i)_r v_i to its row, then the block reduces φ(q_i)_r S_r[c] and φ(q_i)_r z_r over r
//                  in local memory (a tree of FEATURES/2 … 1 partial sums).
#ifndef FEATURES
#define FEATURES 64
#endif
#ifndef VALUE_DIM
#define VALUE_DIM 64
#endif
#ifndef COL_TILE
#define COL_TILE 16
#endif
// FEATURES is rounded up to a power of two for the reduction (threads beyond m hold zeros)
#ifndef THREADS
#define THREADS 64
#endif

KERNEL void linear_stats(const GLOBAL float* RESTRICT kf, const GLOBAL float* RESTRICT v, const int lk,
                         GLOBAL float* RESTRICT s_out, GLOBAL float* RESTRICT z_out)
{
    const int r = LOCAL_ID_X, b = GROUP_ID_Y, c0 = GROUP_ID_X * COL_TILE;
    float acc[COL_TILE];
    UNROLL
    for (int c = 0; c < COL_TILE; ++c) acc[c] = 0.0f;
    float z = 0.0f;
    if (r < FEATURES) {
        for (int j = 0; j < lk; ++j) {
            const float f = kf[((wb_long)b * lk + j) * FEATURES + r];
            z += f;
            const GLOBAL float* vj = v + ((wb_long)b * lk + j) * VALUE_DIM;
            UNROLL
            for (int c = 0; c < COL_TILE; ++c) acc[c] += (c0 + c < VALUE_DIM) ? f * vj[c0 + c] : 0.0f;
        }
        UNROLL
        for (int c = 0; c < COL_TILE; ++c)
            if (c0 + c < VALUE_DIM) s_out[((wb_long)b * FEATURES + r) * VALUE_DIM + c0 + c] = acc[c];
        if (c0 == 0) z_out[(wb_long)b * FEATURES + r] = z;
    }
}

KERNEL void linear_apply(const GLOBAL float* RESTRICT qf, const GLOBAL float* RESTRICT s, const GLOBAL float* RESTRICT z,
                         const int lq, GLOBAL float* RESTRICT out)
{
    // one thread per (query, value column): out_ic = Σ_r φ(q_i)_r S_rc / Σ_r φ(q_i)_r z_r
    const wb_long i = (wb_long)GROUP_ID_X * THREADS + LOCAL_ID_X;
    const int b = GROUP_ID_Y;
    if (i >= (wb_long)lq * VALUE_DIM) return;
    const int row = (int)(i / VALUE_DIM), c = (int)(i - (wb_long)row * VALUE_DIM);
    const GLOBAL float* q = qf + ((wb_long)b * lq + row) * FEATURES;
    float num = 0.0f, den = 0.0f;
    for (int r = 0; r < FEATURES; ++r) {
        num += q[r] * s[((wb_long)b * FEATURES + r) * VALUE_DIM + c];
        den += q[r] * z[(wb_long)b * FEATURES + r];
    }
    out[((wb_long)b * lq + row) * VALUE_DIM + c] = den > 0.0f ? num / den : 0.0f;
}

KERNEL void linear_causal(const GLOBAL float* RESTRICT qf, const GLOBAL float* RESTRICT kf,
                          const GLOBAL float* RESTRICT v, const int l, GLOBAL float* RESTRICT out)
{
    SHARED(float, part, THREADS * (COL_TILE + 1));
    const int r = LOCAL_ID_X, b = GROUP_ID_Y, c0 = GROUP_ID_X * COL_TILE;
    float acc[COL_TILE];
    UNROLL
    for (int c = 0; c < COL_TILE; ++c) acc[c] = 0.0f;
    float z = 0.0f;
    for (int i = 0; i < l; ++i) {
        const wb_long row = (wb_long)b * l + i;
        const float fk = r < FEATURES ? kf[row * FEATURES + r] : 0.0f;
        const float fq = r < FEATURES ? qf[row * FEATURES + r] : 0.0f;
        z += fk;
        UNROLL
        for (int c = 0; c < COL_TILE; ++c) {
            acc[c] += (c0 + c < VALUE_DIM) ? fk * v[row * VALUE_DIM + c0 + c] : 0.0f;
            part[r * (COL_TILE + 1) + c] = fq * acc[c];
        }
        part[r * (COL_TILE + 1) + COL_TILE] = fq * z;
        BARRIER();
        for (int width = THREADS / 2; width > 0; width /= 2) {
            if (r < width) {
                UNROLL
                for (int c = 0; c <= COL_TILE; ++c) part[r * (COL_TILE + 1) + c] += part[(r + width) * (COL_TILE + 1) + c];
            }
            BARRIER();
        }
        if (r < COL_TILE && c0 + r < VALUE_DIM) {
            const float den = part[COL_TILE];
            out[row * VALUE_DIM + c0 + r] = den > 0.0f ? part[r] / den : 0.0f;
        }
        BARRIER();  // part is reused at the next position
    }
}
