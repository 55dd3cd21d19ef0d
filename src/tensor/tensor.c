/* tensor.c - shapes and float32 tensors. */
#include "tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sw_shape sw_shape_make(int ndim, const int *dims) {
    SW_ASSERT(ndim >= 0 && ndim <= SW_MAX_DIMS);
    sw_shape s = {.ndim = ndim};
    for (int i = 0; i < ndim; i++) s.dims[i] = dims[i];
    return s;
}

sw_shape sw_shape_1d(int d0) { return (sw_shape){.ndim = 1, .dims = {d0}}; }
sw_shape sw_shape_2d(int d0, int d1) { return (sw_shape){.ndim = 2, .dims = {d0, d1}}; }
sw_shape sw_shape_3d(int d0, int d1, int d2) {
    return (sw_shape){.ndim = 3, .dims = {d0, d1, d2}};
}
sw_shape sw_shape_4d(int d0, int d1, int d2, int d3) {
    return (sw_shape){.ndim = 4, .dims = {d0, d1, d2, d3}};
}

size_t sw_shape_numel(const sw_shape *shape) {
    size_t n = 1;
    for (int i = 0; i < shape->ndim; i++) n *= (size_t)shape->dims[i];
    return n;
}

bool sw_shape_equal(const sw_shape *a, const sw_shape *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->dims[i] != b->dims[i]) return false;
    return true;
}

char *sw_shape_format(const sw_shape *shape, char *buf, size_t size) {
    size_t used = 0;
    if (size == 0) return buf;
    buf[0] = '\0';
    used += (size_t)snprintf(buf + used, size - used, "[");
    for (int i = 0; i < shape->ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? ", %d" : "%d", shape->dims[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}

sw_status sw_shape_batched(const sw_shape *sample, int n, sw_shape *out) {
    if (sample->ndim >= SW_MAX_DIMS)
        return SW_FAIL(SW_ERR_SHAPE, "a sample of %d dimensions cannot take a batch dimension",
                       sample->ndim);
    out->ndim = sample->ndim + 1;
    out->dims[0] = n;
    for (int i = 0; i < sample->ndim; i++) out->dims[i + 1] = sample->dims[i];
    return SW_OK;
}

sw_status sw_tensor_init(sw_tensor *t, const sw_shape *shape) {
    size_t numel = sw_shape_numel(shape);
    *t = (sw_tensor){.shape = *shape, .numel = numel, .owns_data = true};
    /* calloc(0) may return NULL legitimately; keep one float so data is never NULL. */
    t->data = calloc(numel ? numel : 1, sizeof(float));
    if (!t->data) {
        t->owns_data = false;
        return SW_FAIL(SW_ERR_NOMEM, "cannot allocate a tensor of %zu floats", numel);
    }
    return SW_OK;
}

void sw_tensor_deinit(sw_tensor *t) {
    if (!t) return;
    if (t->owns_data) free(t->data);
    *t = (sw_tensor){0};
}

sw_status sw_tensor_new(const sw_shape *shape, sw_tensor **out) {
    sw_tensor *t = malloc(sizeof *t);
    if (!t) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate a tensor header");
    sw_status st = sw_tensor_init(t, shape);
    if (st != SW_OK) {
        free(t);
        return st;
    }
    *out = t;
    return SW_OK;
}

void sw_tensor_free(sw_tensor *t) {
    if (!t) return;
    sw_tensor_deinit(t);
    free(t);
}

sw_status sw_tensor_clone(const sw_tensor *src, sw_tensor **out) {
    SW_TRY(sw_tensor_new(&src->shape, out));
    memcpy((*out)->data, src->data, src->numel * sizeof(float));
    return SW_OK;
}

sw_tensor sw_tensor_view(float *data, const sw_shape *shape) {
    return (sw_tensor){
        .data = data, .shape = *shape, .numel = sw_shape_numel(shape), .owns_data = false};
}

sw_tensor sw_tensor_reshaped(const sw_tensor *t, const sw_shape *shape) {
    SW_ASSERT(sw_shape_numel(shape) == t->numel);
    return sw_tensor_view(t->data, shape);
}

void sw_tensor_fill(sw_tensor *t, float value) {
    for (size_t i = 0; i < t->numel; i++) t->data[i] = value;
}

void sw_tensor_zero(sw_tensor *t) { memset(t->data, 0, t->numel * sizeof(float)); }

sw_status sw_tensor_copy(sw_tensor *dst, const sw_tensor *src) {
    if (dst->numel != src->numel) {
        char a[64], b[64];
        return SW_FAIL(SW_ERR_SHAPE, "cannot copy a tensor of shape %s into one of shape %s",
                       sw_shape_format(&src->shape, a, sizeof a),
                       sw_shape_format(&dst->shape, b, sizeof b));
    }
    memcpy(dst->data, src->data, src->numel * sizeof(float));
    return SW_OK;
}

bool sw_tensor_all_finite(const sw_tensor *t) {
    for (size_t i = 0; i < t->numel; i++)
        if (!isfinite(t->data[i])) return false;
    return true;
}

float sw_tensor_max_abs_diff(const sw_tensor *a, const sw_tensor *b) {
    SW_ASSERT(a->numel == b->numel);
    float worst = 0.0f;
    for (size_t i = 0; i < a->numel; i++) {
        float d = fabsf(a->data[i] - b->data[i]);
        if (d > worst || isnan(d)) worst = d;
    }
    return worst;
}
