/* sparsity.c - threshold, dependency, global, ratio and align rules (reference §3.1).
 *
 * Everything here works on block masks: one 0/1 float per block of a target's grid. Targets
 * pass through the rules the way NNI filters its target spaces: dependency members are taken
 * out of the later rules, then global members, then ratio targets; align sees what remains.
 * The threshold rule takes nothing out, so a thresholded target can still be aligned. `done`
 * records what was taken out. */
#include "sparsity.h"

#include <stdlib.h>
#include <string.h>

/* ---- ratio: k smallest per row ------------------------------------------------------------- */

typedef struct ranked {
    double v;
    size_t i;
} ranked;

/* Ascending by value, then by position: a total order, so results do not depend on qsort. */
static int cmp_ranked(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->v < y->v) return -1;
    if (x->v > y->v) return 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

void sw_sparsity_ratio_mask(const double *metric, size_t numel, int rows, double ratio,
                            float *mask) {
    for (size_t i = 0; i < numel; i++) mask[i] = 1.0f;
    if (ratio <= 0.0) return;
    if (ratio >= 1.0) {
        memset(mask, 0, numel * sizeof *mask);
        return;
    }
    size_t len = numel / (size_t)rows;
    /* int(len * ratio) in Python: floor of the double product. */
    size_t k = (size_t)((double)len * ratio);
    if (k == 0) return;
    ranked *r = malloc(len * sizeof *r);
    SW_ASSERT(r != NULL || len == 0);
    for (int row = 0; row < rows; row++) {
        const double *m = metric + (size_t)row * len;
        for (size_t i = 0; i < len; i++) r[i] = (ranked){m[i], i};
        qsort(r, len, sizeof *r, cmp_ranked);
        for (size_t i = 0; i < k; i++) mask[(size_t)row * len + r[i].i] = 0.0f;
    }
    free(r);
}

/* metric >= thr survives: ties at the threshold stay (NNI). */
static void threshold_mask(const double *metric, size_t n, double thr, float *mask) {
    for (size_t i = 0; i < n; i++) mask[i] = metric[i] >= thr ? 1.0f : 0.0f;
}

/* Fraction of masked blocks (NNI compares block fractions with min/max, not elements). */
static double mask_sparsity(const float *mask, size_t n) {
    double kept = 0;
    for (size_t i = 0; i < n; i++) kept += mask[i];
    return 1.0 - kept / (double)n;
}

/* ---- global: NNI's bounded heap ---------------------------------------------------------- */

/* NNI pushes (-metric, weight) on a Python min-heap: the top is the largest metric, and among
 * equal metrics the smallest weight. "prio(a) > prio(b)" is that order. */
typedef struct heap_item {
    double m;
    size_t w;
} heap_item;

static bool prio_gt(heap_item a, heap_item b) {
    return a.m > b.m || (a.m == b.m && a.w < b.w);
}

static void sift_up(heap_item *h, size_t i) {
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!prio_gt(h[i], h[p])) break;
        heap_item t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

static void sift_down(heap_item *h, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, best = i;
        if (l < n && prio_gt(h[l], h[best])) best = l;
        if (r < n && prio_gt(h[r], h[best])) best = r;
        if (best == i) return;
        heap_item t = h[i];
        h[i] = h[best];
        h[best] = t;
        i = best;
    }
}

double sw_sparsity_global_threshold(const double *const *metrics, const size_t *numels,
                                    const size_t *weights, int n_members, size_t k) {
    size_t total = 0;
    for (int g = 0; g < n_members; g++) total += numels[g];
    heap_item *h = malloc((total ? total : 1) * sizeof *h);
    SW_ASSERT(h != NULL);
    size_t n = 0, elems = 0;
    for (int g = 0; g < n_members; g++) {
        for (size_t i = 0; i < numels[g]; i++) {
            heap_item it = {metrics[g][i], weights[g]};
            if (elems <= k) {
                /* Still short of k masked elements: take every block. */
                h[n++] = it;
                sift_up(h, n - 1);
                elems += it.w;
            } else if (prio_gt(h[0], it)) {
                /* heappushpop: the new block displaces the largest one. */
                size_t old = h[0].w;
                h[0] = it;
                sift_down(h, n, 0);
                elems += it.w - old;
            }
            /* else: heappushpop returns the new block itself; nothing changes. */
        }
    }
    double thr = n ? h[0].m : 0.0;
    free(h);
    return thr;
}

/* ---- helpers over target lists ------------------------------------------------------------ */

static size_t numel_of(const sw_shape *s) {
    return sw_shape_numel(s);
}

/* AND-combines a freshly computed block mask into the target's. */
static void combine(sw_sparsity_target *t, const float *m) {
    size_t n = numel_of(&t->grid);
    if (!t->generated) {
        memcpy(t->block_mask, m, n * sizeof *m);
        t->generated = true;
        return;
    }
    for (size_t i = 0; i < n; i++) t->block_mask[i] = (t->block_mask[i] != 0 && m[i] != 0);
}

/* lcm of positive ints (internal_metric_block of dependency members). */
static long lcm(long a, long b) {
    long x = a, y = b;
    while (y) {
        long t = x % y;
        x = y;
        y = t;
    }
    return a / x * b;
}

static sw_status threshold_rule(sw_sparsity_target *ts, int n, float *tmp) {
    for (int i = 0; i < n; i++) {
        sw_sparsity_target *t = &ts[i];
        const sw_prune_setting *s = t->setting;
        if (!t->metric || !s->has_threshold) continue;
        size_t num = numel_of(&t->grid);
        threshold_mask(t->metric, num, s->sparse_threshold, tmp);
        double sp = mask_sparsity(tmp, num);
        double lo = s->has_min ? s->min_sparse_ratio : 0.0;
        double hi = s->has_max ? s->max_sparse_ratio : 1.0;
        if (sp < lo) sw_sparsity_ratio_mask(t->metric, num, 1, lo, tmp);
        if (sp > hi) sw_sparsity_ratio_mask(t->metric, num, 1, hi, tmp);
        combine(t, tmp);
    }
    return SW_OK;
}

/* Groups are found by scanning: the first active member of an unseen group opens it, and the
 * scan from there collects the rest. O(n^2) over targets, which number in the tens. */
static sw_status dependency_rule(sw_sparsity_target *ts, int n, bool *done, float *tmp) {
    for (int i = 0; i < n; i++) {
        if (!ts[i].metric || !ts[i].setting->has_dependency || done[i]) continue;
        const char *group = ts[i].setting->dependency_group;
        const char *label = ts[i].setting->dependency_label;
        size_t num = numel_of(&ts[i].grid);
        double *mean = calloc(num, sizeof *mean);
        if (!mean) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
        long blocks = 1;
        int count = 0;
        bool has_ratio = false;
        double ratio = 0;
        for (int j = i; j < n; j++) {
            const sw_sparsity_target *m = &ts[j];
            if (!m->metric || !m->setting->has_dependency ||
                strcmp(m->setting->dependency_group, group) != 0)
                continue;
            if (numel_of(&m->grid) != num) {
                free(mean);
                return SW_FAIL(SW_ERR_CONFIG,
                               "dependency_group_id \"%s\": %s.%s has %zu blocks and %s.%s has "
                               "%zu; members of a dependency group need the same number",
                               label, ts[i].module, ts[i].name, num, m->module, m->name,
                               numel_of(&m->grid));
            }
            if (m->setting->has_ratio) {
                if (has_ratio && m->setting->sparse_ratio != ratio) {
                    free(mean);
                    return SW_FAIL(SW_ERR_CONFIG,
                                   "dependency_group_id \"%s\": members ask for different "
                                   "sparse_ratio (%g and %g at %s.%s); give them one",
                                   label, ratio, m->setting->sparse_ratio, m->module, m->name);
                }
                has_ratio = true;
                ratio = m->setting->sparse_ratio;
            }
            if (m->setting->internal_metric_block > 0)
                blocks = lcm(blocks, m->setting->internal_metric_block);
            for (size_t e = 0; e < num; e++) mean[e] += m->metric[e];
            count++;
        }
        if (!has_ratio) {
            free(mean);
            return SW_FAIL(SW_ERR_CONFIG,
                           "dependency_group_id \"%s\": no member has a "
                           "sparse_ratio; give the group one",
                           label);
        }
        if (num % (size_t)blocks != 0) {
            free(mean);
            return SW_FAIL(SW_ERR_CONFIG,
                           "dependency_group_id \"%s\": %zu blocks cannot be split into "
                           "internal_metric_block %ld equal parts",
                           label, num, blocks);
        }
        for (size_t e = 0; e < num; e++) mean[e] /= count;
        sw_sparsity_ratio_mask(mean, num, (int)blocks, ratio, tmp);
        free(mean);
        for (int j = i; j < n; j++) {
            sw_sparsity_target *m = &ts[j];
            if (!m->metric || !m->setting->has_dependency ||
                strcmp(m->setting->dependency_group, group) != 0)
                continue;
            combine(m, tmp);
            done[j] = true;
        }
    }
    return SW_OK;
}

/* Regenerates a global member at its own bound when it leaves [min, max]. */
static void clamp_member(sw_sparsity_target *t, float *m) {
    const sw_prune_setting *s = t->setting;
    size_t num = numel_of(&t->grid);
    double sp = mask_sparsity(m, num);
    if (s->has_min && sp < s->min_sparse_ratio)
        sw_sparsity_ratio_mask(t->metric, num, 1, s->min_sparse_ratio, m);
    else if (s->has_max && sp > s->max_sparse_ratio)
        sw_sparsity_ratio_mask(t->metric, num, 1, s->max_sparse_ratio, m);
}

/* Members are visited in target order, which is NNI's order (config entry, then module): the
 * heap's result depends on it when block weights differ. */
static sw_status global_rule(sw_sparsity_target *ts, int n, bool *done, float *tmp) {
    bool *seen = calloc((size_t)n, sizeof *seen);
    const double **metrics = calloc((size_t)n, sizeof *metrics);
    size_t *numels = calloc((size_t)n, sizeof *numels);
    size_t *weights = calloc((size_t)n, sizeof *weights);
    int *members = calloc((size_t)n, sizeof *members);
    sw_status st = SW_OK;
    if (!seen || !metrics || !numels || !weights || !members) {
        st = SW_FAIL(SW_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < n && st == SW_OK; i++) {
        if (done[i] || !ts[i].metric || !ts[i].setting->has_global || seen[i]) continue;
        const char *group = ts[i].setting->global_group;
        const char *label = ts[i].setting->global_label;
        int n_m = 0;
        bool has_ratio = false;
        double ratio = 0;
        size_t total = 0, lo = 0, hi = 0;
        for (int j = i; j < n; j++) {
            const sw_sparsity_target *m = &ts[j];
            if (done[j] || !m->metric || !m->setting->has_global ||
                strcmp(m->setting->global_group, group) != 0)
                continue;
            const sw_prune_setting *s = m->setting;
            if (s->has_ratio) {
                if (has_ratio && s->sparse_ratio != ratio) {
                    st = SW_FAIL(SW_ERR_CONFIG,
                                 "global_group_id \"%s\": members ask for different sparse_ratio "
                                 "(%g and %g at %s.%s); a global group shares one",
                                 label, ratio, s->sparse_ratio, m->module, m->name);
                    break;
                }
                has_ratio = true;
                ratio = s->sparse_ratio;
            }
            size_t elems = numel_of(&m->shape), blocks = numel_of(&m->grid);
            total += elems;
            lo += s->has_min ? (size_t)((double)elems * s->min_sparse_ratio) : 0;
            hi += s->has_max ? (size_t)((double)elems * s->max_sparse_ratio) : elems;
            metrics[n_m] = m->metric;
            numels[n_m] = blocks;
            weights[n_m] = elems / blocks;
            members[n_m++] = j;
            seen[j] = true;
        }
        if (st != SW_OK) break;
        if (!has_ratio) {
            st = SW_FAIL(SW_ERR_CONFIG, "global_group_id \"%s\": no member has a sparse_ratio",
                         label);
            break;
        }
        size_t k = (size_t)((double)total * ratio);
        double thr =
            k > lo && k < hi ? sw_sparsity_global_threshold(metrics, numels, weights, n_m, k) : 0.0;
        for (int q = 0; q < n_m; q++) {
            sw_sparsity_target *m = &ts[members[q]];
            const sw_prune_setting *s = m->setting;
            size_t num = numel_of(&m->grid);
            if (k <= lo)
                sw_sparsity_ratio_mask(m->metric, num, 1, s->has_min ? s->min_sparse_ratio : 0.0,
                                       tmp);
            else if (k >= hi)
                sw_sparsity_ratio_mask(m->metric, num, 1, s->has_max ? s->max_sparse_ratio : 1.0,
                                       tmp);
            else {
                threshold_mask(m->metric, num, thr, tmp);
                clamp_member(m, tmp);
            }
            combine(m, tmp);
            done[members[q]] = true;
        }
    }
out:
    free(seen);
    free(metrics);
    free(numels);
    free(weights);
    free(members);
    return st;
}

/* Everything left with a sparse_ratio, each target on its own. */
static void ratio_rule(sw_sparsity_target *ts, int n, bool *done, float *tmp) {
    for (int i = 0; i < n; i++) {
        sw_sparsity_target *t = &ts[i];
        const sw_prune_setting *s = t->setting;
        if (done[i] || !t->metric || !s->has_ratio) continue;
        double lo = s->has_min ? s->min_sparse_ratio : 0.0;
        double hi = s->has_max ? s->max_sparse_ratio : 1.0;
        double r = s->sparse_ratio < lo ? lo : s->sparse_ratio;
        r = r > hi ? hi : r;
        sw_sparsity_ratio_mask(t->metric, numel_of(&t->grid), 1, r, tmp);
        combine(t, tmp);
        done[i] = true;
    }
}

/* The full-shape (per value) mask of a generated target, into out. */
static sw_status full_mask(const sw_sparsity_target *t, float *out) {
    if (!t->has_scaling) {
        memcpy(out, t->block_mask, numel_of(&t->shape) * sizeof *out);
        return SW_OK;
    }
    return sw_scaling_expand(&t->scaling, t->block_mask, &t->shape, out);
}

/* Reduces a full mask over every dim not in `dims` with "any": the result keeps the listed
 * dims in tensor order, row-major. Returns its numel. */
static size_t reduce_to_dims(const float *m, const sw_shape *shape, const sw_align *a, float *out) {
    int nd = shape->ndim;
    bool keep[SW_MAX_DIMS] = {false};
    for (int k = 0; k < a->n_dims; k++) {
        int d = a->dims[k] < 0 ? a->dims[k] + nd : a->dims[k];
        if (d >= 0 && d < nd) keep[d] = true;
    }
    size_t out_n = 1;
    for (int d = 0; d < nd; d++)
        if (keep[d]) out_n *= (size_t)shape->dims[d];
    memset(out, 0, out_n * sizeof *out);
    int idx[SW_MAX_DIMS] = {0};
    size_t total = sw_shape_numel(shape);
    for (size_t f = 0; f < total; f++) {
        size_t o = 0;
        for (int d = 0; d < nd; d++)
            if (keep[d]) o = o * (size_t)shape->dims[d] + (size_t)idx[d];
        if (m[f] != 0.0f) out[o] = 1.0f;
        for (int d = nd - 1; d >= 0; d--) {
            if (++idx[d] < shape->dims[d]) break;
            idx[d] = 0;
        }
    }
    return out_n;
}

/* NNI reduces the source's expanded mask over the non-aligned dims and, for a target with a
 * scaler, expands and shrinks it again over the target's grid. For the shapes this can meet
 * (a bias [O] after a weight [O, ...]; a per-channel activation [1, C, 1, 1] after a weight),
 * that round trip is the identity, so the reduced vector is taken as the block mask directly
 * and its length must equal the target's number of blocks. */
static sw_status align_rule(sw_sparsity_target *ts, int n, bool *done) {
    for (int i = 0; i < n; i++) {
        sw_sparsity_target *t = &ts[i];
        const sw_align *a = &t->setting->align;
        if (done[i] || !a->set) continue;
        const char *module = a->module[0] ? a->module : t->module;
        const sw_sparsity_target *src = NULL;
        for (int j = 0; j < n && !src; j++)
            if (j != i && strcmp(ts[j].module, module) == 0 && strcmp(ts[j].name, a->target) == 0)
                src = &ts[j];
        /* NNI needs the source generated in the same call; without it nothing is written. */
        if (!src || !src->generated) continue;
        size_t src_n = numel_of(&src->shape);
        float *full = malloc(src_n * sizeof *full), *vec = malloc(src_n * sizeof *vec);
        if (!full || !vec) {
            free(full);
            free(vec);
            return SW_FAIL(SW_ERR_NOMEM, "out of memory");
        }
        sw_status st = full_mask(src, full);
        size_t got = st == SW_OK ? reduce_to_dims(full, &src->shape, a, vec) : 0;
        size_t want = numel_of(&t->grid);
        if (st == SW_OK && got != want)
            st = SW_FAIL(SW_ERR_CONFIG,
                         "%s.%s: align to %s.%s over dims gives %zu values, the target has %zu "
                         "blocks; choose dims (and granularity) that match",
                         t->module, t->name, module, a->target, got, want);
        if (st == SW_OK) combine(t, vec);
        free(full);
        free(vec);
        if (st != SW_OK) return st;
        done[i] = true;
    }
    return SW_OK;
}

sw_status sw_sparsity_generate(sw_sparsity_target *ts, int n) {
    size_t max_grid = 1;
    for (int i = 0; i < n; i++) {
        ts[i].generated = false;
        if (numel_of(&ts[i].grid) > max_grid) max_grid = numel_of(&ts[i].grid);
    }
    float *tmp = malloc(max_grid * sizeof *tmp);
    bool *done = calloc((size_t)n + 1, sizeof *done);
    sw_status st = SW_OK;
    if (!tmp || !done) {
        st = SW_FAIL(SW_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* The threshold rule does not remove targets from the later rules (NNI's filter). */
    st = threshold_rule(ts, n, tmp);
    if (st == SW_OK) st = dependency_rule(ts, n, done, tmp);
    if (st == SW_OK) st = global_rule(ts, n, done, tmp);
    if (st == SW_OK) ratio_rule(ts, n, done, tmp);
    if (st == SW_OK) st = align_rule(ts, n, done);
out:
    free(tmp);
    free(done);
    return st;
}
