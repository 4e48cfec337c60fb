// Softmax attention on tensor cores, float32 in and out: the function of flash_fwd.cu for the dot score
// (masks, causal offsets, LSE; rows with no allowed key → out 0, lse −inf), with both products, S = Q Kᵀ
// and O = P V, as m16n8k8 TF32 mma tiles in 3×TF32 (mma.cuh: float32 accuracy from three TF32 products).
// A block of WARPS warps owns BQ = 16·WARPS query rows, 16 per warp; key tiles of BK keys. Per tile each
// warp computes its 16 × BK scores in registers (KT = BK/8 accumulator tiles, the PTX C layout: lane 4g + t
// holds rows g and g + 8, columns 2t and 2t + 1 of each), masks them, updates the online softmax (the
// row maximum reduced over the row's quad of lanes; the row sum kept per lane, reduced at the end), and
// multiplies P by the value tile. P needs no shuffle: the C layout's columns 2t, 2t + 1 become the A
// operand's columns t, t + 4 — a permutation of the summed keys, applied to V's rows too (rows 2t, 2t + 1).
// Local memory (dynamic; strides padded to 4 mod 32 banks, so fragment reads of 8 rows × 4 columns are
// conflict-free): qs[BQ][QS] the block's queries (scaled by `scale`), ks[BK][KS] the key tile, vs[BK][VS]
// the value tile, zero past the ends; scr: WARPS × WB_SCRATCH floats, used only where mma.cuh emulates
// (WB_SCRATCH = 0 on CUDA).
#define THREADS (32 * WARPS)
#define BQ (16 * WARPS)
#define KT (BK / 8)
#define DK ((HEAD_DIM + 7) / 8)
#define DN ((VALUE_DIM + 7) / 8)
#include "scores.cuh"
#include "mma.cuh"
// every loop over register arrays fully unrolled on both APIs (constant indices keep them in registers;
// PoCL also needs it where barriers are near, see mma.cuh)
#undef UNROLL
#define UNROLL WARP_UNROLL

KERNEL void flash_mma(FLASH_PARAMS DYN_SHARED_ARG(float, smem))
{
    DYN_SHARED_DECL(float, smem);
    LOCAL float* qs = smem;
    LOCAL float* ks = smem + OFF_K;
    LOCAL float* vs = smem + OFF_V;
    const int tid = LOCAL_ID_X;
    const int warp = tid / 32, lane = tid % 32;
    const int g = lane >> 2, t = lane & 3;
    LOCAL float* scr = smem + OFF_S + warp * WB_SCRATCH;
    const int b = GROUP_ID_Y;
    const int i0 = GROUP_ID_X * BQ;
    const int r0 = warp * 16;  // the warp's first row in the block
    const GLOBAL float* qb = q + (wb_long)b * lq * HEAD_DIM;
    const GLOBAL float* kb = k + (wb_long)b * lk * HEAD_DIM;
    const GLOBAL float* vb = v + (wb_long)b * lk * VALUE_DIM;

    for (int e = tid; e < BQ * DK * 8; e += THREADS) {
        const int r = e / (DK * 8), c = e - r * (DK * 8);
        qs[r * QS + c] = (i0 + r < lq && c < HEAD_DIM) ? qb[(wb_long)(i0 + r) * HEAD_DIM + c] * scale : 0.0f;
    }
    float o[DN][4];
    UNROLL
    for (int n = 0; n < DN; ++n) {
        UNROLL
        for (int x = 0; x < 4; ++x) o[n][x] = 0.0f;
    }
    float m[2] = {NEG_INF, NEG_INF}, l[2] = {0.0f, 0.0f};  // rows g and g + 8 of the warp
    const int kend = key_end(lk, causal, i0, BQ, causal_offset);
    for (int j0 = 0; j0 < kend; j0 += BK) {
        BARRIER();  // the previous tile is no longer read
        for (int e = tid; e < BK * DK * 8; e += THREADS) {
            const int r = e / (DK * 8), c = e - r * (DK * 8);
            ks[r * KS + c] = (j0 + r < lk && c < HEAD_DIM) ? kb[(wb_long)(j0 + r) * HEAD_DIM + c] : 0.0f;
        }
        for (int e = tid; e < BK * DN * 8; e += THREADS) {
            const int r = e / (DN * 8), c = e - r * (DN * 8);
            vs[r * VS + c] = (j0 + r < lk && c < VALUE_DIM) ? vb[(wb_long)(j0 + r) * VALUE_DIM + c] : 0.0f;
        }
        BARRIER();  // the tile is loaded (and qs, on the first pass)
        float s[KT][4];
        UNROLL
        for (int n = 0; n < KT; ++n) {
            UNROLL
            for (int x = 0; x < 4; ++x) s[n][x] = 0.0f;
        }
        UNROLL_PART
        for (int kk = 0; kk < DK; ++kk) {
            float ah[4], al[4];
            const LOCAL float* qa = qs + (r0 + g) * QS + kk * 8 + t;
            wb_split(qa[0], &ah[0], &al[0]);
            wb_split(qa[8 * QS], &ah[1], &al[1]);
            wb_split(qa[4], &ah[2], &al[2]);
            wb_split(qa[8 * QS + 4], &ah[3], &al[3]);
            UNROLL
            for (int n = 0; n < KT; ++n) {
                float bh[2], bl[2];
                const LOCAL float* kp = ks + (n * 8 + g) * KS + kk * 8 + t;
                wb_split(kp[0], &bh[0], &bl[0]);
                wb_split(kp[4], &bh[1], &bl[1]);
                wb_mma_qk(s[n], ah, al, bh, bl, kk, n, scr, lane);
            }
        }
        wb_mma_qk_end(&s[0][0], scr, lane);
        // allowed logits, the rows' new maxima (over the quad), the rescaling of what came before
        float mx[2] = {NEG_INF, NEG_INF};
        UNROLL
        for (int n = 0; n < KT; ++n) {
            UNROLL
            for (int x = 0; x < 4; ++x) {
                const int i = i0 + r0 + g + (x >> 1) * 8, j = j0 + n * 8 + 2 * t + (x & 1);
                const int ok = KEY_ALLOWED(b, i, j);
                s[n][x] = ok ? s[n][x] : NEG_INF;
                mx[x >> 1] = FMAX(mx[x >> 1], s[n][x]);
            }
        }
        float alpha[2];
        WARP_UNROLL
        for (int h = 0; h < 2; ++h) {
            const float mn = FMAX(m[h], wb_quad_max(mx[h], scr, lane));
            alpha[h] = (mn == NEG_INF) ? 1.0f : ((m[h] == NEG_INF) ? 0.0f : EXP(m[h] - mn));
            m[h] = mn;
            l[h] *= alpha[h];
        }
        UNROLL
        for (int n = 0; n < DN; ++n) {
            UNROLL
            for (int x = 0; x < 4; ++x) o[n][x] *= alpha[x >> 1];
        }
        UNROLL
        for (int n = 0; n < KT; ++n) {
            UNROLL
            for (int x = 0; x < 4; ++x) {
                const float p = (s[n][x] == NEG_INF) ? 0.0f : EXP(s[n][x] - m[x >> 1]);
                s[n][x] = p;
                l[x >> 1] += p;
            }
        }
        // O += P V over the tile's keys, 8 at a time: A = P's columns (2t, 2t + 1) as (t, t + 4)
        UNROLL
        for (int n = 0; n < KT; ++n) {
            float ah[4], al[4];
            wb_split(s[n][0], &ah[0], &al[0]);
            wb_split(s[n][2], &ah[1], &al[1]);
            wb_split(s[n][1], &ah[2], &al[2]);
            wb_split(s[n][3], &ah[3], &al[3]);
            const LOCAL float* vp = vs + (n * 8 + 2 * t) * VS + g;
            UNROLL
            for (int dn = 0; dn < DN; ++dn) {
                float bh[2], bl[2];
                wb_split(vp[dn * 8], &bh[0], &bl[0]);
                wb_split(vp[VS + dn * 8], &bh[1], &bl[1]);
                wb_mma_pv(o[dn], ah, al, bh, bl, n, dn, scr, lane);
            }
        }
        wb_mma_pv_end(&o[0][0], scr, lane);
    }
    float inv[2];
    WARP_UNROLL
    for (int h = 0; h < 2; ++h) {
        l[h] = wb_quad_sum(l[h], scr, lane);
        inv[h] = l[h] > 0.0f ? 1.0f / l[h] : 0.0f;
    }
    UNROLL
    for (int h = 0; h < 2; ++h) {
        const int i = i0 + r0 + g + h * 8;
        if (i < lq) {
            GLOBAL float* orow = out + ((wb_long)b * lq + i) * VALUE_DIM;
            UNROLL
            for (int dn = 0; dn < DN; ++dn) {
                UNROLL
                for (int x = 0; x < 2; ++x) {
                    const int c = dn * 8 + 2 * t + x;
                    if (c < VALUE_DIM) orow[c] = o[dn][h * 2 + x] * inv[h];
                }
            }
            if (t == 0) lse[(wb_long)b * lq + i] = l[h] > 0.0f ? m[h] + LOG(l[h]) : NEG_INF;
        }
    }
}
