/* blas.c - OpenBLAS sgemm and thread configuration. The only file that includes cblas.h. */
#include "blas.h"

#include <cblas.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* OpenBLAS exports these; declared here because not every cblas.h variant does. */
extern void openblas_set_num_threads(int num_threads);
extern char *openblas_get_config(void);

void sw_sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float *a,
              int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

int sw_threads_available(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int sw_threads_set(int n) {
    if (n <= 0) n = sw_threads_available();
    openblas_set_num_threads(n);
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    return n;
}

int sw_threads_get(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

const char *sw_blas_info(void) { return openblas_get_config(); }
