/* epilogue.h - a per-channel affine map and ReLU that a forward kernel applies to each output
 * value while it is still in cache, instead of separate passes over memory afterwards.
 *
 * Inference fusion (src/nn/inference_fusion.h) uses it to fold an eval-mode BatchNorm (a fixed
 * per-channel scale and shift) and a following ReLU into the convolution that feeds them:
 *     y[c] = relu?((conv[c] + bias[c]) * scale[c] + shift[c]).
 * Two more steps only the register-tiled convolution (conv_tiled.h) takes: a residual added
 * before the ReLU (a ResNet block's Add: y = relu(bn(conv) + r), r shaped like y), and a
 * following MaxPool2d(2) (stride 2, no padding, pool2x2): then y is the pooled map,
 * [C, Ho/2, Wo/2], and the full-size map is never written. Not both at once.
 */
#ifndef SW_EPILOGUE_H
#define SW_EPILOGUE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct sw_epilogue {
    const float *scale; /* [C] or NULL (1) */
    const float *shift; /* [C] or NULL (0) */
    bool relu;
    const float *residual; /* [N, C, Ho, Wo] added before the ReLU, or NULL */
    bool pool2x2; /* then the max of each 2x2 window, a NaN winning as in MaxPool2d */
} sw_epilogue;

/* The map of channel c as y = v * a + b (then ReLU if ep->relu), the layer's own bias folded
 * into b. ep may be NULL (a = 1, b = the bias). */
static inline void sw_epilogue_coeffs(const sw_epilogue *ep, const float *bias, int c, float *a,
                                      float *b) {
    float s = ep && ep->scale ? ep->scale[c] : 1.0f;
    *a = s;
    *b = (bias ? bias[c] : 0.0f) * s + (ep && ep->shift ? ep->shift[c] : 0.0f);
}

/* dst[i] = relu?(src[i] * a + b) for n values (dst may equal src). */
static inline void sw_epilogue_apply(float *dst, const float *src, size_t n, float a, float b,
                                     bool relu) {
    if (relu) {
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float v = src[i] * a + b;
            dst[i] = v < 0.0f ? 0.0f : v; /* NaN passes, as ReLU's clamp lets it */
        }
    } else {
#pragma omp simd
        for (size_t i = 0; i < n; i++) dst[i] = src[i] * a + b;
    }
}

#endif
