/* augment.c - random crop with padding and horizontal flip. */
#include "augment.h"

#include <string.h>

sw_augment_draw sw_augment_sample(const sw_augment *aug, sw_rng *rng) {
    const int p = aug->crop_padding;
    sw_augment_draw d = {p, p, false};
    if (p > 0) {
        /* (2p + 1) positions per axis, as torchvision's randint(0, h + 2p - h + 1). */
        d.dy = (int)sw_rng_below(rng, (uint32_t)(2 * p + 1));
        d.dx = (int)sw_rng_below(rng, (uint32_t)(2 * p + 1));
    }
    if (aug->horizontal_flip) d.flip = sw_rng_below(rng, 2) == 1;
    return d;
}

static void fill(float *dst, int n, float value) {
    for (int i = 0; i < n; i++) dst[i] = value;
}

void sw_augment_apply(float *dst, const float *src, int channels, int height, int width,
                      const float *pad_value, int padding, sw_augment_draw draw) {
    /* Output pixel (i, j) comes from padded pixel (i + dy, j' + dx), j' = flip ? W-1-j : j, and
     * padded pixel (y, x) is source pixel (y - p, x - p) or padding. */
    const int oy = draw.dy - padding, ox = draw.dx - padding; /* source = output + offset */
    /* Output columns whose crop column j' has a source column in [0, W): j' in [lo, hi). */
    int lo = -ox, hi = width - ox;
    if (lo < 0) lo = 0;
    if (hi > width) hi = width;
    for (int c = 0; c < channels; c++) {
        const float pad = pad_value[c];
        for (int i = 0; i < height; i++) {
            float *out = dst + ((size_t)c * height + i) * width;
            const int sy = i + oy;
            if (sy < 0 || sy >= height || lo >= hi) {
                fill(out, width, pad);
                continue;
            }
            const float *row = src + ((size_t)c * height + sy) * width;
            if (!draw.flip) {
                fill(out, lo, pad);
                memcpy(out + lo, row + lo + ox, (size_t)(hi - lo) * sizeof(float));
                fill(out + hi, width - hi, pad);
            } else {
                /* Output column j holds crop column W-1-j: valid for j in [W - hi, W - lo). */
                const int jlo = width - hi, jhi = width - lo;
                const int base = width - 1 + ox; /* source column of output column 0 */
                fill(out, jlo, pad);
                for (int j = jlo; j < jhi; j++) out[j] = row[base - j];
                fill(out + jhi, width - jhi, pad);
            }
        }
    }
}
