/* augment.h - the training augmentations of torchvision's CIFAR recipes, on normalised images.
 *
 * RandomCrop(size, padding=p) pads the raw image with p zero pixels per side and cuts a window of
 * the original size at a uniform offset; RandomHorizontalFlip then mirrors it with probability
 * 1/2. Our images are already normalised, so the padding value is what a zero pixel becomes,
 * (0 - mean[c]) / std[c], which makes the result identical to torchvision's order of operations.
 * A draw (the random part) is separate from the application (the copy) so that all draws for a
 * batch come from one generator in a fixed order, whatever thread copies the pixels.
 */
#ifndef SW_AUGMENT_H
#define SW_AUGMENT_H

#include <stdbool.h>

#include "dataset.h"

/* The random choices for one example. */
typedef struct sw_augment_draw {
    int dy, dx; /* top-left corner of the window in the padded image, each in [0, 2 * padding] */
    bool flip;  /* mirror left-right after the crop */
} sw_augment_draw;

/* Draws one example's choices: crop offsets first (when crop_padding > 0), then the flip (when
 * horizontal_flip). Draws nothing for a disabled augmentation; the identity draw is
 * {padding, padding, false}. */
sw_augment_draw sw_augment_sample(const sw_augment *aug, sw_rng *rng);

/* dst = flip(crop(pad(src))) for one example [C, H, W]. pad_value[c] is the normalised value of a
 * zero pixel. src and dst must not overlap. */
void sw_augment_apply(float *dst, const float *src, int channels, int height, int width,
                      const float *pad_value, int padding, sw_augment_draw draw);

#endif
