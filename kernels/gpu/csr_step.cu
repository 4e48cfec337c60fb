// One explicit-Euler heat step on a CSR Laplacian, float32: y = x − h · L x, x (n, COLS) row-major.
// Portable body (kernels/gpu/prelude_*.h). One thread per (row, column): it walks its row's stored
// entries (indptr[i] .. indptr[i+1]) and sums L_ip · x[indices[p], c]; a block covers THREADS
// consecutive (row, column) pairs, so a row's columns read the same entries side by side.
#ifndef COLS
#define COLS 64
#endif
#ifndef THREADS
#define THREADS 128
#endif

KERNEL void csr_step(const GLOBAL int* RESTRICT indptr, const GLOBAL int* RESTRICT indices,
                     const GLOBAL float* RESTRICT data, const GLOBAL float* RESTRICT x, const float h, const int n,
                     GLOBAL float* RESTRICT y)
{
    const wb_long e = (wb_long)GROUP_ID_X * THREADS + LOCAL_ID_X;
    if (e >= (wb_long)n * COLS) return;
    const int i = (int)(e / COLS), c = (int)(e - (wb_long)i * COLS);
    float acc = 0.0f;
    for (int p = indptr[i]; p < indptr[i + 1]; ++p) acc += data[p] * x[(wb_long)indices[p] * COLS + c];
    y[e] = x[e] - h * acc;
}
