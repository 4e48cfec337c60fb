// The scores of the flash bodies (flash_fwd.cu, flash_tiled.cu), one place for both: compile-time SCORE
//   0  dot product:        s = scale · q·k  (the body pre-scales q; the sum is the score)
//   1  Poincaré ball:      s = −arcosh(1 + 2c‖q − k‖² / (qden_i · kden_j)) · scale, scale = 1/(√c·T),
//                          qden = max(1 − c‖q‖², eps) per row (hyperbolic attention)
//   2  sliced Wasserstein: s = −(Σ_f |a_f − b_f|^p)^(1/p) · scale, p in curv, scale = 1/T
//   3  Lorentz distance from the tangent chart at the origin (hyperbolic law of cosines): q, k the unit
//                          directions û, ŵ; qden = (a, ln sinh a) per row with a = √c‖u‖; δ = ‖û − ŵ‖²,
//                          X = 2 sinh²((a − b)/2) + sinh a · sinh b · δ/2 in the log domain,
//                          s = −arcosh(1 + X) · scale, scale = 1/(√c·T) (Lorentz cascade heads)
//   4  Busemann:           s = −|kden_j − qden_i| · scale (per-row Busemann values; q, k unused)
// score_term accumulates one dimension; score_finish turns the sum into the logit (qi, kj: the flat
// indices b·lq + i and b·lk + j of rows that exist). FLASH_PARAMS: the parameters every flash body takes
// (kernels/gpu/flash.py passes them in this order), KEY_ALLOWED(b, i, j): whether query i of batch item b
// may attend key j, key_end: the causal bound of a block's keys.
#ifndef SCORE
#define SCORE 0
#endif
#define WB_LN2 0.69314718f
#define FLASH_PARAMS                                                                                       \
    const GLOBAL float* RESTRICT q, const GLOBAL float* RESTRICT k, const GLOBAL float* RESTRICT v,        \
        const GLOBAL unsigned char* RESTRICT mask, const int has_mask, const wb_long mask_sb,                \
        const wb_long mask_sq, const float scale, const int causal, const int causal_offset, const int lq, \
        const int lk, GLOBAL float* RESTRICT out, GLOBAL float* RESTRICT lse,                               \
        const GLOBAL float* RESTRICT qden, const GLOBAL float* RESTRICT kden, const float curv

DEVICE float score_term(const float qc, const float kc, const float curv)
{
#if SCORE == 0
    return qc * kc;
#elif SCORE == 1 || SCORE == 3
    const float diff = qc - kc;
    return diff * diff;
#elif SCORE == 2
    const float diff = FABS(qc - kc);
    return (curv == 2.0f) ? diff * diff : ((curv == 1.0f) ? diff : POW(diff, curv));
#else
    return 0.0f;
#endif
}

// ln sinh x for x >= 0 (−inf at 0; x − ln 2 where sinh would lose nothing to the exponential's tail)
DEVICE float log_sinh(const float x)
{
    return x < 20.0f ? LOG(SINH(x)) : x - WB_LN2;
}

DEVICE float score_finish(const float acc, const GLOBAL float* RESTRICT qden, const GLOBAL float* RESTRICT kden,
                          const wb_long qi, const wb_long kj, const float scale, const float curv)
{
#if SCORE == 0
    return acc;
#elif SCORE == 1
    const float x = 2.0f * curv * acc / (qden[qi] * kden[kj]);
    return -LOG1P(x + SQRT(x * (x + 2.0f))) * scale;  // arcosh(1 + x)
#elif SCORE == 2
    return -scale * ((curv == 2.0f) ? SQRT(acc) : ((curv == 1.0f) ? acc : POW(acc, 1.0f / curv)));
#elif SCORE == 3
    const float a = qden[2 * qi], b = kden[2 * kj];
    // both terms of X are >= 0: ln X = logaddexp(ln 2 + 2 ln sinh(|a − b|/2), ln sinh a + ln sinh b + ln(δ/2))
    const float t1 = WB_LN2 + 2.0f * log_sinh(0.5f * FABS(a - b));
    const float t2 = qden[2 * qi + 1] + kden[2 * kj + 1] + LOG(0.5f * acc);
    const float hi = FMAX(t1, t2), lo = FMIN(t1, t2);
    if (hi == NEG_INF) return 0.0f;  // the same point
    const float lnx = hi + LOG1P(EXP(lo - hi));
    if (lnx >= 30.0f) return -(lnx + WB_LN2) * scale;  // arcosh(1 + X) = ln 2X to float precision
    const float x = EXP(lnx);
    return -LOG1P(x + SQRT(x * (x + 2.0f))) * scale;
#else
    return -FABS(kden[kj] - qden[qi]) * scale;
#endif
}

// Query i may attend key j: both exist, j ≤ i + causal_offset when causal, and the mask (uint8, strides
// mask_sb, mask_sq, 1; 0 where it broadcasts) allows it. KEY_ALLOWED passes a body's FLASH_PARAMS.
DEVICE int key_allowed(const GLOBAL unsigned char* RESTRICT mask, const int has_mask, const wb_long mask_sb,
                       const wb_long mask_sq, const int b, const int i, const int j, const int lq, const int lk,
                       const int causal, const int causal_offset)
{
    int ok = j < lk && i < lq;
    if (causal) ok = ok && ((wb_long)j <= (wb_long)i + causal_offset);
    if (has_mask && ok) ok = mask[(wb_long)b * mask_sb + (wb_long)i * mask_sq + j] != 0;
    return ok;
}
#define KEY_ALLOWED(b, i, j) key_allowed(mask, has_mask, mask_sb, mask_sq, (b), (i), (j), lq, lk, causal, causal_offset)

// The end of the keys a block of queries i0 … i0 + rows − 1 may attend (the causal limit of its last row).
DEVICE int key_end(const int lk, const int causal, const int i0, const int rows, const int causal_offset)
{
    if (!causal) return lk;
    const wb_long e = (wb_long)i0 + rows + causal_offset;
    return e < 0 ? 0 : (e < lk ? (int)e : lk);
}
