/* zoo.h - the built-in model architectures.
 *
 *  fmnist_mlp    Flatten; Linear 784->256, ReLU; Linear 256->128, ReLU; Linear 128->10
 *  fmnist_cnn    conv1 Conv 1->32 3x3 p1, bn1, relu1, pool1 MaxPool 2;
 *                conv2 Conv 32->64 3x3 p1, bn2, relu2, pool2 MaxPool 2;
 *                flatten; fc1 Linear 3136->256, relu3; fc2 Linear 256->10
 *  fmnist_resnet stem Conv 1->32 3x3 p1, BN, ReLU; layer1..3 of two BasicBlocks (32, 64, 128
 *                channels; the first block of layer2 and layer3 downsamples with stride 2 and a
 *                1x1 conv + BN shortcut); global average pool; fc Linear 128->10
 *
 * Node names follow PyTorch's module names (conv1, bn1, layer1.0.conv1, layer2.0.downsample.0),
 * so configs written for the PyTorch twin of a model select the same modules here.
 */
#ifndef SW_ZOO_H
#define SW_ZOO_H

#include "model.h"

/* Builds a finalised zoo model with PyTorch-default initialisation from `seed`. Unknown names
 * are an error listing the known ones. Caller owns *out. */
sw_status sw_zoo_build(const char *name, uint64_t seed, sw_model **out);
/* The zoo's names, NULL-terminated. */
const char *const *sw_zoo_names(void);
/* One-line description of a zoo model, or NULL. */
const char *sw_zoo_describe(const char *name);

#endif
