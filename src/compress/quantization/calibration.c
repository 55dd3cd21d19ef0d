/* calibration.c - calibration config as JSON, and forward-only calibration passes. */
#include "calibration.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../io/atomic_file.h"
#include "quantizer.h"

/* A list of n floats; NULL (JSON null) when values is NULL. */
/* JSON numbers are doubles: a float converts exactly and cJSON prints enough digits to read
 * the same double back, so floats round-trip bit for bit. */
static cJSON *float_list(const float *values, size_t n) {
    if (!values) return cJSON_CreateNull();
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) {
        cJSON *v = cJSON_CreateNumber((double)values[i]);
        if (!v) {
            cJSON_Delete(a);
            return NULL;
        }
        cJSON_AddItemToArray(a, v);
    }
    return a;
}

/* Adds item under key; false when the item could not be built (out of memory). */
static bool add(cJSON *obj, const char *key, cJSON *item) {
    if (!item) return false;
    cJSON_AddItemToObject(obj, key, item);
    return true;
}

/* One target's entry (see calibration.h). */
static cJSON *target_json(const sw_quant_target *t) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    size_t n = t->n_blocks;
    float *lo = NULL, *hi = NULL;
    if (!t->has_tracked && t->has_scale) {
        /* NNI derives a range from the scale when nothing was tracked. */
        lo = malloc(n * sizeof *lo);
        hi = malloc(n * sizeof *hi);
        if (!lo || !hi) goto fail;
        for (size_t b = 0; b < n; b++) {
            lo[b] = t->scale[b] * ((float)t->qmin - t->zero_point[b]);
            hi[b] = t->scale[b] * ((float)t->qmax - t->zero_point[b]);
        }
    }
    cJSON *shape = cJSON_CreateArray();
    for (int d = 0; shape && d < t->grid.ndim; d++)
        cJSON_AddItemToArray(shape, cJSON_CreateNumber(t->grid.dims[d]));
    const sw_quant_dtype *dt = &t->setting.dtype;
    bool ok = add(o, "quant_dtype", cJSON_CreateString(dt->name)) &&
              add(o, "quant_scheme",
                  t->setting.scheme == SW_QUANT_SCHEME_NONE
                      ? cJSON_CreateNull()
                      : cJSON_CreateString(sw_quant_scheme_name(t->setting.scheme))) &&
              add(o, "quant_bits", cJSON_CreateNumber(dt->bits)) && add(o, "shape", shape) &&
              add(o, "scale", float_list(t->has_scale ? t->scale : NULL, n)) &&
              add(o, "zero_point", float_list(t->has_scale ? t->zero_point : NULL, n)) &&
              add(o, "tracked_min", float_list(t->has_tracked ? t->tracked_min : lo, n)) &&
              add(o, "tracked_max", float_list(t->has_tracked ? t->tracked_max : hi, n));
    free(lo);
    free(hi);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
fail:
    free(lo);
    free(hi);
    cJSON_Delete(o);
    return NULL;
}

/* Module objects are created on first use, in target order: a module's targets stay together
 * because targets are resolved module by module. */
sw_status sw_quant_calibration_get(const sw_compressor *c, cJSON **out) {
    const sw_quantizer *q = sw_quantizer_of_const(c);
    if (!q)
        return SW_FAIL(SW_ERR_ARG, "%s is not a quantizer: it has no calibration config",
                       c ? c->ops->name : "(null)");
    cJSON *root = cJSON_CreateObject();
    if (!root) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
    for (int i = 0; i < q->n_targets; i++) {
        const sw_quant_target *t = &q->targets[i];
        cJSON *mod = cJSON_GetObjectItemCaseSensitive(root, t->module);
        if (!mod) {
            mod = cJSON_CreateObject();
            if (!mod) break;
            cJSON_AddItemToObject(root, t->module, mod);
        }
        cJSON *tj = target_json(t);
        if (!tj) {
            cJSON_Delete(root);
            return SW_FAIL(SW_ERR_NOMEM, "out of memory for the calibration of %s.%s", t->module,
                           t->name);
        }
        cJSON_AddItemToObject(mod, t->name, tj);
    }
    *out = root;
    return SW_OK;
}

/* Reads a list of n numbers (or null: *present = false) into dst. */
static sw_status read_list(const cJSON *v, const char *what, const sw_quant_target *t, float *dst,
                           size_t n, bool *present) {
    *present = false;
    if (!v || cJSON_IsNull(v)) return SW_OK;
    if (!cJSON_IsArray(v) || (size_t)cJSON_GetArraySize(v) != n)
        return SW_FAIL(SW_ERR_CONFIG, "calibration %s.%s.%s: expected a list of %zu numbers",
                       t->module, t->name, what, n);
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        if (!cJSON_IsNumber(it))
            return SW_FAIL(SW_ERR_CONFIG, "calibration %s.%s.%s[%zu]: expected a number", t->module,
                           t->name, what, i);
        dst[i++] = (float)it->valuedouble;
    }
    *present = true;
    return SW_OK;
}

/* Checks dtype, bits, scheme and shape of one entry against target t, then loads it. */
static sw_status load_target(sw_quant_target *t, const cJSON *e) {
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "quant_dtype");
    const cJSON *bits = cJSON_GetObjectItemCaseSensitive(e, "quant_bits");
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(e, "quant_scheme");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const char *want_scheme =
        t->setting.scheme == SW_QUANT_SCHEME_NONE ? NULL : sw_quant_scheme_name(t->setting.scheme);
    if (!cJSON_IsString(dt) || strcmp(dt->valuestring, t->setting.dtype.name) != 0)
        return SW_FAIL(SW_ERR_CONFIG,
                       "calibration %s.%s: quant_dtype %s does not match the quantizer's %s",
                       t->module, t->name, cJSON_IsString(dt) ? dt->valuestring : "(missing)",
                       t->setting.dtype.name);
    if (!cJSON_IsNumber(bits) || bits->valueint != t->setting.dtype.bits)
        return SW_FAIL(SW_ERR_CONFIG,
                       "calibration %s.%s: quant_bits does not match the "
                       "quantizer's %d",
                       t->module, t->name, t->setting.dtype.bits);
    bool scheme_ok = want_scheme ? (cJSON_IsString(sc) && strcmp(sc->valuestring, want_scheme) == 0)
                                 : (!sc || cJSON_IsNull(sc));
    if (!scheme_ok)
        return SW_FAIL(SW_ERR_CONFIG,
                       "calibration %s.%s: quant_scheme %s does not match the quantizer's %s",
                       t->module, t->name, cJSON_IsString(sc) ? sc->valuestring : "null",
                       want_scheme ? want_scheme : "null");
    bool shape_ok = cJSON_IsArray(shape) && cJSON_GetArraySize(shape) == t->grid.ndim;
    for (int d = 0; shape_ok && d < t->grid.ndim; d++) {
        const cJSON *v = cJSON_GetArrayItem(shape, d);
        shape_ok = cJSON_IsNumber(v) && v->valueint == t->grid.dims[d];
    }
    if (!shape_ok) {
        char want[64];
        return SW_FAIL(SW_ERR_CONFIG,
                       "calibration %s.%s: shape does not match the target's block shape %s "
                       "(another granularity or a different model?)",
                       t->module, t->name, sw_shape_format(&t->grid, want, sizeof want));
    }
    size_t n = t->n_blocks;
    float *tmp = malloc(4 * n * sizeof *tmp);
    if (!tmp) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
    bool has_s, has_z, has_lo, has_hi;
    sw_status st =
        read_list(cJSON_GetObjectItemCaseSensitive(e, "scale"), "scale", t, tmp, n, &has_s);
    if (st == SW_OK)
        st = read_list(cJSON_GetObjectItemCaseSensitive(e, "zero_point"), "zero_point", t, tmp + n,
                       n, &has_z);
    if (st == SW_OK)
        st = read_list(cJSON_GetObjectItemCaseSensitive(e, "tracked_min"), "tracked_min", t,
                       tmp + 2 * n, n, &has_lo);
    if (st == SW_OK)
        st = read_list(cJSON_GetObjectItemCaseSensitive(e, "tracked_max"), "tracked_max", t,
                       tmp + 3 * n, n, &has_hi);
    if (st == SW_OK && has_s != has_z)
        st = SW_FAIL(SW_ERR_CONFIG, "calibration %s.%s: scale and zero_point go together",
                     t->module, t->name);
    if (st == SW_OK) {
        if (has_s) {
            memcpy(t->scale, tmp, n * sizeof *tmp);
            memcpy(t->zero_point, tmp + n, n * sizeof *tmp);
        }
        t->has_scale = has_s;
        if (has_lo && has_hi) {
            memcpy(t->tracked_min, tmp + 2 * n, n * sizeof *tmp);
            memcpy(t->tracked_max, tmp + 3 * n, n * sizeof *tmp);
        }
        t->has_tracked = has_lo && has_hi;
    }
    free(tmp);
    return st;
}

/* Every entry is checked before its values are loaded; an error leaves earlier targets loaded
 * (they were valid) and names the one that is not. */
sw_status sw_quant_calibration_update(sw_compressor *c, const cJSON *cfg) {
    sw_quantizer *q = sw_quantizer_of(c);
    if (!q)
        return SW_FAIL(SW_ERR_ARG, "%s is not a quantizer: it takes no calibration config",
                       c ? c->ops->name : "(null)");
    if (!cJSON_IsObject(cfg))
        return SW_FAIL(SW_ERR_CONFIG, "calibration: expected an object {module: {target: {...}}}");
    const cJSON *mod;
    cJSON_ArrayForEach(mod, cfg) {
        if (!cJSON_IsObject(mod))
            return SW_FAIL(SW_ERR_CONFIG, "calibration %s: expected an object of targets",
                           mod->string);
        const cJSON *e;
        cJSON_ArrayForEach(e, mod) {
            sw_quant_target *t = sw_quantizer_find(q, mod->string, e->string);
            if (!t) {
                sw_warnings_add(&c->warnings, "calibration %s.%s: not a target of %s; skipped",
                                mod->string, e->string, c->ops->name);
                continue;
            }
            if (!cJSON_IsObject(e))
                return SW_FAIL(SW_ERR_CONFIG, "calibration %s.%s: expected an object", mod->string,
                               e->string);
            SW_TRY(load_target(t, e));
            /* Loaded values stand: LSQ, DoReFa and BNN stop re-initialising their scales
             * (NNI would overwrite them at the next forward before the first step). */
            q->initialised = true;
        }
    }
    return SW_OK;
}

/* Pretty-printed: the file is meant to be read and diffed by people too. */
sw_status sw_quant_calibration_save(const sw_compressor *c, const char *path) {
    cJSON *root = NULL;
    SW_TRY(sw_quant_calibration_get(c, &root));
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return SW_FAIL(SW_ERR_NOMEM, "out of memory printing the calibration");
    size_t len = strlen(text);
    text[len] = '\n'; /* replaces the terminator: the file ends with a newline */
    sw_status st = sw_atomic_write(path, text, len + 1);
    cJSON_free(text);
    return st;
}

/* The whole file is read at once: calibrations are small (a few numbers per channel). */
sw_status sw_quant_calibration_load(sw_compressor *c, const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return SW_FAIL(SW_ERR_IO, "cannot open calibration file %s", path);
    sw_status st = SW_OK;
    char *buf = NULL;
    long size = -1;
    if (fseek(fp, 0, SEEK_END) == 0) size = ftell(fp);
    if (size < 0 || fseek(fp, 0, SEEK_SET) != 0)
        st = SW_FAIL(SW_ERR_IO, "cannot read calibration file %s", path);
    if (st == SW_OK && !(buf = malloc((size_t)size + 1)))
        st = SW_FAIL(SW_ERR_NOMEM, "out of memory reading %s", path);
    if (st == SW_OK && fread(buf, 1, (size_t)size, fp) != (size_t)size)
        st = SW_FAIL(SW_ERR_IO, "cannot read calibration file %s", path);
    fclose(fp);
    if (st != SW_OK) {
        free(buf);
        return st;
    }
    buf[size] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(buf, &end, 1);
    if (!root) {
        size_t at = end ? (size_t)(end - buf) : 0;
        free(buf);
        return SW_FAIL(SW_ERR_FORMAT, "calibration file %s: not valid JSON at character %zu", path,
                       at);
    }
    free(buf);
    st = sw_quant_calibration_update(c, root);
    cJSON_Delete(root);
    if (st != SW_OK) sw_error_prefix("%s", path);
    return st;
}

/* The export op of every quantizer: its calibration config. */
sw_status sw_quantizer_export_file(sw_compressor *c, const char *path) {
    return sw_quant_calibration_save(c, path);
}

/* ---- calibration passes ---------------------------------------------------------------- */

sw_status sw_quant_calibrate(sw_evaluator *ev, sw_model *model, long max_steps, int max_epochs) {
    if (max_steps < 0 && max_epochs < 0)
        return SW_FAIL(SW_ERR_ARG, "calibration: give max_steps (batches) or max_epochs");
    if (!ev || !ev->train_set || ev->train_set->n <= 0)
        return SW_FAIL(SW_ERR_ARG, "calibration needs an evaluator with training data");
    /* The evaluator's own loader when it is set up for this data (tests fix its order);
     * otherwise one of our own, shuffled from the evaluator's seed. */
    sw_loader own, *loader = &ev->loader;
    bool mine = !(ev->loader_ready && ev->loader.ds == ev->train_set);
    if (mine) {
        int bs = ev->cfg.batch_size > 0 ? ev->cfg.batch_size : 128;
        SW_TRY(sw_loader_init(&own, ev->train_set, bs, true, false, NULL,
                              ev->cfg.seed ^ 0xca11b4a7e5ull));
        loader = &own;
    }
    /* Eval mode: calibration must not move BatchNorm statistics or draw dropout masks; the
     * observers of PTQ see every forward regardless of the mode. */
    bool was_training = model->training;
    sw_model_set_training(model, false);
    sw_status st = SW_OK;
    long steps = 0;
    for (int epoch = 0; st == SW_OK && (max_epochs < 0 || epoch < max_epochs); epoch++) {
        sw_loader_reset(loader);
        sw_batch batch;
        long before = steps;
        while ((max_steps < 0 || steps < max_steps) && sw_loader_next(loader, &batch)) {
            const sw_tensor *out = NULL;
            st = sw_model_forward(model, &batch.x, &out);
            if (st != SW_OK) break;
            steps++;
            if (ev->poll && ev->poll(ev->poll_ctx)) {
                st = SW_FAIL(SW_ERR_INTERRUPTED, "calibration stopped after %ld batches", steps);
                break;
            }
        }
        /* An epoch that drew nothing would loop forever; the batch budget ends the passes. */
        if (steps == before || (max_steps >= 0 && steps >= max_steps)) break;
    }
    sw_model_set_training(model, was_training);
    if (mine) sw_loader_deinit(&own);
    return st;
}
