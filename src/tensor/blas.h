/* blas.h - the engine's matrix multiply and thread count (the one door to OpenBLAS).
 *
 * Threads: OpenBLAS (OpenMP flavour) and our own OpenMP loops share one thread pool, so the
 * count is set once, here, for both; nothing else in shrinkwrap creates threads.
 */
#ifndef SW_BLAS_H
#define SW_BLAS_H

#include <stdbool.h>

/* C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, all row-major.
 * lda/ldb/ldc are the row strides of A, B and C as stored. */
void sw_sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float *a,
              int lda, const float *b, int ldb, float beta, float *c, int ldc);

/* Sets the number of threads for OpenBLAS and our parallel loops; n <= 0 means all cores.
 * Call once at start-up, before any work. Returns the count in effect. */
int sw_threads_set(int n);
/* The count in effect. */
int sw_threads_get(void);
/* Cores available to this process. */
int sw_threads_available(void);
/* The BLAS library's own description (e.g. "OpenBLAS 0.3.21 ... OpenMP"). */
const char *sw_blas_info(void);

#endif
