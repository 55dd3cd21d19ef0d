/* pixels.c - the normalisation table. */
#include "pixels.h"

#include "../tensor/status.h"

void sw_pixel_lut_init(sw_pixel_lut *lut, int channels, const float *mean, const float *std) {
    SW_ASSERT(channels >= 1 && channels <= SW_PIXELS_MAX_CHANNELS);
    lut->channels = channels;
    for (int c = 0; c < channels; c++) {
        SW_ASSERT(std[c] > 0.0f);
        for (int v = 0; v < 256; v++) {
            /* Same operations, same order, same precision as ToTensor + Normalize. */
            float x = (float)v / 255.0f;
            lut->value[c][v] = (x - mean[c]) / std[c];
        }
    }
}

void sw_pixel_lut_apply(const sw_pixel_lut *lut, const uint8_t *src, float *dst, size_t count,
                        size_t plane) {
    const int channels = lut->channels;
    for (size_t i = 0; i < count; i++) {
        for (int c = 0; c < channels; c++) {
            const float *table = lut->value[c];
            const uint8_t *s = src + (i * (size_t)channels + (size_t)c) * plane;
            float *d = dst + (i * (size_t)channels + (size_t)c) * plane;
            for (size_t p = 0; p < plane; p++) d[p] = table[s[p]];
        }
    }
}
