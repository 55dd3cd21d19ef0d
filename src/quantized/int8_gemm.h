/* int8_gemm.h - integer matrix products for int8 inference: uint8 x int8 -> int32.
 *
 *   C[m, n] = sum_k A[m, k] * B[n, k]     A: [M, lda] uint8, B: [N, K] int8, C: [M, ldc] int32
 *
 * A holds one input row (or im2col patch) per row, B one output channel's weights per row. B is
 * packed once (sw_i8_pack, at conversion or load) into the layouts the kernels stream:
 *   AVX-512 VNNI  [K/4][N64][4] int8: one 64-byte load is 16 output channels x 4 k; four bytes of
 *                 an A row are broadcast and vpdpbusd adds the four products into each channel's
 *                 32-bit lane: no horizontal sums, 64 outputs per pass over A's row;
 *   AVX2          [K/2][N32][2] int16: B widened at pack time, pairs of A bytes broadcast as two
 *                 16-bit values, vpmaddwd (exact: 16-bit products cannot saturate there, unlike
 *                 vpmaddubsw's, which would for 255 * 127 * 2);
 *   portable      B row-major as given: the definition, and the oracle of the tests.
 * A's rows must be zero from K up to K rounded to 4 (lda >= that): padding then adds nothing.
 * Sums of up to 2^16 products of a uint8 and an int8 fit int32; the layers stay below that.
 *
 * The fastest kernel the CPU supports is chosen once at run time (__builtin_cpu_supports); all
 * compute the same integers (integer arithmetic is exact).
 */
#ifndef SW_INT8_GEMM_H
#define SW_INT8_GEMM_H

#include <stddef.h>
#include <stdint.h>

#include "../tensor/status.h"

/* Row padding of A buffers built by callers: a multiple of every kernel's K step. */
#define SW_I8_K_ALIGN 64

typedef enum sw_i8_kernel {
    SW_I8_KERNEL_PORTABLE,
    SW_I8_KERNEL_AVX2,
    SW_I8_KERNEL_AVX512_VNNI,
    SW_I8_KERNEL_COUNT
} sw_i8_kernel;

/* "portable" | "avx2" | "avx512-vnni". */
const char *sw_i8_kernel_name(sw_i8_kernel k);

/* True when kernel k can run on this CPU (the portable one always can). */
int sw_i8_kernel_available(sw_i8_kernel k);

/* The kernel sw_i8_gemm uses: the best available one, unless overridden (tests). */
sw_i8_kernel sw_i8_kernel_selected(void);
/* Forces a kernel (ignored when unavailable); returns the previous selection. */
sw_i8_kernel sw_i8_kernel_select(sw_i8_kernel k);

/* k rounded up to SW_I8_K_ALIGN. */
size_t sw_i8_padded_k(size_t k);

/* B packed for every available kernel. Owns its arrays. */
typedef struct sw_i8_packed {
    int n;         /* output channels */
    size_t k;      /* reduction length */
    int8_t *rows;  /* [n, k] row-major copy (portable kernel) */
    int n64, n32;  /* n rounded up to 64 and 32: whole register blocks, zero weights beyond n */
    int8_t *vnni;  /* [ceil(k/4)][n64][4], NULL when the kernel is unavailable */
    int16_t *avx2; /* [ceil(k/2)][n32][2], NULL when the kernel is unavailable */
} sw_i8_packed;

/* Packs B [n, k] (row stride ldb). Caller owns *out (sw_i8_packed_free). */
sw_status sw_i8_pack(const int8_t *b, int n, size_t k, size_t ldb, sw_i8_packed **out);
void sw_i8_packed_free(sw_i8_packed *p);

/* C = A * B^T with the selected kernel (see above). */
void sw_i8_gemm(int m, const uint8_t *a, size_t lda, const sw_i8_packed *b, int32_t *c, size_t ldc);
/* The same with a given kernel (which must be available). */
void sw_i8_gemm_with(sw_i8_kernel kernel, int m, const uint8_t *a, size_t lda,
                     const sw_i8_packed *b, int32_t *c, size_t ldc);

#endif
