/* blas.c - OpenBLAS sgemm and thread configuration. The only file that includes cblas.h. */
#include "blas.h"

#include <cblas.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* OpenBLAS exports these; declared here because not every cblas.h variant does. */
extern void openblas_set_num_threads(int num_threads);
extern char *openblas_get_config(void);
extern char *openblas_get_corename(void);
/* Present only in OpenBLAS builds with run-time kernel selection (Debian's are); weak so that
 * a build without it still links and simply keeps its kernels. */
extern void gotoblas_dynamic_init(void) __attribute__((weak));
extern void gotoblas_dynamic_quit(void) __attribute__((weak));

/* OpenBLAS 0.3.21 does not recognise newer AVX-512 CPUs (AMD Zen 4/5 among them) and falls back
 * to its Haswell (AVX2) kernels; its SkylakeX kernels measured 96 -> 167 GFLOP/s on a conv-shaped
 * sgemm here and 25-35% faster training steps. When the user has not chosen a core type
 * (OPENBLAS_CORETYPE) and the CPU has the AVX-512 subsets those kernels use, re-select them.
 * Changes the process environment once, at start-up, before any BLAS call of ours. */
static void prefer_avx512_kernels(void) {
    if (getenv("OPENBLAS_CORETYPE") || !gotoblas_dynamic_init || !gotoblas_dynamic_quit) return;
    const char *core = openblas_get_corename();
    if (!core || strcasecmp(core, "haswell") != 0) return;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512dq") || !__builtin_cpu_supports("avx512vl"))
        return;
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
}

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
    static bool kernels_chosen; /* once per process: see prefer_avx512_kernels */
    if (!kernels_chosen) {
        prefer_avx512_kernels();
        kernels_chosen = true;
    }
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
