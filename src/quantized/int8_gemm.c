/* int8_gemm.c - the uint8 x int8 kernels, B's packing, and the run-time selection.
 *
 * The vector kernels walk one row of A at a time and keep four registers of outputs (64 output
 * channels with VNNI, 32 with AVX2) in flight across the whole reduction: each step broadcasts
 * a few bytes of A and multiplies them with a contiguous slice of packed B, so there is no
 * horizontal sum per output and B streams from memory in order. Vector code lives in functions
 * compiled for their instruction set only (target attributes) and is called only when
 * __builtin_cpu_supports says the CPU has it; the rest of the binary stays baseline. On other
 * architectures only the portable loop is compiled. */
#include "int8_gemm.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SW_I8_X86 1
#else
#define SW_I8_X86 0
#endif

const char *sw_i8_kernel_name(sw_i8_kernel k) {
    switch (k) {
    case SW_I8_KERNEL_PORTABLE:
        return "portable";
    case SW_I8_KERNEL_AVX2:
        return "avx2";
    case SW_I8_KERNEL_AVX512_VNNI:
        return "avx512-vnni";
    case SW_I8_KERNEL_COUNT:
        break;
    }
    return "?";
}

size_t sw_i8_padded_k(size_t k) {
    return (k + SW_I8_K_ALIGN - 1) / SW_I8_K_ALIGN * SW_I8_K_ALIGN;
}

/* GCC's __builtin_cpu_supports reads CPUID once per process. */
int sw_i8_kernel_available(sw_i8_kernel k) {
    switch (k) {
    case SW_I8_KERNEL_PORTABLE:
        return 1;
#if SW_I8_X86
    case SW_I8_KERNEL_AVX2:
        return __builtin_cpu_supports("avx2");
    case SW_I8_KERNEL_AVX512_VNNI:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vnni");
#else
    case SW_I8_KERNEL_AVX2:
    case SW_I8_KERNEL_AVX512_VNNI:
        return 0;
#endif
    case SW_I8_KERNEL_COUNT:
        break;
    }
    return 0;
}

/* -1 until the first call decides. Callers decide on their own thread before any parallel
 * region (conversion and inference call sw_i8_kernel_selected first). */
static int selected = -1;

sw_i8_kernel sw_i8_kernel_selected(void) {
    if (selected < 0) {
        selected = SW_I8_KERNEL_PORTABLE;
        if (sw_i8_kernel_available(SW_I8_KERNEL_AVX2)) selected = SW_I8_KERNEL_AVX2;
        if (sw_i8_kernel_available(SW_I8_KERNEL_AVX512_VNNI)) selected = SW_I8_KERNEL_AVX512_VNNI;
    }
    return (sw_i8_kernel)selected;
}

sw_i8_kernel sw_i8_kernel_select(sw_i8_kernel k) {
    sw_i8_kernel prev = sw_i8_kernel_selected();
    if (sw_i8_kernel_available(k)) selected = (int)k;
    return prev;
}

/* ---- packing -------------------------------------------------------------------------- */

static int round_up(int v, int to) {
    return (v + to - 1) / to * to;
}

void sw_i8_packed_free(sw_i8_packed *p) {
    if (!p) return;
    free(p->rows);
    free(p->vnni);
    free(p->avx2);
    free(p);
}

sw_status sw_i8_pack(const int8_t *b, int n, size_t k, size_t ldb, sw_i8_packed **out) {
    sw_i8_packed *p = calloc(1, sizeof *p);
    if (!p) return SW_FAIL(SW_ERR_NOMEM, "out of memory packing int8 weights");
    p->n = n;
    p->k = k;
    p->n64 = round_up(n, 64);
    p->n32 = round_up(n, 32);
    size_t k4 = (k + 3) / 4, k2 = (k + 1) / 2;
    p->rows = malloc((size_t)n * k + 1);
    bool ok = p->rows != NULL;
    if (ok && sw_i8_kernel_available(SW_I8_KERNEL_AVX512_VNNI))
        ok = (p->vnni = calloc(k4 * (size_t)p->n64 * 4, 1)) != NULL;
    if (ok && sw_i8_kernel_available(SW_I8_KERNEL_AVX2))
        ok = (p->avx2 = calloc(k2 * (size_t)p->n32 * 2, sizeof *p->avx2)) != NULL;
    if (!ok) {
        sw_i8_packed_free(p);
        return SW_FAIL(SW_ERR_NOMEM, "out of memory packing int8 weights (%d x %zu)", n, k);
    }
    for (int j = 0; j < n; j++) {
        const int8_t *row = b + (size_t)j * ldb;
        memcpy(p->rows + (size_t)j * k, row, k);
        for (size_t e = 0; e < k; e++) {
            /* Element (j, e) sits at [e/4][j][e%4] and [e/2][j][e%2]; the rest stays 0. */
            if (p->vnni) p->vnni[((e / 4) * (size_t)p->n64 + (size_t)j) * 4 + e % 4] = row[e];
            if (p->avx2) p->avx2[((e / 2) * (size_t)p->n32 + (size_t)j) * 2 + e % 2] = row[e];
        }
    }
    *out = p;
    return SW_OK;
}

/* ---- portable: the oracle -------------------------------------------------------------- */

/* The definition itself, in int32. */
static void gemm_portable(int m, const uint8_t *a, size_t lda, const sw_i8_packed *b, int32_t *c,
                          size_t ldc) {
    for (int i = 0; i < m; i++) {
        const uint8_t *ar = a + (size_t)i * lda;
        for (int j = 0; j < b->n; j++) {
            const int8_t *br = b->rows + (size_t)j * b->k;
            int32_t acc = 0;
            for (size_t e = 0; e < b->k; e++) acc += (int32_t)ar[e] * (int32_t)br[e];
            c[(size_t)i * ldc + (size_t)j] = acc;
        }
    }
}

#if SW_I8_X86

/* ---- AVX2: pairs of A bytes as 16-bit values against 16-bit B, vpmaddwd ------------------- */

__attribute__((target("avx2"))) static void
gemm_avx2(int m, const uint8_t *a, size_t lda, const sw_i8_packed *b, int32_t *c, size_t ldc) {
    const size_t k2 = (b->k + 1) / 2, np = (size_t)b->n32;
    for (int i = 0; i < m; i++) {
        const uint8_t *ar = a + (size_t)i * lda;
        int32_t *cr = c + (size_t)i * ldc;
        for (size_t nb = 0; nb < np; nb += 32) {
            __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
            const int16_t *bp = b->avx2 + nb * 2;
            for (size_t kp = 0; kp < k2; kp++, bp += np * 2) {
                /* a[2kp] and a[2kp+1] as the two 16-bit halves of every 32-bit lane. */
                int32_t pair = (int32_t)ar[2 * kp] | ((int32_t)ar[2 * kp + 1] << 16);
                __m256i av = _mm256_set1_epi32(pair);
                s0 = _mm256_add_epi32(
                    s0, _mm256_madd_epi16(av, _mm256_loadu_si256((const __m256i *)bp)));
                s1 = _mm256_add_epi32(
                    s1, _mm256_madd_epi16(av, _mm256_loadu_si256((const __m256i *)(bp + 16))));
                s2 = _mm256_add_epi32(
                    s2, _mm256_madd_epi16(av, _mm256_loadu_si256((const __m256i *)(bp + 32))));
                s3 = _mm256_add_epi32(
                    s3, _mm256_madd_epi16(av, _mm256_loadu_si256((const __m256i *)(bp + 48))));
            }
            int32_t tmp[32];
            _mm256_storeu_si256((__m256i *)tmp, s0);
            _mm256_storeu_si256((__m256i *)(tmp + 8), s1);
            _mm256_storeu_si256((__m256i *)(tmp + 16), s2);
            _mm256_storeu_si256((__m256i *)(tmp + 24), s3);
            size_t count = (size_t)b->n - nb < 32 ? (size_t)b->n - nb : 32;
            memcpy(cr + nb, tmp, count * sizeof *tmp);
        }
    }
}

/* ---- AVX-512 VNNI: vpdpbusd adds four u8 x s8 products into each 32-bit lane ------------ */

__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void
gemm_vnni(int m, const uint8_t *a, size_t lda, const sw_i8_packed *b, int32_t *c, size_t ldc) {
    const size_t k4 = (b->k + 3) / 4, np = (size_t)b->n64;
    for (int i = 0; i < m; i++) {
        const uint8_t *ar = a + (size_t)i * lda;
        int32_t *cr = c + (size_t)i * ldc;
        for (size_t nb = 0; nb < np; nb += 64) {
            __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
            const int8_t *bp = b->vnni + nb * 4;
            for (size_t kb = 0; kb < k4; kb++, bp += np * 4) {
                int32_t quad;
                memcpy(&quad, ar + 4 * kb, sizeof quad); /* four bytes of A, every lane */
                __m512i av = _mm512_set1_epi32(quad);
                s0 = _mm512_dpbusd_epi32(s0, av, _mm512_loadu_si512((const void *)bp));
                s1 = _mm512_dpbusd_epi32(s1, av, _mm512_loadu_si512((const void *)(bp + 64)));
                s2 = _mm512_dpbusd_epi32(s2, av, _mm512_loadu_si512((const void *)(bp + 128)));
                s3 = _mm512_dpbusd_epi32(s3, av, _mm512_loadu_si512((const void *)(bp + 192)));
            }
            /* Masked stores: the padded channels beyond n are not written. */
            int left = b->n - (int)nb;
            __m512i acc[4] = {s0, s1, s2, s3};
            for (int r = 0; r < 4 && left > 0; r++, left -= 16) {
                __mmask16 keep = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
                _mm512_mask_storeu_epi32(cr + nb + (size_t)r * 16, keep, acc[r]);
            }
        }
    }
}

#endif /* SW_I8_X86 */

void sw_i8_gemm_with(sw_i8_kernel kernel, int m, const uint8_t *a, size_t lda,
                     const sw_i8_packed *b, int32_t *c, size_t ldc) {
    switch (kernel) {
#if SW_I8_X86
    case SW_I8_KERNEL_AVX512_VNNI:
        if (b->vnni) {
            gemm_vnni(m, a, lda, b, c, ldc);
            return;
        }
        break;
    case SW_I8_KERNEL_AVX2:
        if (b->avx2) {
            gemm_avx2(m, a, lda, b, c, ldc);
            return;
        }
        break;
#endif
    default:
        break;
    }
    gemm_portable(m, a, lda, b, c, ldc);
}

void sw_i8_gemm(int m, const uint8_t *a, size_t lda, const sw_i8_packed *b, int32_t *c,
                size_t ldc) {
    sw_i8_gemm_with(sw_i8_kernel_selected(), m, a, lda, b, c, ldc);
}
