// Softmax attention by register tiles, float32: the function of flash_fwd.cu (same arguments, the same
// compile-time scores of scores.cuh, masks, causal offsets, LSE, rows with no allowed key → out 0, lse −inf), laid
// out for throughput. A block of TY × TX threads owns BQ = TY·TM query rows; for each tile of BK = TX·TN
// keys, thread (ty, tx) computes the TM × TN scores of rows ty·TM + a and keys tx·TN + n (an outer
// product per head dimension, like a GEMM micro-kernel: TM + TN local-memory reads for TM·TN
// multiply-adds), then its TM output rows over TV = ⌈VC / TX⌉ value columns from the tile's
// probabilities P. The online softmax's row maximum and sum are reduced across the TX threads of a
// row through local memory (no warp intrinsics: the body stays portable).
// Wide heads (sentence and image embeddings, 384–1,024 dimensions): the scores are sums over the head
// dimensions (score_term), so the body reads them in NCH chunks of DC dimensions (the block's queries are
// then re-read per key tile, like a GEMM's A panel); the values in chunks of VC columns, one per block
// along the grid's z (each such block recomputes the scores: the price of accumulators that stay in
// registers). DC = HEAD_DIM and VC = VALUE_DIM (one chunk each) is the narrow-head kernel. Local memory,
// sized at launch (kernels/gpu/flash.py computes the layout and passes its strides and offsets):
//   qT[c][r] (QS)  the block's queries (one chunk of dimensions), transposed (scaled by `scale` for the dot score)
//   kT[c][j] (KS)  the key tile (the same chunk), transposed (4-key groups swizzled, KT_AT)
//   vs[j][c] (VS)  the value tile, the block's columns (columns past VC or VALUE_DIM zero)
//   ps[r][j] (PS)  the tile's probabilities;    red[r][x] (RS) per-thread partial maxima and sums
//   ms, ls, as     per row: running maximum, running sum, this tile's rescaling factor.
// Rows are padded by 4 floats so that 16-byte reads stay aligned.
#define THREADS (TX * TY)
#define BQ (TY * TM)
#define BK (TX * TN)
#ifndef DC
#define DC HEAD_DIM
#endif
#ifndef VC
#define VC VALUE_DIM
#endif
#define NCH ((HEAD_DIM + DC - 1) / DC)
#define D8 ((DC + 7) / 8)
// kT's element (c, j): groups of 4 keys XOR-swizzled by the dimension (SWZ + 1 groups: ≤ 8, ≤ BK/4),
// so that a group stays one aligned 16-byte read and transposed stores spread over the banks
#define KT_AT(c, j) ((c) * KS + ((((j) >> 2) ^ ((c) & SWZ)) << 2) + ((j) & 3))
#include "scores.cuh"

// qT ← the block's queries i0 … i0 + BQ − 1, dimensions ch·DC … ch·DC + DC − 1 (0 past the ends: a zero
// dimension adds nothing to any score's sum)
DEVICE void load_q(LOCAL float* qT, const GLOBAL float* RESTRICT qb, const int ch, const int i0, const int lq,
                   const float scale)
{
    for (int e = LOCAL_ID_X; e < BQ * DC; e += THREADS) {
        const int r = e / DC, c = e - r * DC, g = ch * DC + c;
        const float x = (i0 + r < lq && g < HEAD_DIM) ? qb[(wb_long)(i0 + r) * HEAD_DIM + g] : 0.0f;
#if SCORE == 0
        qT[c * QS + r] = x * scale;
#else
        qT[c * QS + r] = x;
#endif
    }
}

// kT ← keys j0 … j0 + BK − 1, dimensions ch·DC …: a warp stores 4 keys × 8 dimensions (with the swizzle,
// 32 different banks; a plain transposed store would put 8 threads on one bank) and reads 4 runs of 32
// bytes from global memory
DEVICE void load_k(LOCAL float* kT, const GLOBAL float* RESTRICT kb, const int ch, const int j0, const int lk)
{
    for (int e = LOCAL_ID_X; e < BK * D8 * 8; e += THREADS) {
        const int jl = e & 3, cc = (e >> 2) & 7, rest = e >> 5;
        const int c = (rest % D8) * 8 + cc, r = (rest / D8) * 4 + jl, g = ch * DC + c;
        if (c < DC) kT[KT_AT(c, r)] = (j0 + r < lk && g < HEAD_DIM) ? kb[(wb_long)(j0 + r) * HEAD_DIM + g] : 0.0f;
    }
}

KERNEL void flash_tiled(FLASH_PARAMS DYN_SHARED_ARG(float, smem))
{
    DYN_SHARED_DECL(float, smem);
    LOCAL float* qT = smem;
    LOCAL float* kT = smem + OFF_K;
    LOCAL float* vs = smem + OFF_V;
    LOCAL float* ps = smem + OFF_P;
    LOCAL float* red = smem + OFF_R;
    LOCAL float* ms = smem + OFF_M;
    LOCAL float* ls = smem + OFF_L;
    LOCAL float* as = smem + OFF_A;
    const int t = LOCAL_ID_X;
    const int tx = t % TX, ty = t / TX;
    const int b = GROUP_ID_Y;
    const int i0 = GROUP_ID_X * BQ;
    const GLOBAL float* qb = q + (wb_long)b * lq * HEAD_DIM;
    const GLOBAL float* kb = k + (wb_long)b * lk * HEAD_DIM;
    const GLOBAL float* vb = v + (wb_long)b * lk * VALUE_DIM;
    const int v0 = GROUP_ID_Z * VC;  // the block's first value column

#if NCH == 1
    load_q(qT, qb, 0, i0, lq, scale);  // read once: every key tile uses the same dimensions
#endif
    if (t < BQ) {
        ms[t] = NEG_INF;
        ls[t] = 0.0f;
    }
    float acc[TM][TV];
    UNROLL
    for (int a = 0; a < TM; ++a) {
        UNROLL
        for (int e = 0; e < TV; ++e) acc[a][e] = 0.0f;
    }
    // keys past the causal limit of the block's last row are never read
    const int kend = key_end(lk, causal, i0, BQ, causal_offset);
    for (int j0 = 0; j0 < kend; j0 += BK) {
        BARRIER();  // the previous tile's keys, values and probabilities are no longer read
        for (int e = t; e < BK * VS; e += THREADS) {
            const int r = e / VS, c = e - r * VS;
            vs[e] = (j0 + r < lk && c < VC && v0 + c < VALUE_DIM) ? vb[(wb_long)(j0 + r) * VALUE_DIM + v0 + c] : 0.0f;
        }
        float s[TM][TN];
        UNROLL
        for (int a = 0; a < TM; ++a) {
            UNROLL
            for (int n = 0; n < TN; ++n) s[a][n] = 0.0f;
        }
        for (int ch = 0; ch < NCH; ++ch) {
#if NCH > 1
            load_q(qT, qb, ch, i0, lq, scale);
#endif
            load_k(kT, kb, ch, j0, lk);
            BARRIER();  // the chunk is loaded (and the value tile; qT on the first pass)
            UNROLL_PART
            for (int c = 0; c < DC; ++c) {
                float qa[TM], kv[TN];
                UNROLL
                for (int a = 0; a < TM; ++a) qa[a] = qT[c * QS + ty * TM + a];
                UNROLL
#if TN >= 4
                for (int n4 = 0; n4 < TN; n4 += 4) {  // one aligned 16-byte read per group of 4 keys
                    const int base = 4 * (c * (KS / 4) + (((tx * TN + n4) >> 2) ^ (c & SWZ)));
                    UNROLL
                    for (int u = 0; u < 4; ++u) kv[n4 + u] = kT[base + u];
                }
#else
                for (int n = 0; n < TN; ++n) kv[n] = kT[KT_AT(c, tx * TN + n)];
#endif
                UNROLL
                for (int a = 0; a < TM; ++a) {
                    UNROLL
                    for (int n = 0; n < TN; ++n) s[a][n] += score_term(qa[a], kv[n], curv);
                }
            }
#if NCH > 1
            BARRIER();  // the chunk is no longer read
#endif
        }
        // scores → allowed logits, and each thread's maximum per row
        UNROLL
        for (int a = 0; a < TM; ++a) {
            const int i = i0 + ty * TM + a;
            float mx = NEG_INF;
            UNROLL
            for (int n = 0; n < TN; ++n) {
                const int j = j0 + tx * TN + n;
                // rows and keys past the end are masked below: any existing one stands in for them
                s[a][n] = score_finish(s[a][n], qden, kden, (wb_long)b * lq + (i < lq ? i : lq - 1),
                                       (wb_long)b * lk + (j < lk ? j : lk - 1), scale, curv);
                const int ok = KEY_ALLOWED(b, i, j);
                s[a][n] = ok ? s[a][n] : NEG_INF;
                mx = FMAX(mx, s[a][n]);
            }
            red[(ty * TM + a) * RS + tx] = mx;
        }
        BARRIER();
        if (t < BQ) {  // one thread per row: the new running maximum and the old sum's rescaling
            float mx = NEG_INF;
            for (int x = 0; x < TX; ++x) mx = FMAX(mx, red[t * RS + x]);
            const float mo = ms[t], mn = FMAX(mo, mx);
            as[t] = (mn == NEG_INF) ? 1.0f : ((mo == NEG_INF) ? 0.0f : EXP(mo - mn));
            ms[t] = mn;
        }
        BARRIER();
        UNROLL
        for (int a = 0; a < TM; ++a) {
            const int r = ty * TM + a;
            const float mn = ms[r], alpha = as[r];
            float sum = 0.0f;
            UNROLL
            for (int n = 0; n < TN; ++n) {
                const float p = (s[a][n] == NEG_INF) ? 0.0f : EXP(s[a][n] - mn);
                ps[r * PS + tx * TN + n] = p;
                sum += p;
            }
            red[r * RS + tx] = sum;
            UNROLL
            for (int e = 0; e < TV; ++e) acc[a][e] *= alpha;
        }
        BARRIER();  // P and the partial sums are written
        if (t < BQ) {
            float sum = 0.0f;
            for (int x = 0; x < TX; ++x) sum += red[t * RS + x];
            ls[t] = ls[t] * as[t] + sum;
        }
        // four keys at a time: each row's four probabilities are one 16-byte read (BK is a multiple of 4)
        for (int j4 = 0; j4 < BK; j4 += 4) {
            float pa[TM][4];
            UNROLL
            for (int a = 0; a < TM; ++a) {
                UNROLL
                for (int u = 0; u < 4; ++u) pa[a][u] = ps[(ty * TM + a) * PS + j4 + u];
            }
            UNROLL
            for (int u = 0; u < 4; ++u) {
                float vv[TV];
                UNROLL
                for (int e = 0; e < TV; ++e) vv[e] = vs[(j4 + u) * VS + tx * TV + e];
                UNROLL
                for (int a = 0; a < TM; ++a) {
                    UNROLL
                    for (int e = 0; e < TV; ++e) acc[a][e] += pa[a][u] * vv[e];
                }
            }
        }
    }
    BARRIER();  // the rows' final sums are written
    UNROLL
    for (int a = 0; a < TM; ++a) {
        const int r = ty * TM + a, i = i0 + r;
        if (i < lq) {
            const float l = ls[r];
            const float inv = l > 0.0f ? 1.0f / l : 0.0f;
            GLOBAL float* o = out + ((wb_long)b * lq + i) * VALUE_DIM;
            UNROLL
            for (int e = 0; e < TV; ++e) {
                const int c = tx * TV + e;
                if (c < VC && v0 + c < VALUE_DIM) o[v0 + c] = acc[a][e] * inv;
            }
        }
    }
    if (GROUP_ID_Z == 0 && t < BQ && i0 + t < lq) lse[(wb_long)b * lq + i0 + t] = ls[t] > 0.0f ? ms[t] + LOG(ls[t]) : NEG_INF;
}
