/* mask_transform.c - mask forward/backward and broadcasting of compact masks.
 *
 * Activations are masked per sample: a compact mask is broadcast once (at attach and at
 * refresh) onto the per-sample shape, and each step multiplies sample after sample by that
 * one expanded copy. Parameter masks already have the parameter's shape and are read in place
 * from their owner. */
#include "mask_transform.h"

#include <stdlib.h>
#include <string.h>

typedef struct mask_state {
    const sw_tensor *mask; /* borrowed */
    sw_apply_method method;
    size_t n;        /* per-sample numel of the target */
    float *expanded; /* owned: the mask over the per-sample shape, when it is compact */
    sw_shape sample;
} mask_state;

sw_status sw_apply_method_from_name(const char *name, sw_apply_method *out) {
    if (strcmp(name, "mul") == 0)
        *out = SW_APPLY_MUL;
    else if (strcmp(name, "add") == 0)
        *out = SW_APPLY_ADD;
    else if (strcmp(name, "bypass") == 0)
        *out = SW_APPLY_BYPASS;
    else
        return SW_FAIL(SW_ERR_NOT_FOUND, "unknown apply_method \"%s\"", name);
    return SW_OK;
}

const char *sw_apply_method_name(sw_apply_method m) {
    switch (m) {
    case SW_APPLY_MUL:
        return "mul";
    case SW_APPLY_ADD:
        return "add";
    case SW_APPLY_BYPASS:
        return "bypass";
    }
    return "?";
}

/* The mask over the per-sample shape: the expanded copy, or the borrowed tensor itself. */
static const float *current(const mask_state *s) {
    return s->expanded ? s->expanded : s->mask->data;
}

static sw_status mask_forward(sw_transform *t, const sw_transform_call *call, const sw_tensor *x,
                              sw_tensor *y) {
    mask_state *s = t->state;
    const float *m = current(s);
    /* Parameters are one "sample"; activations repeat the per-sample mask over the batch. */
    size_t n = s->n, reps = x->numel / n;
    (void)call;
    for (size_t r = 0; r < reps; r++) {
        const float *xr = x->data + r * n;
        float *yr = y->data + r * n;
        switch (s->method) {
        case SW_APPLY_MUL:
            for (size_t i = 0; i < n; i++) yr[i] = xr[i] * m[i];
            break;
        case SW_APPLY_ADD:
            for (size_t i = 0; i < n; i++) yr[i] = xr[i] + (m[i] == 1.0f ? 0.0f : -1000.0f);
            break;
        case SW_APPLY_BYPASS:
            if (yr != xr) memcpy(yr, xr, n * sizeof(float));
            break;
        }
    }
    return SW_OK;
}

static sw_status mask_backward(sw_transform *t, const sw_transform_call *call, const sw_tensor *x,
                               sw_tensor *g) {
    mask_state *s = t->state;
    (void)call;
    (void)x;
    /* d(x*m)/dx = m; the additive and bypass forms pass the gradient through. */
    if (s->method != SW_APPLY_MUL) return SW_OK;
    const float *m = current(s);
    size_t n = s->n, reps = g->numel / n;
    for (size_t r = 0; r < reps; r++) {
        float *gr = g->data + r * n;
        for (size_t i = 0; i < n; i++) gr[i] *= m[i];
    }
    return SW_OK;
}

static const float *mask_values(const sw_transform *t) {
    const mask_state *s = t->state;
    /* A bypassed mask is recorded, not applied: it zeroes nothing. */
    return s->method == SW_APPLY_BYPASS ? NULL : current(s);
}

/* The borrowed mask is its owner's; only the expanded copy is ours. */
static void mask_free(sw_transform *t) {
    mask_state *s = t->state;
    if (!s) return;
    free(s->expanded);
    free(s);
}

const sw_transform_ops sw_mask_transform_ops = {
    .name = "mask",
    .forward = mask_forward,
    .backward = mask_backward,
    .mask = mask_values,
    .free = mask_free,
};

bool sw_mask_shape_fits(const sw_shape *shape, const sw_shape *sample, bool is_param,
                        bool *expand_needed) {
    *expand_needed = false;
    if (sw_shape_equal(shape, sample)) return true;
    if (is_param || shape->ndim != sample->ndim + 1 || shape->dims[0] != 1) return false;
    for (int d = 0; d < sample->ndim; d++) {
        int m = shape->dims[d + 1];
        if (m != 1 && m != sample->dims[d]) return false;
    }
    *expand_needed = true;
    return true;
}

void sw_mask_broadcast(const sw_tensor *mask, const sw_shape *sample, float *out) {
    /* Pad both to 4 dims (leading 1s) and walk the sample; a mask dim of 1 repeats. */
    int sd[SW_MAX_DIMS], md[SW_MAX_DIMS];
    int pad = SW_MAX_DIMS - sample->ndim;
    for (int d = 0; d < SW_MAX_DIMS; d++) {
        sd[d] = d < pad ? 1 : sample->dims[d - pad];
        md[d] = d < pad ? 1 : mask->shape.dims[d - pad + 1];
    }
    size_t flat = 0;
    for (int a = 0; a < sd[0]; a++)
        for (int b = 0; b < sd[1]; b++)
            for (int c = 0; c < sd[2]; c++)
                for (int e = 0; e < sd[3]; e++, flat++) {
                    size_t mi = (((size_t)(md[0] == 1 ? 0 : a) * (size_t)md[1] +
                                  (size_t)(md[1] == 1 ? 0 : b)) *
                                     (size_t)md[2] +
                                 (size_t)(md[2] == 1 ? 0 : c)) *
                                    (size_t)md[3] +
                                (size_t)(md[3] == 1 ? 0 : e);
                    out[flat] = mask->data[mi];
                }
}

sw_status sw_mask_refresh(sw_transform *t) {
    mask_state *s = t->state;
    if (s->expanded) sw_mask_broadcast(s->mask, &s->sample, s->expanded);
    return SW_OK;
}

sw_status sw_mask_attach(sw_wrapper_set *ws, int node, const char *target, const sw_tensor *mask,
                         sw_apply_method method, const void *owner, sw_transform **out) {
    if (node < 0 || node >= ws->n_wrappers)
        return SW_FAIL(SW_ERR_ARG, "node index %d is not in the model", node);
    sw_target *tg = sw_wrapper_target(&ws->wrappers[node], target);
    if (!tg)
        return SW_FAIL(SW_ERR_NOT_FOUND, "\"%s\" has no target \"%s\"", ws->model->nodes[node].name,
                       target);
    bool expand = false;
    if (!sw_mask_shape_fits(&mask->shape, &tg->shape, tg->kind == SW_TARGET_PARAM, &expand)) {
        char a[64], b[64];
        return SW_FAIL(SW_ERR_SHAPE, "mask of shape %s does not fit %s.%s of shape %s",
                       sw_shape_format(&mask->shape, a, sizeof a), ws->model->nodes[node].name,
                       target, sw_shape_format(&tg->shape, b, sizeof b));
    }
    mask_state *s = calloc(1, sizeof *s);
    if (!s) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate a mask transform");
    *s = (mask_state){
        .mask = mask, .method = method, .n = sw_shape_numel(&tg->shape), .sample = tg->shape};
    if (expand) {
        s->expanded = malloc(s->n * sizeof(float));
        if (!s->expanded) {
            free(s);
            return SW_FAIL(SW_ERR_NOMEM, "cannot allocate a mask transform");
        }
        sw_mask_broadcast(mask, &tg->shape, s->expanded);
    }
    return sw_wrapper_set_attach(ws, node, target, &sw_mask_transform_ops, SW_STAGE_PRUNE, owner, s,
                                 out);
}
