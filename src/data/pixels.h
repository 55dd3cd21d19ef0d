/* pixels.h - uint8 pixels to normalised float32, the way torchvision does it.
 *
 * torchvision's ToTensor divides by 255 in float32 and Normalize then computes (x - mean) / std
 * in float32 per channel. A byte has only 256 values, so each channel's whole mapping fits in a
 * table of 256 floats computed with that same float32 arithmetic: conversion becomes one load per
 * pixel and the results are bit-identical to PyTorch's.
 */
#ifndef SW_PIXELS_H
#define SW_PIXELS_H

#include <stddef.h>
#include <stdint.h>

#define SW_PIXELS_MAX_CHANNELS 3

typedef struct sw_pixel_lut {
    int channels;
    float value[SW_PIXELS_MAX_CHANNELS][256]; /* value[c][v] = (v / 255 - mean[c]) / std[c] */
} sw_pixel_lut;

/* Builds the table for `channels` (1..3) channels; std[c] must be > 0. */
void sw_pixel_lut_init(sw_pixel_lut *lut, int channels, const float *mean, const float *std);

/* Converts `count` images laid out [count, C, plane] (plane = H*W) from bytes to floats.
 * src and dst must not overlap. */
void sw_pixel_lut_apply(const sw_pixel_lut *lut, const uint8_t *src, float *dst, size_t count,
                        size_t plane);

#endif
